import Database from 'better-sqlite3';
import { openDatabase } from '../store/sqlite/open-database.js';
import type { Advisory, ComplianceFinding, FeedSnapshot, Inventory, RuntimeState } from './model.js';

/** What is stored of one image: its inventory and its image-level compliance results. */
export interface ImageInventoryRow {
  imageId: string;
  inventory: Inventory;
  compliance: ComplianceFinding[];
}

/** What is stored of one container's last scan. */
export interface ContainerInventoryRow {
  containerId: string;
  tenant: string;
  imageId: string;
  inventory: Inventory;
  runtime: RuntimeState | null;
  compliance: ComplianceFinding[];
  /**
   * Keys of the findings the container had at its last evaluation (scan or feed re-match), so
   * the next evaluation can tell what is new and raise an alert for exactly that.
   */
  knownFindings: string[];
}

export interface FeedSummary {
  version: number;
  createdAt: string;
  sources: string[];
  advisories: number;
}

/**
 * The Advisor's own database: feeds and inventories. One SQLite file beside berth.db
 * (`<data-root>/advisor.db`), WAL with synchronous=FULL like the Store, so a stored feed or
 * inventory survives a SIGKILL once the call that wrote it returned.
 *
 * Why not the Store: these records are host-wide facts, not a tenant's (an image id's
 * inventory is the same for every tenant that holds the image; a feed is for everyone), and a
 * feed is tens of thousands of rows that the Store's one-JSON-value-per-record shape would
 * turn into one huge value. Tenant-owned records (exemptions, alerts, policy) are in the Store.
 *
 * Tables:
 * - feeds: one row per version (monotonic, never reused); advisories: the rows of each version.
 *   Versions are immutable once written (a feed is written in one transaction).
 * - image_inventories: by image id. container_inventories: by container id, with its tenant.
 */
