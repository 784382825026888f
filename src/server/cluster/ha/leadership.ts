import { EventEmitter } from 'node:events';
import { Etcd3, type Campaign, type Watcher } from 'etcd3';
import type { Logger } from '../../../common/logging.js';
import type { EtcdLocation } from '../../store/open-store.js';

/**
 * Which `berth server` runs the cluster's single-writer jobs (the failure detector, failover,
 * fencing). Several servers may serve the API at once; exactly one of them leads.
 *
 * Events: 'elected' when this server becomes the leader, 'deposed' when it stops being one,
 * 'peer-lost' when another candidate's lease ended (that server died or stopped): what it
 * was creating may be half done.
 */
export interface Leadership extends EventEmitter {
  readonly isLeader: boolean;
  /** This server's name in the election (what `berth status` shows as the leader). */
  readonly self: string;
  /** The current leader's name, when known. */
  leader(): Promise<string | undefined>;
  close(): Promise<void>;
}

/** A server on SQLite is alone with its store: it always leads. */
export class SoleLeadership extends EventEmitter implements Leadership {
  readonly isLeader = true;
  constructor(readonly self: string) {
    super();
  }
  async leader(): Promise<string> {
    return this.self;
  }
  async close(): Promise<void> {}
}

/** A leader whose etcd lease lapses (it died or lost the store) is replaced after this long. */
export const LEADER_LEASE_SECONDS = 3;
const RETRY_CAMPAIGN_MS = 1000;

/**
 * Leadership through an etcd election (etcd3's Election: a key under a lease; the oldest key
 * leads). The lease is kept alive by this process; if it dies, the lease expires within
 * LEADER_LEASE_SECONDS and the next candidate is elected. A campaign that fails (the lease was
 * lost, e.g. during an etcd partition) deposes this server at once — it stops leading before
 * another can be elected, since the other must first see the key vanish — and campaigns again.
 */
export class EtcdLeadership extends EventEmitter implements Leadership {
  private readonly client: Etcd3;
  private campaign: Campaign | undefined;
  private leading = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private peers: Watcher | undefined;

  constructor(
    private readonly location: EtcdLocation,
    readonly self: string,
    private readonly logger: Logger,
  ) {
    super();
    this.client = new Etcd3({ hosts: location.endpoints.map((e) => `http://${e}`), dialTimeout: 3000 });
    this.election = this.client.namespace(location.prefix).election('leader', LEADER_LEASE_SECONDS);
  }

  private readonly election;

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    if (this.closed) return;
    if (!this.peers) {
      // Every candidate's key lives under its lease: a delete is a server gone.
      void this.client
        .watch()
        .prefix(`${this.location.prefix}election/leader/`)
        .create()
        .then((watcher) => {
          if (this.closed) return void watcher.cancel();
          this.peers = watcher;
          watcher.on('delete', () => this.emit('peer-lost'));
          watcher.on('error', () => undefined);
        })
        .catch((err: unknown) => this.logger.warn({ err }, 'cannot watch the other servers'));
    }
    const campaign = this.election.campaign(this.self);
    this.campaign = campaign;
    campaign.on('elected', () => {
      if (this.campaign !== campaign || this.closed) return;
      this.leading = true;
      this.logger.info({ server: this.self }, 'elected leader of the control plane');
      this.emit('elected');
    });
    campaign.on('error', (err: Error) => {
      if (this.campaign !== campaign) return;
      this.logger.warn({ server: this.self, err: err.message }, 'leader campaign failed; campaigning again');
      this.depose();
      this.campaign = undefined;
      if (!this.closed) this.retry = setTimeout(() => this.start(), RETRY_CAMPAIGN_MS);
    });
  }

  async leader(): Promise<string | undefined> {
    return this.election.leader().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const campaign = this.campaign;
    this.campaign = undefined;
    this.depose();
    await this.peers?.cancel().catch(() => undefined);
    // Resigning hands leadership on at once instead of after the lease's expiry.
    await campaign?.resign().catch(() => undefined);
    this.client.close();
  }

  private depose(): void {
    if (!this.leading) return;
    this.leading = false;
    this.emit('deposed');
  }
}
