import { randomUUID } from 'node:crypto';
import { Etcd3, GRPCDeadlineExceededError, isRecoverableError, type IKeyValue, type IRequestOp, type ICompare } from 'etcd3';
import { ConsecutiveBreaker, circuitBreaker, handleWhen, isBrokenCircuitError, noop } from 'cockatiel';
import type { RequestContext } from '../../../common/context.js';
import { alreadyExists, BerthError, conflict, internal, invalidArgument, notFound, unavailable } from '../../../common/errors.js';
import type { NewRecord, Store, StoreChange, StoreWatch, Stored } from '../store.js';
import { sameRecord } from '../same-record.js';
import { EtcdKeys, prefixEnd } from './etcd-keys.js';

/** What a record key holds. `write` is unique per write: it tells a retried write that it already landed. */
interface RecordBody<T> {
  name: string | null;
  revision: number;
  value: T;
  write: string;
}

interface ReadRecord<T> {
  body: RecordBody<T>;
  modRevision: string;
}

export interface EtcdStoreOptions {
  /** host:port of each cluster member's client URL (plain http on a trusted network). */
  endpoints: string[];
  /** Every key starts with it; default "/berth/". */
  prefix?: string;
  /** How long one attempt of a call may take; default 5 s. */
  callTimeoutMs?: number;
  /**
   * How long a call keeps retrying while no member answers before it fails as Unavailable;
   * default 10 s, enough to ride out a member's death, a leader election (~1 s) or a restart.
   */
  retryForMs?: number;
}

/** A range read returns at most this many records per page, keeping each gRPC response small. */
const PAGE_SIZE = 500;

/**
 * The Store on an etcd 3.4 cluster (key layout in etcd-keys.ts and docs/store.md).
 *
 * Atomicity comes from etcd transactions: a create succeeds only if neither its record key
 * nor its name key exists; an update or delete succeeds only if the record's mod revision is
 * still the one read, and a rename only if the new name key does not exist — so two servers
 * racing for a name or a record cannot both win. The Store's `revision` is the record's own
 * counter (1 on create, +1 per update), kept in the value so that it survives migration; the
 * compare-and-swap itself is on etcd's mod revision. etcd answers a write after a quorum of
 * members has it in their fsynced logs, and a linearizable read sees every acknowledged write.
 *
 * Calls go to any member; when one is unreachable the call is retried on another (here,
 * not in the client library, so that a write knows whether an earlier attempt may have
 * landed).
 */
export class EtcdStore implements Store {
  private readonly client: Etcd3;
  private readonly keys: EtcdKeys;
  private readonly retryForMs: number;

