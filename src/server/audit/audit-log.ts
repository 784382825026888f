/**
 * The audit log: one entry per mutating call (every Docker API request that is not a GET or
 * HEAD, and every admin API change), saying who, what, when and with which result.
 *
 * Lifecycle of an entry: `begin` appends its intent (who, what, when) before the call does
 * anything; `finish` appends its result (status code, error message, the object it made) before
 * the response goes out. An intent without a result is a call whose outcome is unknown: Berth
 * died during it, or it is still running (a long attach or pull). A call refused before it
 * could begin (no valid credential, a bad API version) is appended whole by `record`.
 *
 * Invariants: the log is append-only (retention is the only thing that removes entries, oldest
 * first); `begin`, `finish` and `record` are durable against a crash of the Berth process when
 * their promise resolves. The operator reads it; tenants never do.
 *
 * The interface is the swap point: SqliteAuditLog is the embedded default; an etcd
 * implementation would put intents and results under ordered keys (a revision-ordered prefix
 * per entry) and keep the same contract.
 */
export interface AuditLog {
  begin(intent: AuditIntent): Promise<number>;
  finish(seq: number, result: AuditResult): Promise<void>;
  record(intent: AuditIntent, result: AuditResult): Promise<number>;
  /** Newest first. */
  query(filter: AuditFilter): Promise<AuditEntry[]>;
  /** Applies retention; returns how many entries it removed. */
  prune(now?: Date): Promise<number>;
  close(): Promise<void>;
}

export interface AuditIntent {
  /** When the call arrived. */
  time: Date;
  /** The tenant it acted for ("default" is the operator's scope); "" when nobody was authenticated. */
  tenant: string;
  /** "local-socket", "certificate:SERIAL" or "token:ID" (token ids are public, secrets never logged). */
  credential: string;
  method: string;
  /** The request's path and query as sent. */
  path: string;
  /** The object's id or name when the path names it. */
  object?: string;
  requestId: string;
}

export interface AuditResult {
  time: Date;
  status: number;
  /** Docker's {"message"} of a failed call. */
  error?: string;
  /** The id or name of what the call made, when its answer says. */
  object?: string;
}

export interface AuditEntry extends AuditIntent {
  seq: number;
  /** Absent while the result is unknown. */
  result?: AuditResult;
}

export interface AuditFilter {
  tenant?: string;
  /** Entries at or after this time. */
  since?: Date;
  until?: Date;
  limit?: number;
}

export interface AuditRetention {
  /** Entries older than this many days are removed (0: kept forever). */
  maxAgeDays: number;
  /** At most this many entries are kept, the newest (0: no limit). */
  maxEntries: number;
}

export const DEFAULT_AUDIT_RETENTION: AuditRetention = { maxAgeDays: 90, maxEntries: 1_000_000 };