export class AdvisorDb {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = openDatabase(path, 'FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS feeds (
        version    INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at TEXT NOT NULL,
        sources    TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS advisories (
        feed_version INTEGER NOT NULL REFERENCES feeds(version) ON DELETE CASCADE,
        seq          INTEGER NOT NULL,
        value        TEXT NOT NULL,
        PRIMARY KEY (feed_version, seq)
      );
      CREATE TABLE IF NOT EXISTS image_inventories (
        image_id   TEXT PRIMARY KEY,
        inventory  TEXT NOT NULL,
        compliance TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS container_inventories (
        container_id   TEXT PRIMARY KEY,
        tenant         TEXT NOT NULL,
        image_id       TEXT NOT NULL,
        inventory      TEXT NOT NULL,
        runtime        TEXT,
        compliance     TEXT NOT NULL,
        known_findings TEXT NOT NULL
      );
    `);
  }

  // ---- feeds ------------------------------------------------------------------------------

  /** Stores a new feed version in one transaction and returns it. */
  addFeed(sources: string[], advisories: Advisory[]): FeedSnapshot {
    const createdAt = new Date().toISOString();
    const insertFeed = this.db.prepare('INSERT INTO feeds (created_at, sources) VALUES (?, ?)');
    const insertAdvisory = this.db.prepare('INSERT INTO advisories (feed_version, seq, value) VALUES (?, ?, ?)');
    const write = this.db.transaction((): number => {
      const version = Number(insertFeed.run(createdAt, JSON.stringify(sources)).lastInsertRowid);
      advisories.forEach((a, i) => insertAdvisory.run(version, i, JSON.stringify(a)));
      return version;
    });
    return { version: write(), createdAt, sources, advisories };
  }

  latestFeed(): FeedSnapshot | undefined {
    const row = this.db.prepare('SELECT version FROM feeds ORDER BY version DESC LIMIT 1').get() as { version: number } | undefined;
    return row ? this.feed(row.version) : undefined;
  }

  feed(version: number): FeedSnapshot | undefined {
    const row = this.db.prepare('SELECT version, created_at, sources FROM feeds WHERE version=?').get(version) as
      | { version: number; created_at: string; sources: string }
      | undefined;
    if (!row) return undefined;
    const advisories = (this.db.prepare('SELECT value FROM advisories WHERE feed_version=? ORDER BY seq').all(version) as { value: string }[]).map(
      (r) => JSON.parse(r.value) as Advisory,
    );
    return { version: row.version, createdAt: row.created_at, sources: JSON.parse(row.sources) as string[], advisories };
  }

  listFeeds(): FeedSummary[] {
    const rows = this.db
      .prepare(
        `SELECT f.version, f.created_at, f.sources, (SELECT COUNT(*) FROM advisories a WHERE a.feed_version=f.version) AS n
         FROM feeds f ORDER BY f.version`,
      )
      .all() as { version: number; created_at: string; sources: string; n: number }[];
    return rows.map((r) => ({ version: r.version, createdAt: r.created_at, sources: JSON.parse(r.sources) as string[], advisories: r.n }));
  }

  // ---- image inventories ------------------------------------------------------------------

  putImageInventory(row: ImageInventoryRow): void {
    this.db
      .prepare('INSERT OR REPLACE INTO image_inventories (image_id, inventory, compliance) VALUES (?, ?, ?)')
      .run(row.imageId, JSON.stringify(row.inventory), JSON.stringify(row.compliance));
  }

  imageInventory(imageId: string): ImageInventoryRow | undefined {
    const row = this.db.prepare('SELECT inventory, compliance FROM image_inventories WHERE image_id=?').get(imageId) as
      | { inventory: string; compliance: string }
      | undefined;
    return row ? { imageId, inventory: JSON.parse(row.inventory) as Inventory, compliance: JSON.parse(row.compliance) as ComplianceFinding[] } : undefined;
  }

  imageIdsWithInventory(): Set<string> {
    return new Set((this.db.prepare('SELECT image_id FROM image_inventories').all() as { image_id: string }[]).map((r) => r.image_id));
  }

  deleteImageInventory(imageId: string): void {
    this.db.prepare('DELETE FROM image_inventories WHERE image_id=?').run(imageId);
  }

  // ---- container inventories --------------------------------------------------------------

  putContainerInventory(row: ContainerInventoryRow): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO container_inventories
         (container_id, tenant, image_id, inventory, runtime, compliance, known_findings) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        row.containerId,
        row.tenant,
        row.imageId,
        JSON.stringify(row.inventory),
        row.runtime ? JSON.stringify(row.runtime) : null,
        JSON.stringify(row.compliance),
        JSON.stringify(row.knownFindings),
      );
  }

  setKnownFindings(containerId: string, keys: string[]): void {
    this.db.prepare('UPDATE container_inventories SET known_findings=? WHERE container_id=?').run(JSON.stringify(keys), containerId);
  }

  containerInventory(containerId: string): ContainerInventoryRow | undefined {
    const row = this.db.prepare('SELECT * FROM container_inventories WHERE container_id=?').get(containerId) as DbContainerRow | undefined;
    return row ? decodeContainer(row) : undefined;
  }

  containerIds(): string[] {
    return (this.db.prepare('SELECT container_id FROM container_inventories').all() as { container_id: string }[]).map((r) => r.container_id);
  }

  deleteContainerInventory(containerId: string): void {
    this.db.prepare('DELETE FROM container_inventories WHERE container_id=?').run(containerId);
  }

  close(): void {
    this.db.close();
  }
}

interface DbContainerRow {
  container_id: string;
  tenant: string;
  image_id: string;
  inventory: string;
  runtime: string | null;
  compliance: string;
  known_findings: string;
}

function decodeContainer(row: DbContainerRow): ContainerInventoryRow {
  return {
    containerId: row.container_id,
    tenant: row.tenant,
    imageId: row.image_id,
    inventory: JSON.parse(row.inventory) as Inventory,
    runtime: row.runtime ? (JSON.parse(row.runtime) as RuntimeState) : null,
    compliance: JSON.parse(row.compliance) as ComplianceFinding[],
    knownFindings: JSON.parse(row.known_findings) as string[],
  };
}
