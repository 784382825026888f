import Database from 'better-sqlite3';
import { openDatabase } from './open-database.js';
import type { RequestContext } from '../../../common/context.js';
import { alreadyExists, conflict, invalidArgument, notFound } from '../../../common/errors.js';
import { ChangeFeed } from '../change-feed.js';
import type { NewRecord, Store, StoreChange, StoreWatch, Stored } from '../store.js';

interface Row {
  id: string;
  name: string | null;
  revision: number;
  value: string;
}

/**
 * The embedded Store: one SQLite file, one table. WAL with synchronous=FULL makes a commit
 * durable before it returns, so an acknowledged change survives a SIGKILL or power loss.
 * better-sqlite3 is synchronous; the calls are short indexed statements, so they do not hold
 * the event loop long enough to matter next to the container work around them.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly changes = new ChangeFeed();

  constructor(path: string) {
    this.db = openDatabase(path, 'FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS records (
        tenant   TEXT NOT NULL,
        kind     TEXT NOT NULL,
        id       TEXT NOT NULL,
        name     TEXT,
        revision INTEGER NOT NULL,
        value    TEXT NOT NULL,
        PRIMARY KEY (tenant, kind, id)
      );
      CREATE UNIQUE INDEX IF NOT EXISTS records_name ON records (tenant, kind, name)
        WHERE name IS NOT NULL;
    `);
  }

  async get<T>(ctx: RequestContext, kind: string, id: string): Promise<Stored<T>> {
    const row = this.db
      .prepare('SELECT id, name, revision, value FROM records WHERE tenant=? AND kind=? AND id=?')
      .get(ctx.tenant, kind, id) as Row | undefined;
    if (!row) throw notFound(`No such ${kind}: ${id}`);
    return decode<T>(row);
  }

  async lookup<T>(ctx: RequestContext, kind: string, ref: string): Promise<Stored<T>> {
    const exact = this.db
      .prepare(
        `SELECT id, name, revision, value FROM records
         WHERE tenant=? AND kind=? AND (id=? OR name=?) ORDER BY id=? DESC LIMIT 1`,
      )
      .get(ctx.tenant, kind, ref, ref, ref) as Row | undefined;
    if (exact) return decode<T>(exact);
    if (/^[0-9a-f]+$/.test(ref)) {
      const rows = this.db
        .prepare(
          `SELECT id, name, revision, value FROM records
           WHERE tenant=? AND kind=? AND id >= ? AND id < ? LIMIT 2`,
        )
        .all(ctx.tenant, kind, ref, `${ref}g`) as Row[];
      if (rows.length > 1) throw invalidArgument(`multiple IDs found with provided prefix: ${ref}`);
      if (rows.length === 1) return decode<T>(rows[0]!);
    }
    throw notFound(`No such ${kind}: ${ref}`);
  }

  async list<T>(ctx: RequestContext, kind: string): Promise<Stored<T>[]> {
    const rows = this.db
      .prepare('SELECT id, name, revision, value FROM records WHERE tenant=? AND kind=?')
      .all(ctx.tenant, kind) as Row[];
    return rows.map((row) => decode<T>(row));
  }

  async listAllTenants<T>(kind: string): Promise<(Stored<T> & { tenant: string })[]> {
    const rows = this.db
      .prepare('SELECT tenant, id, name, revision, value FROM records WHERE kind=?')
      .all(kind) as (Row & { tenant: string })[];
    return rows.map((row) => ({ ...decode<T>(row), tenant: row.tenant }));
  }

  async create<T>(ctx: RequestContext, kind: string, record: NewRecord<T>): Promise<Stored<T>> {
    try {
      this.db
        .prepare('INSERT INTO records (tenant, kind, id, name, revision, value) VALUES (?,?,?,?,1,?)')
        .run(ctx.tenant, kind, record.id, record.name ?? null, JSON.stringify(record.value));
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw alreadyExists(`${kind} ${record.name ?? record.id} already exists`, err);
      }
      throw err;
    }
    const stored = { id: record.id, name: record.name ?? null, revision: 1, value: record.value };
    this.changes.publish({ kind, tenant: ctx.tenant, id: record.id, record: stored });
    return stored;
  }

  async update<T>(
    ctx: RequestContext,
    kind: string,
    id: string,
    change: { value: T; name?: string | null; expectedRevision?: number },
  ): Promise<Stored<T>> {
    const run = this.db.transaction((): Stored<T> => {
      const current = this.db
        .prepare('SELECT name, revision FROM records WHERE tenant=? AND kind=? AND id=?')
        .get(ctx.tenant, kind, id) as { name: string | null; revision: number } | undefined;
      if (!current) throw notFound(`No such ${kind}: ${id}`);
      if (change.expectedRevision !== undefined && change.expectedRevision !== current.revision) {
        throw conflict(`${kind} ${id} was changed concurrently; retry`);
      }
      const name = change.name === undefined ? current.name : change.name;
      const revision = current.revision + 1;
      this.db
        .prepare('UPDATE records SET name=?, revision=?, value=? WHERE tenant=? AND kind=? AND id=?')
        .run(name, revision, JSON.stringify(change.value), ctx.tenant, kind, id);
      return { id, name, revision, value: change.value };
    });
    try {
      const stored = run();
      this.changes.publish({ kind, tenant: ctx.tenant, id, record: stored });
      return stored;
    } catch (err) {
      if (isUniqueViolation(err)) throw alreadyExists(`${kind} name ${String(change.name)} is already in use`, err);
      throw err;
    }
  }

  async delete(ctx: RequestContext, kind: string, id: string, expectedRevision?: number): Promise<void> {
    const result =
      expectedRevision === undefined
        ? this.db.prepare('DELETE FROM records WHERE tenant=? AND kind=? AND id=?').run(ctx.tenant, kind, id)
        : this.db
            .prepare('DELETE FROM records WHERE tenant=? AND kind=? AND id=? AND revision=?')
            .run(ctx.tenant, kind, id, expectedRevision);
    if (result.changes === 0) {
      if (expectedRevision !== undefined) {
        const exists = this.db
          .prepare('SELECT 1 FROM records WHERE tenant=? AND kind=? AND id=?')
          .get(ctx.tenant, kind, id);
        if (exists) throw conflict(`${kind} ${id} was changed concurrently; retry`);
      }
      throw notFound(`No such ${kind}: ${id}`);
    }
    this.changes.publish({ kind, tenant: ctx.tenant, id, record: null });
  }

  /** In-process only: another process writing the same file is not seen. */
  async watch<T>(kind: string, onChange: (change: StoreChange<T>) => void): Promise<StoreWatch> {
    return this.changes.subscribe(kind, onChange);
  }

  /** Every record of every tenant and kind, for `berth store migrate`. */
  *exportRecords(): Generator<ExportedRecord> {
    const rows = this.db
      .prepare('SELECT tenant, kind, id, name, revision, value FROM records ORDER BY kind, tenant, id')
      .iterate() as IterableIterator<Row & { tenant: string; kind: string }>;
    for (const row of rows) yield { tenant: row.tenant, kind: row.kind, ...decode<unknown>(row) };
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

export interface ExportedRecord extends Stored<unknown> {
  tenant: string;
  kind: string;
}

function decode<T>(row: Row): Stored<T> {
  return { id: row.id, name: row.name, revision: row.revision, value: JSON.parse(row.value) as T };
}

function isUniqueViolation(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    'code' in err &&
    String((err as { code: unknown }).code).startsWith('SQLITE_CONSTRAINT')
  );
}
