import { operatorContext } from '../../../common/context.js';
import { BerthError, isKind, unavailable, type ErrorKind } from '../../../common/errors.js';
import type { Logger } from '../../../common/logging.js';
import type { Placement, Scheduler } from '../../scheduler/scheduler.js';
import type { PlacementRequest } from '../../scheduler/types.js';
import type { Store, StoreWatch, Stored } from '../../store/store.js';
import type { Leadership } from './leadership.js';

/** A create's request for a host, and (once the leader decided) the answer. */
interface PendingPlacement {
  request: PlacementRequest;
  asker: string;
  decision?: { hostId: string } | { error: { kind: ErrorKind; message: string } };
}

const KIND = 'pending-placement';
/** A follower waits this long for the leader's decision (an election included) before giving up. */
const DECISION_TIMEOUT_MS = 20_000;

/**
 * Where several servers share the store, only the leader decides placements: its scheduler
 * alone picks hosts, so two servers never hand out the same room at once. A follower that
 * receives a create writes a pending placement (kind `pending-placement`, keyed by the
 * container's id) and waits; the leader, watching that kind, places it with its scheduler
 * and writes the decision into the record; the follower, watching too, goes on with the
 * create on the decided host and deletes the record. A new leader decides what its
 * predecessor left pending. On the leader itself (and on SQLite) a create places directly.
 *
 * The leader's claim is taken over by the placement record the follower writes next (the
 * placement watch, store-sync.ts, re-accounts it); a claim whose create never comes expires
 * in the scheduler.
 */
export class PlacementBroker {
  private readonly ctx = operatorContext('placement-broker');
  private readonly waiters = new Map<string, (record: Stored<PendingPlacement>) => void>();
  private watch: StoreWatch | undefined;

  constructor(
    private readonly deps: { store: Store; scheduler: Scheduler; leadership: Leadership; logger: Logger },
  ) {}

  async start(): Promise<void> {
    if (!this.deps.store.watch) return;
    this.watch = await this.deps.store.watch<PendingPlacement>(KIND, (change) => {
      if (!change.record) return;
      if (change.record.value.decision) this.waiters.get(change.id)?.(change.record);
      else if (this.deps.leadership.isLeader) void this.decide(change.record);
    });
    this.deps.leadership.on('elected', () => void this.decideLeftovers());
    if (this.deps.leadership.isLeader) await this.decideLeftovers();
  }

  async close(): Promise<void> {
    await this.watch?.close();
  }

  /** The host for a new container: decided here when leading, else by the leader. */
  async place(request: PlacementRequest): Promise<Placement> {
    const { store, scheduler, leadership } = this.deps;
    if (leadership.isLeader || !store.watch) return scheduler.place(request);
    const decided = new Promise<Stored<PendingPlacement>>((resolve) => this.waiters.set(request.id, resolve));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(unavailable('no leader of the control plane decided where to place the container; try again')), DECISION_TIMEOUT_MS);
    });
    try {
      await store.create<PendingPlacement>(this.ctx, KIND, { id: request.id, value: { request, asker: leadership.self } });
      const record = await Promise.race([decided, timeout]);
      const decision = record.value.decision!;
      if ('error' in decision) throw new BerthError(decision.error.kind, decision.error.message);
      return { hostId: decision.hostId, containerId: request.id, hostsExamined: 0, feasibleHosts: 0, confirm: () => undefined, release: () => undefined };
    } finally {
      clearTimeout(timer);
      this.waiters.delete(request.id);
      await store.delete(this.ctx, KIND, request.id).catch(() => undefined);
    }
  }

  private async decideLeftovers(): Promise<void> {
    try {
      for (const record of await this.deps.store.list<PendingPlacement>(this.ctx, KIND)) {
        if (!record.value.decision) await this.decide(record);
      }
    } catch (err) {
      this.deps.logger.warn({ err }, 'deciding pending placements failed');
    }
  }

  private async decide(record: Stored<PendingPlacement>): Promise<void> {
    let claim: Placement | undefined;
    let decision: PendingPlacement['decision'];
    try {
      claim = this.deps.scheduler.place(record.value.request);
      decision = { hostId: claim.hostId };
    } catch (err) {
      const kind: ErrorKind = err instanceof BerthError ? err.kind : 'Internal';
      decision = { error: { kind, message: err instanceof Error ? err.message : String(err) } };
    }
    try {
      await this.deps.store.update<PendingPlacement>(this.ctx, KIND, record.id, { value: { ...record.value, decision }, expectedRevision: record.revision });
      this.deps.logger.info({ id: record.id, asker: record.value.asker, ...decision }, 'placement decided for another server');
    } catch (err) {
      // Decided already (by a leader before us), or the asker gave up: our claim is not used.
      claim?.release();
      if (!isKind(err, 'Conflict') && !isKind(err, 'NotFound')) this.deps.logger.warn({ err, id: record.id }, 'could not write a placement decision');
    }
  }
}
