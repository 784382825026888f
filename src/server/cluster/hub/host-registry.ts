import { EventEmitter } from 'node:events';
import { operatorContext } from '../../../common/context.js';
import { alreadyExists, invalidArgument, isKind, notFound } from '../../../common/errors.js';
import { newId } from '../../../common/ids.js';
import type { Store, Stored } from '../../store/store.js';
import type { ClusterHost, HostCapacity, HostEvent } from '../agent-hub.js';
import type { HostStatus } from '../../../common/agent-protocol.js';

/**
 * The control plane's hosts: durable records (kind "host", operator scope, name = the host's
 * name, so names are unique) plus what only lives while the server runs (up/down, last seen).
 *
 * Lifecycle: add (at join) → heartbeat* (up; host-up on the first, host-changed when what the
 * agent reports changes) → expire (down after the timeout) → heartbeat (up again) … → remove.
 * A host is down after a server restart until its agent's first heartbeat.
 *
 * Labels: the agent's --label flags (reported on every heartbeat) under the operator's
 * `berth host label` changes, which win and survive agent restarts.
 */

export interface HostRecord {
  name: string;
  address: string;
  agentLabels: Record<string, string>;
  operatorLabels: Record<string, string>;
  /** Operator label keys removed even when the agent reports them. */
  removedLabels: string[];
  cordoned: boolean;
  /** Serial of the host certificate issued at join (upper-case hex, as node reports it). */
  certSerial: string;
  joinedAt: string;
  joinTokenId: string;
  capacity: HostCapacity;
  imageIds: string[];
  engineVersion: string;
  containerCount: number;
  /** Last heartbeat the server stored (heartbeats that change nothing are not written). */
  lastSeen: number;
}

export interface HostDetail extends ClusterHost {
  containerCount: number;
  joinedAt: string;
  certSerial: string;
  agentLabels: Record<string, string>;
  operatorLabels: Record<string, string>;
}

const KIND = 'host';

export class HostRegistry extends EventEmitter {
  private readonly admin = operatorContext('hosts');
  private readonly records = new Map<string, Stored<HostRecord>>();
  private readonly live = new Map<string, { up: boolean; lastSeen: number }>();

  constructor(private readonly store: Store) {
    super();
  }

  /** Reads every host at start: a refresh of the empty registry (each host down until it beats). */
  async load(): Promise<void> {
    await this.refresh();
  }

  async add(join: { name: string; address: string; labels: Record<string, string>; certSerial: string; joinTokenId: string; id?: string }): Promise<HostDetail> {
    if (this.byName(join.name)) throw alreadyExists(`a host named ${join.name} has already joined; remove it (berth host rm) or start the agent with another --name`);
    const id = join.id ?? newId();
    const record = await this.store.create<HostRecord>(this.admin, KIND, {
      id,
      name: join.name,
      value: {
        name: join.name,
        address: join.address,
        agentLabels: join.labels,
        operatorLabels: {},
        removedLabels: [],
        cordoned: false,
        certSerial: join.certSerial,
        joinedAt: new Date().toISOString(),
        joinTokenId: join.joinTokenId,
        capacity: { cpus: 0, memoryBytes: 0, diskBytes: 0, devices: [] },
        imageIds: [],
        engineVersion: '',
        containerCount: 0,
        lastSeen: 0,
      },
    });
    this.records.set(id, record);
    this.live.set(id, { up: false, lastSeen: 0 });
    return this.detail(record);
  }

  /** Re-reads every host from the store (a host that joined at another server a moment ago). */
  async refresh(): Promise<void> {
    for (const r of await this.store.list<HostRecord>(this.admin, KIND)) this.absorb(r.id, r);
  }

  /** The host whose certificate has this serial; undefined once the host was removed. */
  bySerial(serial: string): Stored<HostRecord> | undefined {
    return [...this.records.values()].find((r) => r.value.certSerial === serial);
  }

  hosts(): HostDetail[] {
    return [...this.records.values()].sort((a, b) => a.value.name.localeCompare(b.value.name)).map((r) => this.detail(r));
  }

  /** By id, name or unique id prefix. */
  host(ref: string): HostDetail | undefined {
    const record = this.resolve(ref);
    return record ? this.detail(record) : undefined;
  }

  get(ref: string): HostDetail {
    const host = this.host(ref);
    if (!host) throw notFound(`No such host: ${ref}`);
    return host;
  }

  async heartbeat(hostId: string, status: HostStatus, now = Date.now()): Promise<void> {
    const record = this.records.get(hostId);
    const live = this.live.get(hostId);
    if (!record || !live) return;
    const wasUp = live.up;
    live.up = true;
    live.lastSeen = now;
    const next: HostRecord = {
      ...record.value,
      address: status.address,
      agentLabels: status.labels,
      capacity: status.capacity,
      imageIds: [...status.imageIds].sort(),
      engineVersion: status.engineVersion,
      containerCount: status.containerCount,
    };
    const changed = JSON.stringify({ ...next, lastSeen: 0 }) !== JSON.stringify({ ...record.value, lastSeen: 0 });
    if (changed || !wasUp) {
      // Several servers sharing the store may race for this write; the loser has taken the
      // winner's record (write → absorb) and the host is up here all the same.
      await this.write(hostId, { ...next, lastSeen: now }).catch((err: unknown) => {
        if (!isKind(err, 'Conflict')) throw err;
      });
    }
    if (!wasUp) this.emitHost('host-up', hostId);
    else if (changed) this.emitHost('host-changed', hostId);
  }

