import type { ContainerRecord, HostCounts, TenantView } from './types.js';

const SHORT_ID_LENGTH = 12;

/**
 * One tenant's containers, indexed for the affinity rules and the spread score. Owned by
 * ClusterState, which passes each container's host as the host's own id string and slot.
 */
export class TenantIndex implements TenantView {
  private readonly byId = new Map<string, ContainerRecord>();
  private readonly byShortId = new Map<string, ContainerRecord[]>();
  private readonly byNameMap = new Map<string, ContainerRecord>();
  /** label key → value → host → count. */
  private readonly labelHosts = new Map<string, Map<string, Map<string, number>>>();
  /**
   * Containers per host slot: a Map while the tenant is small, then a dense array once it has
   * DENSE_AFTER containers. Spread reads this for every host it scores; for a large tenant a
   * map of thousands of hosts misses the CPU cache on nearly every read, while the array is
   * walked in slot order, as the hosts are.
   */
  private sparsePerHost: Map<number, number> | undefined = new Map();
  private densePerHost: Uint32Array | undefined;

  get containerCount(): number {
    return this.byId.size;
  }

  byName(name: string): ContainerRecord | undefined {
    return this.byNameMap.get(name.startsWith('/') ? name.slice(1) : name);
  }

  byIdOrPrefix(idOrPrefix: string): ContainerRecord | undefined {
    const exact = this.byId.get(idOrPrefix);
    if (exact || idOrPrefix.length < SHORT_ID_LENGTH) return exact;
    const candidates = (this.byShortId.get(idOrPrefix.slice(0, SHORT_ID_LENGTH)) ?? []).filter((c) => c.id.startsWith(idOrPrefix));
    return candidates.length === 1 ? candidates[0] : undefined;
  }

  containersOn(slot: number): number {
    if (this.densePerHost) return slot < this.densePerHost.length ? this.densePerHost[slot]! : 0;
    return this.sparsePerHost!.get(slot) ?? 0;
  }

  private countOn(slot: number, delta: 1 | -1, slotCount: number): void {
    if (!this.densePerHost && this.byId.size >= DENSE_AFTER) {
      this.densePerHost = new Uint32Array(Math.max(slotCount, slot + 1));
      for (const [s, n] of this.sparsePerHost!) this.densePerHost[s] = n;
      this.sparsePerHost = undefined;
    }
    if (this.densePerHost) {
      if (slot >= this.densePerHost.length) {
        const grown = new Uint32Array(Math.max(slotCount, slot + 1, this.densePerHost.length * 2));
        grown.set(this.densePerHost);
        this.densePerHost = grown;
      }
      this.densePerHost[slot] = this.densePerHost[slot]! + delta;
      return;
    }
    const next = (this.sparsePerHost!.get(slot) ?? 0) + delta;
    if (next <= 0) this.sparsePerHost!.delete(slot);
    else this.sparsePerHost!.set(slot, next);
  }

  names(): Iterable<string> {
    return this.byNameMap.keys();
  }

  hostsWithLabel(key: string, value: string): HostCounts | undefined {
    return this.labelHosts.get(key)?.get(value);
  }

  labelValues(key: string): Iterable<string> {
    return this.labelHosts.get(key)?.keys() ?? [];
  }

  /**
   * `hostId` is the host's own id string, not the record's copy: the per-host maps are then
   * keyed by the very string plugins look up with (`host.id`), and V8 compares it by pointer
   * instead of by content — a measurable share of a placement at 5,000 hosts.
   */
  add(record: ContainerRecord, hostId: string, slot: number, slotCount: number): void {
    this.byId.set(record.id, record);
    const short = record.id.slice(0, SHORT_ID_LENGTH);
    const sharing = this.byShortId.get(short);
    if (sharing) sharing.push(record);
    else this.byShortId.set(short, [record]);
    if (record.name) this.byNameMap.set(record.name, record);
    this.countOn(slot, +1, slotCount);
    for (const [key, value] of Object.entries(record.labels)) {
      let values = this.labelHosts.get(key);
      if (!values) this.labelHosts.set(key, (values = new Map()));
      let hosts = values.get(value);
      if (!hosts) values.set(value, (hosts = new Map()));
      bump(hosts, hostId, +1);
    }
  }

  remove(record: ContainerRecord, hostId: string, slot: number): void {
    if (this.byId.get(record.id) !== record) return;
    this.byId.delete(record.id);
    const short = record.id.slice(0, SHORT_ID_LENGTH);
    const sharing = this.byShortId.get(short)?.filter((c) => c !== record) ?? [];
    if (sharing.length > 0) this.byShortId.set(short, sharing);
    else this.byShortId.delete(short);
    if (record.name && this.byNameMap.get(record.name) === record) this.byNameMap.delete(record.name);
    this.countOn(slot, -1, 0);
    for (const [key, value] of Object.entries(record.labels)) {
      const values = this.labelHosts.get(key);
      const hosts = values?.get(value);
      if (!values || !hosts) continue;
      bump(hosts, hostId, -1);
      if (hosts.size === 0) values.delete(value);
      if (values.size === 0) this.labelHosts.delete(key);
    }
  }
}

export const EMPTY_TENANT: TenantView = new TenantIndex();

/** When a tenant's per-host counts switch from a map to an array (4 bytes per host slot). */
const DENSE_AFTER = 256;

function bump(counts: Map<string, number>, hostId: string, delta: number): void {
  const next = (counts.get(hostId) ?? 0) + delta;
  if (next <= 0) counts.delete(hostId);
  else counts.set(hostId, next);
}
