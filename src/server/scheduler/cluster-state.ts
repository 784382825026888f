import { conflict, notFound } from '../../common/errors.js';
import { normalizeImageReference } from './expressions.js';
import { EMPTY_TENANT, TenantIndex } from './tenant-index.js';
import type { ClusterView, ContainerRecord, HostInfo, HostView, Resources, TenantView } from './types.js';

/**
 * The scheduler's cache of hosts and of the containers accounted on them.
 *
 * Containers are either **placed** (they exist on their host; fed from the store or the
 * agents) or **assumed** (a placement chose the host and the container is being created).
 * Both count in a host's allocation and in the affinity indexes, so a placement that runs
 * while another is in flight sees it: concurrent creates honour capacity and anti-affinity.
 * An assumed container becomes placed with `confirm` or disappears with `forget`; a claim the
 * caller never settles can be dropped with `forgetAssumedBefore` (kube-scheduler's assume
 * expiry).
 *
 * Everything a placement reads is indexed so that one placement costs O(hosts examined),
 * never O(containers): allocation per host, containers per tenant by id, short id and name,
 * label key → value → host → count, image → hosts. Only globs and regexps over container
 * names or label values walk the tenant's names or that key's distinct values, once per
 * placement.
 *
 * Mutations are synchronous; a placement (pre-filter to reserve) runs within one tick of the
 * event loop, so it sees one consistent state without taking a snapshot.
 */
export class ClusterState implements ClusterView {
  private readonly hostsById = new Map<string, HostState>();
  /** Hosts in a stable order for the framework's rotating walk; removal swaps with the last. */
  private readonly hostOrder: HostState[] = [];
  private readonly tenants = new Map<string, TenantIndex>();
  private readonly imageHosts = new Map<string, Set<string>>();
  /** The same, by host slot: 1 where the host holds the image. Scorers read this per host, an array index instead of a hash lookup. */
  private readonly imageSlots = new Map<string, Uint8Array>();
  /** Every accounted container, placed or assumed, by id. */
  private readonly containers = new Map<string, ContainerRecord>();
  /** The assumed ones (claims): id → when they were assumed (ms since the epoch). */
  private readonly claims = new Map<string, number>();
  /** Slots of removed hosts, reused so per-host arrays stay as long as the largest cluster. */
  private readonly freeSlots: number[] = [];

  get hostCount(): number {
    return this.hostOrder.length;
  }

  host(id: string): HostState | undefined {
    return this.hostsById.get(id);
  }

  hosts(): readonly HostState[] {
    return this.hostOrder;
  }

  tenant(tenant: string): TenantView {
    return this.tenants.get(tenant) ?? EMPTY_TENANT;
  }

  hostsWithImage(reference: string): ReadonlySet<string> | undefined {
    return this.imageHosts.get(normalizeImageReference(reference));
  }

  hostSlotsWithImage(reference: string): Readonly<Uint8Array> | undefined {
    return this.imageSlots.get(normalizeImageReference(reference));
  }

  imageReferences(): Iterable<string> {
    return this.imageHosts.keys();
  }

  /** Adds a host or replaces what its agent reported; its accounted containers stay. */
  upsertHost(info: HostInfo): void {
    const existing = this.hostsById.get(info.id);
    let host = existing;
    if (host) {
      this.indexImages(host, -1);
      host.report(info);
    } else {
      host = new HostState(info, this.hostOrder.length, this.freeSlots.pop() ?? this.hostOrder.length);
      this.hostsById.set(info.id, host);
      this.hostOrder.push(host);
    }
    this.indexImages(host, +1);
  }

  /** Drops a host and the containers accounted on it; returns those containers (to place again). */
  removeHost(id: string): ContainerRecord[] {
    const state = this.hostsById.get(id);
    if (!state) return [];
    const records = [...state.containerIds].map((cid) => this.containers.get(cid)!);
    for (const record of records) this.removeContainer(record.id);
    this.indexImages(state, -1);
    const last = this.hostOrder.pop()!;
    if (last !== state) {
      this.hostOrder[state.order] = last;
      last.order = state.order;
    }
    this.hostsById.delete(id);
    this.freeSlots.push(state.slot);
    return records;
  }

  /** Accounts a container that exists on its host. */
  addContainer(record: ContainerRecord): void {
    this.account(record, undefined);
  }

  /** Accounts an in-flight placement (a claim); see `confirm` and `forget`. */
  assume(record: ContainerRecord, now = Date.now()): void {
    this.account(record, now);
  }

  /** The claim's container was created: it is placed now. */
  confirm(id: string): void {
    if (!this.containers.has(id)) throw notFound(`no placement claim for container ${id}`);
    this.claims.delete(id);
  }

