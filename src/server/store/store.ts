import type { RequestContext } from '../../common/context.js';

/**
 * The Store holds every durable record of the control plane.
 *
 * Terms:
 * - kind: the type of record ("container", "image", "volume", ...). Each kind is its own
 *   keyspace.
 * - id: the record's immutable identity, unique within (tenant, kind).
 * - name: an optional human name, unique within (tenant, kind); it can change (rename).
 * - revision: a number the store bumps on every write. Writers that read-modify-write pass
 *   the revision they read as `expectedRevision`; a mismatch is a Conflict, so concurrent
 *   writers never lose each other's changes silently.
 *
 * Scoping: every method takes the RequestContext and touches only that tenant's records. A
 * record of another tenant is indistinguishable from a missing one (NotFound).
 *
 * Consistency: a write is durable before its promise resolves (SQLite in WAL mode with
 * synchronous=FULL; etcd after quorum). Reads see every acknowledged write.
 *
 * Errors: NotFound, AlreadyExists (id or name taken), Conflict (revision mismatch), all as
 * BerthError kinds — never a driver's own error.
 */
export interface Store {
  get<T>(ctx: RequestContext, kind: string, id: string): Promise<Stored<T>>;
  /**
   * Resolves what a user typed: a full id, a name, or a unique id prefix, in that order
   * (Docker's rule). An ambiguous prefix is InvalidArgument; nothing matching is NotFound.
   */
  lookup<T>(ctx: RequestContext, kind: string, ref: string): Promise<Stored<T>>;
  list<T>(ctx: RequestContext, kind: string): Promise<Stored<T>[]>;
  create<T>(ctx: RequestContext, kind: string, record: NewRecord<T>): Promise<Stored<T>>;
  /** Replaces value (and name, when given). */
  update<T>(
    ctx: RequestContext,
    kind: string,
    id: string,
    change: { value: T; name?: string | null; expectedRevision?: number },
  ): Promise<Stored<T>>;
  delete(ctx: RequestContext, kind: string, id: string, expectedRevision?: number): Promise<void>;
  /** Every tenant's records of a kind; for start-up reconcile only, never for a request. */
  listAllTenants<T>(kind: string): Promise<(Stored<T> & { tenant: string })[]>;
  /**
   * Calls `onChange` after every create, update and delete of a kind, for every tenant, in
   * the order the store applied them. With etcd it sees the writes of every server sharing
   * the cluster; SQLite sees only the writes of its own process. Changes made before the
   * promise resolves are not replayed: read the state after watching, not before.
   */
  watch?<T>(kind: string, onChange: (change: StoreChange<T>) => void): Promise<StoreWatch>;
  close(): Promise<void>;
}

/** One applied write; `record` is the record after it, null when it was a delete. */
export interface StoreChange<T> {
  kind: string;
  tenant: string;
  id: string;
  record: Stored<T> | null;
}

export interface StoreWatch {
  close(): Promise<void>;
}

export interface NewRecord<T> {
  id: string;
  name?: string;
  value: T;
}

export interface Stored<T> {
  id: string;
  name: string | null;
  revision: number;
  value: T;
}
