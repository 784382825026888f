import Database from 'better-sqlite3';
import { openDatabase } from '../store/sqlite/open-database.js';
import { DEFAULT_AUDIT_RETENTION, type AuditEntry, type AuditFilter, type AuditIntent, type AuditLog, type AuditResult, type AuditRetention } from './audit-log.js';

interface EntryRow {
  seq: number;
  time: string;
  tenant: string;
  credential: string;
  method: string;
  path: string;
  object: string | null;
  request_id: string;
  result_time: string | null;
  status: number | null;
  error: string | null;
  result_object: string | null;
}

/** Long paths and messages are cut: the log is for reading, not for replaying bodies. */
const MAX_TEXT = 1000;
const cut = (text: string | undefined): string | null => (text === undefined ? null : text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text);

/**
 * The audit log in its own SQLite file (`<data-root>/audit.db`), apart from the store so its
 * writes and retention never contend with the store's transactions.
 *
 * Two append-only tables, intents and results, joined on the entry's sequence number.
 * Durability: WAL with synchronous=NORMAL. A commit is in the kernel's page cache (the WAL
 * file) before its call returns, so it survives SIGKILL of Berth at tens of µs a write;
 * what a power loss may cost is the entries since the last checkpoint. FULL would fsync every
 * mutating call twice (see docs/tenancy.md for the choice).
 */
export class SqliteAuditLog implements AuditLog {
  private readonly db: Database.Database;
  private readonly insertIntent: Database.Statement;
  private readonly insertResult: Database.Statement;

  constructor(
    path: string,
    private readonly retention: AuditRetention = DEFAULT_AUDIT_RETENTION,
  ) {
    this.db = openDatabase(path, 'NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS audit_intents (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        time       TEXT NOT NULL,
        tenant     TEXT NOT NULL,
        credential TEXT NOT NULL,
        method     TEXT NOT NULL,
        path       TEXT NOT NULL,
        object     TEXT,
        request_id TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS audit_intents_time ON audit_intents (time);
      CREATE INDEX IF NOT EXISTS audit_intents_tenant ON audit_intents (tenant, seq);
      CREATE TABLE IF NOT EXISTS audit_results (
        seq    INTEGER PRIMARY KEY,
        time   TEXT NOT NULL,
        status INTEGER NOT NULL,
        error  TEXT,
        object TEXT
      );
    `);
    this.insertIntent = this.db.prepare(
      'INSERT INTO audit_intents (time, tenant, credential, method, path, object, request_id) VALUES (?,?,?,?,?,?,?)',
    );
    this.insertResult = this.db.prepare('INSERT OR IGNORE INTO audit_results (seq, time, status, error, object) VALUES (?,?,?,?,?)');
  }

  async begin(intent: AuditIntent): Promise<number> {
    return this.appendIntent(intent);
  }

  async finish(seq: number, result: AuditResult): Promise<void> {
    this.appendResult(seq, result);
  }

  async record(intent: AuditIntent, result: AuditResult): Promise<number> {
    return this.db.transaction(() => {
      const seq = this.appendIntent(intent);
      this.appendResult(seq, result);
      return seq;
    })();
  }

  async query(filter: AuditFilter): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.tenant !== undefined) {
      where.push('i.tenant = ?');
      params.push(filter.tenant);
    }
    if (filter.since !== undefined) {
      where.push('i.time >= ?');
      params.push(filter.since.toISOString());
    }
    if (filter.until !== undefined) {
      where.push('i.time <= ?');
      params.push(filter.until.toISOString());
    }
    const limit = filter.limit !== undefined && filter.limit > 0 ? Math.floor(filter.limit) : 100;
    const rows = this.db
      .prepare(
        `SELECT i.seq, i.time, i.tenant, i.credential, i.method, i.path, i.object, i.request_id,
                r.time AS result_time, r.status, r.error, r.object AS result_object
         FROM audit_intents i LEFT JOIN audit_results r ON r.seq = i.seq
         ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY i.seq DESC LIMIT ?`,
      )
      .all(...params, limit) as EntryRow[];
    return rows.map(decode);
  }

  async prune(now = new Date()): Promise<number> {
    const { maxAgeDays, maxEntries } = this.retention;
    return this.db.transaction(() => {
      let cutoff = 0;
      if (maxAgeDays > 0) {
        const oldest = new Date(now.getTime() - maxAgeDays * 86_400_000).toISOString();
        const row = this.db.prepare('SELECT MAX(seq) AS seq FROM audit_intents WHERE time < ?').get(oldest) as { seq: number | null };
        cutoff = Math.max(cutoff, row.seq ?? 0);
      }
      if (maxEntries > 0) {
        const row = this.db.prepare('SELECT seq FROM audit_intents ORDER BY seq DESC LIMIT 1 OFFSET ?').get(maxEntries) as { seq: number } | undefined;
        cutoff = Math.max(cutoff, row?.seq ?? 0);
      }
      if (cutoff === 0) return 0;
      this.db.prepare('DELETE FROM audit_results WHERE seq <= ?').run(cutoff);
      return this.db.prepare('DELETE FROM audit_intents WHERE seq <= ?').run(cutoff).changes;
    })();
  }

  async close(): Promise<void> {
    this.db.close();
  }

  private appendIntent(intent: AuditIntent): number {
    const info = this.insertIntent.run(
      intent.time.toISOString(),
      intent.tenant,
      intent.credential,
      intent.method,
      cut(intent.path),
      cut(intent.object),
      intent.requestId,
    );
    return Number(info.lastInsertRowid);
  }

  private appendResult(seq: number, result: AuditResult): void {
    this.insertResult.run(seq, result.time.toISOString(), result.status, cut(result.error), cut(result.object));
  }
}

function decode(row: EntryRow): AuditEntry {
  const entry: AuditEntry = {
    seq: row.seq,
    time: new Date(row.time),
    tenant: row.tenant,
    credential: row.credential,
    method: row.method,
    path: row.path,
    requestId: row.request_id,
    ...(row.object !== null ? { object: row.object } : {}),
  };
  if (row.result_time !== null && row.status !== null) {
    entry.result = {
      time: new Date(row.result_time),
      status: row.status,
      ...(row.error !== null ? { error: row.error } : {}),
      ...(row.result_object !== null ? { object: row.result_object } : {}),
    };
  }
  return entry;
}
