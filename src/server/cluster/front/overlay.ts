import type { FastifyInstance, FastifyRequest } from 'fastify';
import { operatorContext, type RequestContext } from '../../../common/context.js';
import { formatCidr, parseCidr } from '../../../common/ipv4.js';
import type { Stored } from '../../store/store.js';
import type { ClusterHost } from '../agent-hub.js';
import type { OverlayNetwork, OverlayState, RemoteEndpoint } from '../../networks/overlay-agent.js';
import type { ForwardOptions, FrontDeps } from './deps.js';
import { CLUSTER_NETWORK_KIND, type ClusterNetworkValue } from './networks.js';

/**
 * The control plane's half of networks that span hosts (docs/cluster.md, "Networks across
 * hosts"). For every tenant network it keeps a VNI and a slot per host (the slice of the pool
 * that host hands out, so addresses never collide across hosts) in the network's record, and
 * it pushes each up host its whole desired overlay state: every network, every container of it
 * on the *other* hosts (address, MAC, names, host). A sync reads every up host's live
 * endpoints and pushes to all; it runs after any request that changes endpoints (before the
 * answer, so a `docker run -d` that returned is reachable), on host up/down, and every
 * `intervalMs` as a safety net for what no request announces (a container exiting by itself,
 * a failover, an agent restarted).
 */

/** What the record keeps besides B2's fields. */
export interface OverlayFields {
  vni?: number;
  /** Host id → slice index of the pool. */
  hostSlots?: Record<string, number>;
}

type NetworkRecord = Stored<ClusterNetworkValue & OverlayFields> & { tenant: string };

/** VNIs start here (low ones are commonly used by hand). */
export const FIRST_VNI = 4096;
/** Pools are cut in up to 16 slices: up to 16 hosts get a disjoint range per network. */
const SLICE_BITS = 4;

const SYNC_AFTER = [
  /^POST \/containers\/[^/]+\/(start|restart|stop|kill|unpause)$/,
  /^DELETE \/containers\/[^/]+$/,
  /^POST \/containers\/prune$/,
  /^POST \/networks\/(create|prune)$/,
  /^DELETE \/networks\/[^/]+$/,
  /^POST \/networks\/[^/]+\/(connect|disconnect)$/,
];

export class OverlayController {
  private running: Promise<void> | undefined;
  private again = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly deps: FrontDeps,
    intervalMs = 2000,
  ) {
    this.timer = setInterval(() => void this.sync(), intervalMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Runs a full sync; a call during one makes it run once more after (and waits for that). */
  sync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.syncOnce().catch((err: unknown) => this.deps.logger.warn({ err }, 'overlay sync failed'));
      } while (this.again);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  private async syncOnce(): Promise<void> {
    const hosts = this.deps.hosts.up();
    const records = await this.assignIdentities(hosts);
    const ctx = operatorContext('overlay-sync');
    const endpoints = new Map<string, LiveEndpoint[]>();
    await Promise.all(
      hosts.map(async (host) => {
        const list = await this.deps.hosts.json<LiveEndpoint[]>(ctx, host.id, { method: 'GET', path: '/berth/agent/overlay/endpoints' }).catch((err: unknown) => {
          this.deps.logger.warn({ err, host: host.name }, 'could not read a host\'s endpoints');
          return undefined;
        });
        if (list) endpoints.set(host.id, list);
      }),
    );
    await Promise.all(
      hosts.map(async (host) => {
        const state = desiredState(host, hosts, records, endpoints);
        await this.deps.hosts.json(ctx, host.id, { method: 'PUT', path: '/berth/agent/overlay', body: state }).catch((err: unknown) => {
          this.deps.logger.warn({ err, host: host.name }, 'could not push the overlay state to a host');
        });
      }),
    );
  }

  /** Gives records a VNI and up hosts a slot where they lack one, and saves those. */
  private async assignIdentities(hosts: ClusterHost[]): Promise<NetworkRecord[]> {
    const records = await this.deps.store.listAllTenants<ClusterNetworkValue & OverlayFields>(CLUSTER_NETWORK_KIND);
    const usedVnis = new Set(records.map((r) => r.value.vni).filter((v): v is number => v !== undefined));
    let nextVni = FIRST_VNI;
    for (const record of records) {
      let changed = false;
      let value = record.value;
      if (value.vni === undefined) {
        while (usedVnis.has(nextVni)) nextVni++;
        usedVnis.add(nextVni);
        value = { ...value, vni: nextVni };
        changed = true;
      }
      const slots = { ...(value.hostSlots ?? {}) };
      const capacity = 2 ** sliceBitsOf(value);
      for (const host of hosts) {
        if (slots[host.id] !== undefined) continue;
        const taken = new Set(Object.values(slots));
        let slot = 0;
        while (taken.has(slot)) slot++;
        if (slot >= capacity) continue; // Too many hosts for disjoint slices: this host uses the whole pool.
        slots[host.id] = slot;
        changed = true;
      }
      if (changed) {
        value = { ...value, hostSlots: slots };
        const ctx: RequestContext = { tenant: record.tenant, requestId: 'overlay-sync' };
        await this.deps.store.update(ctx, CLUSTER_NETWORK_KIND, record.id, { value });
        record.value = value;
      }
    }
    return records;
  }
}

