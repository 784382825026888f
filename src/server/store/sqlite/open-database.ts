import Database from 'better-sqlite3';

/**
 * Opens (creating when absent) one of Berth's SQLite files the way all of them are used:
 * WAL, so readers never wait for the writer, and a busy timeout so that a second connection
 * waits for a lock instead of failing. `synchronous` is the durability each caller promises:
 * FULL survives power loss; NORMAL survives a crash of Berth but may lose the last commits on
 * power loss.
 */
export function openDatabase(path: string, synchronous: 'FULL' | 'NORMAL'): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('busy_timeout = 5000');
  return db;
}