  constructor(options: EtcdStoreOptions) {
    if (options.endpoints.length === 0) throw invalidArgument('the etcd store needs at least one endpoint');
    const callTimeoutMs = options.callTimeoutMs ?? 5000;
    this.keys = new EtcdKeys(options.prefix ?? '/berth/');
    this.retryForMs = options.retryForMs ?? 10_000;
    this.client = new Etcd3({
      hosts: options.endpoints.map((endpoint) => `http://${endpoint}`),
      dialTimeout: callTimeoutMs,
      faultHandling: {
        global: noop,
        // A member that failed three calls in a row is skipped for a second, then tried again.
        host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      },
      // Streams (watches) live as long as they are wanted; unary calls get a deadline.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    });
  }

  async get<T>(ctx: RequestContext, kind: string, id: string): Promise<Stored<T>> {
    const found = await this.call(() => this.readRecord<T>(this.keys.record(kind, ctx.tenant, id)));
    if (!found) throw notFound(`No such ${kind}: ${id}`);
    return toStored(id, found.body);
  }

  async lookup<T>(ctx: RequestContext, kind: string, ref: string): Promise<Stored<T>> {
    const idKey = Buffer.from(this.keys.record(kind, ctx.tenant, ref));
    const nameKey = this.keys.name(kind, ctx.tenant, ref);
    const isHex = /^[0-9a-f]+$/.test(ref);
    // One round trip reads all three candidates at one revision: the id, the name, and (for
    // hex) up to two ids with that prefix; Docker's order then picks among them.
    const reads: IRequestOp[] = [{ request_range: { key: idKey } }, rangeOf(nameKey)];
    if (isHex) reads.push({ request_range: { key: idKey, range_end: prefixEnd(idKey), limit: 2 } });
    return this.call(async () => {
      const response = await this.client.kv.txn({ success: reads });
      const [byId, byName, byPrefix] = response.responses.map((r) => r.response_range.kvs);
      const exact = byId?.[0];
      if (exact) return toStored(ref, decodeBody<T>(exact));
      if (byName?.[0]) {
        const named = await this.recordNamed<T>(kind, ctx.tenant, ref, byName[0]);
        if (named) return named;
      }
      if (byPrefix && byPrefix.length > 1) throw invalidArgument(`multiple IDs found with provided prefix: ${ref}`);
      const [kv] = byPrefix ?? [];
      if (kv) return toStored(this.idOf(kv), decodeBody<T>(kv));
      throw notFound(`No such ${kind}: ${ref}`);
    });
  }

  async list<T>(ctx: RequestContext, kind: string): Promise<Stored<T>[]> {
    return this.call(async () => {
      const kvs = await this.rangeAll(this.keys.recordsOfTenant(kind, ctx.tenant));
      return kvs.map((kv) => toStored(this.idOf(kv), decodeBody<T>(kv)));
    });
  }

  async listAllTenants<T>(kind: string): Promise<(Stored<T> & { tenant: string })[]> {
    return this.call(async () => {
      const kvs = await this.rangeAll(this.keys.recordsOfKind(kind));
      return kvs.map((kv) => ({ ...toStored<T>(this.idOf(kv), decodeBody<T>(kv)), tenant: this.where(kv).tenant }));
    });
  }

  async create<T>(ctx: RequestContext, kind: string, record: NewRecord<T>): Promise<Stored<T>> {
    const body: RecordBody<T> = { name: record.name ?? null, revision: 1, value: record.value, write: randomUUID() };
    const recordKey = this.keys.record(kind, ctx.tenant, record.id);
    const compare: ICompare[] = [absent(recordKey)];
    const success: IRequestOp[] = [put(recordKey, JSON.stringify(body))];
    if (body.name !== null) {
      const nameKey = this.keys.name(kind, ctx.tenant, body.name);
      compare.push(absent(nameKey));
      success.push(put(nameKey, record.id));
    }
    await this.call(async () => {
      const response = await this.client.kv.txn({ compare, success, failure: [rangeOf(recordKey)] });
      if (response.succeeded) return;
      const current = response.responses[0]?.response_range.kvs[0];
      if (current && decodeBody(current).write === body.write) return; // an earlier attempt landed
      throw alreadyExists(`${kind} ${record.name ?? record.id} already exists`);
    });
    return toStored(record.id, body);
  }

  async update<T>(
    ctx: RequestContext,
    kind: string,
    id: string,
    change: { value: T; name?: string | null; expectedRevision?: number },
  ): Promise<Stored<T>> {
    const recordKey = this.keys.record(kind, ctx.tenant, id);
    const write = randomUUID();
    return this.call(async () => {
      for (;;) {
        const current = await this.readRecord<T>(recordKey);
        if (!current) throw notFound(`No such ${kind}: ${id}`);
        if (current.body.write === write) return toStored(id, current.body); // an earlier attempt landed
        if (change.expectedRevision !== undefined && change.expectedRevision !== current.body.revision) {
          throw conflict(`${kind} ${id} was changed concurrently; retry`);
        }
        const name = change.name === undefined ? current.body.name : change.name;
        const body: RecordBody<T> = { name, revision: current.body.revision + 1, value: change.value, write };
        const compare: ICompare[] = [unchangedSince(recordKey, current.modRevision)];
        const success: IRequestOp[] = [put(recordKey, JSON.stringify(body))];
        if (name !== current.body.name) {
          if (current.body.name !== null) success.push(remove(this.keys.name(kind, ctx.tenant, current.body.name)));
          if (name !== null) {
            const nameKey = this.keys.name(kind, ctx.tenant, name);
            compare.push(absent(nameKey));
            success.push(put(nameKey, id));
          }
        }
        const response = await this.client.kv.txn({ compare, success, failure: [rangeOf(recordKey)] });
        if (response.succeeded) return toStored(id, body);
        const now = response.responses[0]?.response_range.kvs[0];
        if (!now) throw notFound(`No such ${kind}: ${id}`);
        if (now.mod_revision === current.modRevision) {
          throw alreadyExists(`${kind} name ${String(change.name)} is already in use`);
        }
        if (decodeBody(now).write === body.write) return toStored(id, body); // an earlier attempt landed
        if (change.expectedRevision !== undefined) throw conflict(`${kind} ${id} was changed concurrently; retry`);
        // Last writer wins without an expected revision: read again and reapply.
      }
    });
  }

  async delete(ctx: RequestContext, kind: string, id: string, expectedRevision?: number): Promise<void> {
    const recordKey = this.keys.record(kind, ctx.tenant, id);
    await this.call(async (attempt) => {
      for (;;) {
        const current = await this.readRecord<unknown>(recordKey);
        if (!current) {
          // Gone on a retry: the attempt whose answer was lost most likely deleted it.
          if (attempt > 1) return;
          throw notFound(`No such ${kind}: ${id}`);
        }
        if (expectedRevision !== undefined && expectedRevision !== current.body.revision) {
          throw conflict(`${kind} ${id} was changed concurrently; retry`);
        }
        const success: IRequestOp[] = [remove(recordKey)];
        if (current.body.name !== null) success.push(remove(this.keys.name(kind, ctx.tenant, current.body.name)));
        const response = await this.client.kv.txn({
          compare: [unchangedSince(recordKey, current.modRevision)],
          success,
          failure: [rangeOf(recordKey)],
        });
        if (response.succeeded) return;
        if (!response.responses[0]?.response_range.kvs[0]) throw notFound(`No such ${kind}: ${id}`);
        if (expectedRevision !== undefined) throw conflict(`${kind} ${id} was changed concurrently; retry`);
      }
    });
  }

  /**
   * Watches the record keys of a kind. The client library resumes a broken watch stream from
   * the last revision it delivered, so a member's death loses no change.
   */
  async watch<T>(kind: string, onChange: (change: StoreChange<T>) => void): Promise<StoreWatch> {
    const watcher = await this.call(() => this.client.watch().prefix(this.keys.recordsOfKind(kind)).create());
    const deliver = (kv: IKeyValue, deleted: boolean): void => {
      const where = this.keys.parseRecord(kv.key.toString());
      if (!where) return;
      const record = deleted ? null : toStored<T>(where.id, decodeBody<T>(kv));
      onChange({ kind, tenant: where.tenant, id: where.id, record });
    };
    watcher.on('put', (kv) => deliver(kv, false));
    watcher.on('delete', (kv) => deliver(kv, true));
    // Stream errors are retried by the library; without a listener they would be thrown.
    watcher.on('error', () => undefined);
    return { close: () => watcher.cancel() };
  }

  /** Every stored record of every tenant and kind (migration and its checks). */
  async exportRecords(): Promise<{ kind: string; tenant: string; stored: Stored<unknown> }[]> {
    return this.call(async () => {
      const kvs = await this.rangeAll(this.keys.allRecords());
      return kvs.map((kv) => {
        const { kind, tenant, id } = this.where(kv);
        return { kind, tenant, stored: toStored(id, decodeBody(kv)) };
      });
    });
  }

  /**
   * Writes a record exactly as given (revision included), for migration: absent → created,
   * identical → left alone; a different record under that id, or the name held by another
   * record, is a Conflict.
   */
  async importRecord(tenant: string, kind: string, record: Stored<unknown>): Promise<'created' | 'unchanged'> {
    const recordKey = this.keys.record(kind, tenant, record.id);
    const body: RecordBody<unknown> = { name: record.name, revision: record.revision, value: record.value, write: randomUUID() };
    return this.call(async () => {
      const current = await this.readRecord<unknown>(recordKey);
      if (current?.body.write === body.write) return 'created'; // an earlier attempt landed
      if (current && sameRecord(toStored(record.id, current.body), record)) return 'unchanged';
      if (current) throw conflict(`${kind} ${record.id} of tenant ${tenant} differs in the target`);
      const compare: ICompare[] = [absent(recordKey)];
      const success: IRequestOp[] = [put(recordKey, JSON.stringify(body))];
      if (record.name !== null) {
        const nameKey = this.keys.name(kind, tenant, record.name);
        compare.push(absent(nameKey));
        success.push(put(nameKey, record.id));
      }
      const response = await this.client.kv.txn({ compare, success });
      if (!response.succeeded) throw conflict(`${kind} ${record.id} (${record.name}) of tenant ${tenant} collides with a record in the target`);
      return 'created';
    });
  }

  /** Removes a record and its name key whatever their revision (migrate --force). */
  async removeRecord(tenant: string, kind: string, id: string): Promise<void> {
    const recordKey = this.keys.record(kind, tenant, id);
    await this.call(async () => {
      const current = await this.readRecord<unknown>(recordKey);
      if (!current) return;
      const success: IRequestOp[] = [remove(recordKey)];
      if (current.body.name !== null) success.push(remove(this.keys.name(kind, tenant, current.body.name)));
      await this.client.kv.txn({ compare: [unchangedSince(recordKey, current.modRevision)], success });
    });
  }

  async close(): Promise<void> {
    this.client.close();
  }

  private async readRecord<T>(key: string): Promise<ReadRecord<T> | undefined> {
    const response = await this.client.kv.range({ key: Buffer.from(key) });
    const [kv] = response.kvs;
    return kv ? { body: decodeBody<T>(kv), modRevision: kv.mod_revision } : undefined;
  }

  /** The record a name key points to; `pointer` is the name key as already read. */
  private async recordNamed<T>(kind: string, tenant: string, name: string, pointer: IKeyValue | undefined): Promise<Stored<T> | undefined> {
    // The record is read in a transaction guarded by the name key's mod revision, so a rename
    // or delete between the two reads cannot make the name point at the wrong record.
    const nameKey = this.keys.name(kind, tenant, name);
    for (;;) {
      if (!pointer) return undefined;
      const id = pointer.value.toString();
      const recordKey = this.keys.record(kind, tenant, id);
      const response = await this.client.kv.txn({
        compare: [unchangedSince(nameKey, pointer.mod_revision)],
        success: [rangeOf(recordKey)],
      });
      if (!response.succeeded) {
        // Renamed or deleted meanwhile: follow the name again.
        pointer = (await this.client.kv.range({ key: Buffer.from(nameKey) })).kvs[0];
        continue;
      }
      const kv = response.responses[0]?.response_range.kvs[0];
      if (!kv) throw internal(`name ${name} of ${kind} points to a missing record ${id}`);
      return toStored(id, decodeBody<T>(kv));
    }
  }

  /** Every key under `prefix`, read page by page at one revision so the pages are a consistent snapshot. */
  private async rangeAll(prefix: string): Promise<IKeyValue[]> {
    const start = Buffer.from(prefix);
    const end = prefixEnd(start);
    const all: IKeyValue[] = [];
    let key = start;
    let revision: string | undefined;
    for (;;) {
      const response = await this.client.kv.range({ key, range_end: end, limit: PAGE_SIZE, revision });
      revision ??= response.header.revision;
      all.push(...response.kvs);
      const last = response.kvs.at(-1);
      if (!response.more || !last) return all;
      key = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }

  private idOf(kv: IKeyValue): string {
    return this.where(kv).id;
  }

  /** Kind, tenant and id of a record key that a range over record keys returned. */
  private where(kv: IKeyValue): { kind: string; tenant: string; id: string } {
    const where = this.keys.parseRecord(kv.key.toString());
    if (!where) throw internal(`unexpected key ${kv.key.toString()} in the etcd store`);
    return where;
  }

  /**
   * Runs one store operation, retrying it while the cluster is unreachable (a member died,
   * a leader is being elected); `attempt` lets a write tell a first try from a retry.
   * Driver errors leave here only as BerthError kinds.
   */
  private async call<R>(operation: (attempt: number) => Promise<R>): Promise<R> {
    const giveUpAt = Date.now() + this.retryForMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation(attempt);
      } catch (err) {
        if (err instanceof BerthError) throw err;
        if (!isTransient(err)) throw internal('the etcd store failed', err);
        if (Date.now() >= giveUpAt) throw unavailable('the store (etcd) is unavailable; retry later', err);
        await new Promise((resolve) => setTimeout(resolve, Math.min(500, 25 * 2 ** attempt)));
      }
    }
  }
}

/** An unreachable member, a lost leader or a member skipped after failures: worth another try. */
function isTransient(err: unknown): boolean {
  return err instanceof Error && (isRecoverableError(err) || isBrokenCircuitError(err) || err instanceof GRPCDeadlineExceededError);
}

function decodeBody<T>(kv: IKeyValue): RecordBody<T> {
  return JSON.parse(kv.value.toString()) as RecordBody<T>;
}

function toStored<T>(id: string, body: RecordBody<T>): Stored<T> {
  return { id, name: body.name, revision: body.revision, value: body.value };
}

const absent = (key: string): ICompare => ({ key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: 0 });
const unchangedSince = (key: string, modRevision: string): ICompare => ({
  key: Buffer.from(key),
  target: 'Mod',
  result: 'Equal',
  mod_revision: modRevision,
});
const put = (key: string, value: string): IRequestOp => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } });
const remove = (key: string): IRequestOp => ({ request_delete_range: { key: Buffer.from(key) } });
const rangeOf = (key: string): IRequestOp => ({ request_range: { key: Buffer.from(key) } });