interface LiveEndpoint {
  networkId: string;
  ip: string;
  mac: string;
  containerName: string;
  names: string[];
}

function desiredState(host: ClusterHost, hosts: ClusterHost[], records: NetworkRecord[], endpoints: Map<string, LiveEndpoint[]>): OverlayState {
  const networks: OverlayNetwork[] = records.map((record) => {
    const remotes: RemoteEndpoint[] = [];
    for (const other of hosts) {
      if (other.id === host.id) continue;
      for (const e of endpoints.get(other.id) ?? []) {
        if (e.networkId === record.id) remotes.push({ ip: e.ip, mac: e.mac, host: other.address, containerName: e.containerName, names: e.names });
      }
    }
    const slot = record.value.hostSlots?.[host.id];
    const ipRange = slot === undefined ? undefined : sliceOf(record.value, slot);
    return { id: record.id, vni: record.value.vni!, ...(ipRange ? { ipRange } : {}), remotes };
  });
  return { local: host.address, networks };
}

/** The pool the network hands out from: its IPRange, else its subnet. */
function poolOf(value: ClusterNetworkValue): { base: number; prefix: number } | undefined {
  const config = (value.body.IPAM as { Config?: { Subnet?: string; IPRange?: string }[] } | undefined)?.Config?.[0];
  const text = config?.IPRange || config?.Subnet;
  return text ? parseCidr(text) : undefined;
}

function sliceBitsOf(value: ClusterNetworkValue): number {
  const pool = poolOf(value);
  return pool ? Math.max(0, Math.min(SLICE_BITS, 30 - pool.prefix)) : 0;
}

/** Slice `slot` of the pool, as a CIDR. */
export function sliceOf(value: ClusterNetworkValue, slot: number): string | undefined {
  const pool = poolOf(value);
  const bits = sliceBitsOf(value);
  if (!pool || bits === 0) return undefined;
  const prefix = pool.prefix + bits;
  return formatCidr({ base: (pool.base + slot * 2 ** (32 - prefix)) >>> 0, prefix });
}

export function changesEndpoints(request: FastifyRequest): boolean {
  const path = (request.url.split('?')[0] ?? '').replace(/^\/v[\d.]+\//, '/');
  return SYNC_AFTER.some((re) => re.test(`${request.method} ${path}`));
}

/**
 * Forward options for a request that changes endpoints: the host's answer is buffered (these
 * answers are small) so it goes out through the front's onSend hook, where the sync runs,
 * instead of being piped straight to the client.
 */
export function bufferedWhenEndpointsChange(request: FastifyRequest, options: ForwardOptions | undefined): ForwardOptions | undefined {
  if (options?.rewrite || !changesEndpoints(request)) return options;
  return { ...options, rewrite: () => undefined };
}

/**
 * Syncs after requests that change endpoints, before their answer goes out, and on host
 * up/down. Returns the controller (close it at shutdown).
 */
export function installOverlay(app: FastifyInstance, deps: FrontDeps): OverlayController {
  const overlay = new OverlayController(deps);
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode < 400 && changesEndpoints(request)) await overlay.sync();
    return payload;
  });
  const onHost = (): void => void overlay.sync();
  deps.hub.on('host-up', onHost);
  deps.hub.on('host-down', onHost);
  app.addHook('onClose', async () => {
    overlay.close();
    deps.hub.off('host-up', onHost);
    deps.hub.off('host-down', onHost);
  });
  return overlay;
}