  /** Marks down every up host whose last heartbeat is older than `timeoutMs`. */
  expire(timeoutMs: number, now = Date.now()): void {
    for (const [id, live] of this.live) {
      if (live.up && now - live.lastSeen > timeoutMs) {
        live.up = false;
        this.emitHost('host-down', id);
      }
    }
  }

  async label(ref: string, add: Record<string, string>, remove: string[]): Promise<HostDetail> {
    const record = this.mustResolve(ref);
    for (const key of [...Object.keys(add), ...remove]) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(key)) throw invalidArgument(`invalid label key "${key}"`);
    }
    const operatorLabels = { ...record.value.operatorLabels, ...add };
    for (const key of remove) delete operatorLabels[key];
    const removedLabels = [...new Set([...record.value.removedLabels.filter((k) => !(k in add)), ...remove])].sort();
    await this.write(record.id, { ...record.value, operatorLabels, removedLabels });
    this.emitHost('host-changed', record.id);
    return this.get(record.id);
  }

  async setCordon(ref: string, cordoned: boolean): Promise<HostDetail> {
    const record = this.mustResolve(ref);
    if (record.value.cordoned !== cordoned) {
      await this.write(record.id, { ...record.value, cordoned });
      this.emitHost('host-changed', record.id);
    }
    return this.get(record.id);
  }

  async remove(ref: string): Promise<HostDetail> {
    const record = this.mustResolve(ref);
    const detail = this.detail(record);
    await this.store.delete(this.admin, KIND, record.id);
    this.forget(record.id, detail);
    return detail;
  }

  /**
   * Takes in a write another server made (through the store's watch, cluster/ha): a host that
   * joined there, a label or cordon set there, a host removed there. Up/down stays this
   * server's own view (its own tunnel to the host). Our own writes come back too; the
   * revision tells them apart.
   */
  absorb(id: string, record: Stored<HostRecord> | null): void {
    const known = this.records.get(id);
    if (record === null) {
      if (known) this.forget(id, this.detail(known));
      return;
    }
    if (known && known.revision >= record.revision) return;
    this.records.set(id, record);
    if (!this.live.has(id)) this.live.set(id, { up: false, lastSeen: record.value.lastSeen });
    const placementInputs = (v: HostRecord): string => JSON.stringify([v.cordoned, v.operatorLabels, v.removedLabels]);
    if (known && placementInputs(known.value) !== placementInputs(record.value)) this.emitHost('host-changed', id);
  }

  private async write(id: string, value: HostRecord): Promise<void> {
    const current = this.records.get(id);
    if (!current) return;
    try {
      const updated = await this.store.update<HostRecord>(this.admin, KIND, id, { value, expectedRevision: current.revision });
      this.records.set(id, updated);
    } catch (err) {
      // Another server sharing the store wrote it first: take its record, so the next
      // heartbeat (or the operator's retry) works from the current one.
      if (isKind(err, 'Conflict')) this.absorb(id, await this.store.get<HostRecord>(this.admin, KIND, id).catch(() => null));
      throw err;
    }
  }

  /** Drops a removed host; `detail` is how it was before (taken before any await). */
  private forget(id: string, detail: HostDetail): void {
    this.records.delete(id);
    this.live.delete(id);
    this.emit('host-removed', { ...detail, state: 'down' });
  }

  private emitHost(event: HostEvent, id: string): void {
    const record = this.records.get(id);
    if (record) this.emit(event, this.detail(record));
  }

  /** Whether a host of exactly this name exists (names, unlike refs, are never prefixes). */
  hasName(name: string): boolean {
    return this.byName(name) !== undefined;
  }

  private byName(name: string): Stored<HostRecord> | undefined {
    return [...this.records.values()].find((r) => r.value.name === name);
  }

  private resolve(ref: string): Stored<HostRecord> | undefined {
    const exact = this.records.get(ref) ?? this.byName(ref);
    if (exact) return exact;
    if (!/^[0-9a-f]{1,63}$/.test(ref)) return undefined;
    const matches = [...this.records.values()].filter((r) => r.id.startsWith(ref));
    if (matches.length > 1) throw invalidArgument(`host id prefix ${ref} is ambiguous`);
    return matches[0];
  }

  private mustResolve(ref: string): Stored<HostRecord> {
    const record = this.resolve(ref);
    if (!record) throw notFound(`No such host: ${ref}`);
    return record;
  }

  private detail(record: Stored<HostRecord>): HostDetail {
    const v = record.value;
    const live = this.live.get(record.id);
    const labels: Record<string, string> = { ...v.agentLabels };
    for (const key of v.removedLabels) delete labels[key];
    Object.assign(labels, v.operatorLabels);
    return {
      id: record.id,
      name: v.name,
      address: v.address,
      labels,
      capacity: v.capacity,
      state: live?.up ? 'up' : 'down',
      cordoned: v.cordoned,
      lastSeen: live?.lastSeen ?? v.lastSeen,
      imageIds: v.imageIds,
      engineVersion: v.engineVersion,
      containerCount: v.containerCount,
      joinedAt: v.joinedAt,
      certSerial: v.certSerial,
      agentLabels: v.agentLabels,
      operatorLabels: v.operatorLabels,
    };
  }
}