  /** Drops an assumed container (its creation failed or was abandoned); a no-op for placed or unknown ones. */
  forget(id: string): void {
    if (this.claims.has(id)) this.removeContainer(id);
  }

  /** Forgets claims assumed before `cutoff` (ms since the epoch); returns their ids. O(claims), not O(containers). */
  forgetAssumedBefore(cutoff: number): string[] {
    const expired: string[] = [];
    for (const [id, assumedAt] of this.claims) if (assumedAt < cutoff) expired.push(id);
    for (const id of expired) this.removeContainer(id);
    return expired;
  }

  isAssumed(id: string): boolean {
    return this.claims.has(id);
  }

  /** Stops accounting a container (removed, or moved away); a no-op for an unknown id. */
  removeContainer(id: string): void {
    const record = this.containers.get(id);
    if (!record) return;
    this.containers.delete(id);
    this.claims.delete(id);
    const host = this.hostsById.get(record.hostId);
    if (host) {
      addResources(host.allocated, record.resources, -1);
      host.containerIds.delete(id);
      host.containerCount = host.containerIds.size;
    }
    const tenant = this.tenants.get(record.tenant);
    if (tenant) {
      if (host) tenant.remove(record, host.id, host.slot);
      if (tenant.containerCount === 0) this.tenants.delete(record.tenant);
    }
  }

  private account(record: ContainerRecord, assumedAt: number | undefined): void {
    if (this.containers.has(record.id)) throw conflict(`container ${record.id} is already accounted by the scheduler`);
    const host = this.hostsById.get(record.hostId);
    if (!host) throw notFound(`no such host: ${record.hostId}`);
    this.containers.set(record.id, record);
    if (assumedAt !== undefined) this.claims.set(record.id, assumedAt);
    addResources(host.allocated, record.resources, +1);
    host.containerIds.add(record.id);
    host.containerCount = host.containerIds.size;
    let tenant = this.tenants.get(record.tenant);
    if (!tenant) this.tenants.set(record.tenant, (tenant = new TenantIndex()));
    tenant.add(record, host.id, host.slot, this.hostOrder.length + this.freeSlots.length);
  }

  private indexImages(host: HostState, delta: 1 | -1): void {
    for (const image of host.info.images) {
      const reference = normalizeImageReference(image);
      let hosts = this.imageHosts.get(reference);
      let slots = this.imageSlots.get(reference);
      if (delta > 0) {
        if (!hosts) this.imageHosts.set(reference, (hosts = new Set()));
        hosts.add(host.id);
        if (!slots || slots.length <= host.slot) {
          const grown = new Uint8Array(Math.max(host.slot + 1, 2 * (slots?.length ?? 0), 64));
          if (slots) grown.set(slots);
          this.imageSlots.set(reference, (slots = grown));
        }
        slots[host.slot] = 1;
      } else if (hosts) {
        hosts.delete(host.id);
        if (slots && host.slot < slots.length) slots[host.slot] = 0;
        if (hosts.size === 0) {
          this.imageHosts.delete(reference);
          this.imageSlots.delete(reference);
        }
      }
    }
  }
}

export class HostState implements HostView {
  readonly id: string;
  info: HostInfo;
  capacity: Resources = { milliCpus: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
  healthy = false;
  cordoned = false;
  maxContainers = Infinity;
  readonly allocated: Resources = { milliCpus: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
  readonly containerIds = new Set<string>();
  /**
   * `containerIds.size`, kept beside it: capacity reads it for every host examined, and a
   * set's size lives in its hash table, a separate block of memory that missed the CPU cache
   * on nearly every host (the largest single cost of a placement at 150,000 containers).
   */
  containerCount = 0;
  constructor(
    info: HostInfo,
    /** Position in the cluster's host order. */
    public order: number,
    readonly slot: number,
  ) {
    this.id = info.id;
    this.info = info;
    this.report(info);
  }

  /** Takes a new report from the host's agent (or the operator's cordon). */
  report(info: HostInfo): void {
    this.info = info;
    const { milliCpus, memoryBytes, diskBytes, gpus } = info.capacity;
    this.capacity = { milliCpus, memoryBytes, diskBytes, gpus };
    this.healthy = info.healthy;
    this.cordoned = info.cordoned;
    this.maxContainers = info.maxContainers ?? Infinity;
  }

}

function addResources(into: Resources, amount: Readonly<Resources>, sign: 1 | -1): void {
  into.milliCpus += sign * amount.milliCpus;
  into.memoryBytes += sign * amount.memoryBytes;
  into.diskBytes += sign * amount.diskBytes;
  into.gpus += sign * amount.gpus;
}
