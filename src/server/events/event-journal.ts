import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../../common/errors.js';
import type { DockerEvent } from './types.js';

/**
 * The on-disk history of one tenant's events: a JSON-lines file `<dir>/<tenant>.jsonl`, one
 * event per line, oldest first.
 *
 * Lifecycle: `load` reads what an earlier run left (skipping a torn last line after a crash);
 * `append` writes one line with a plain write(2) — the line is in the kernel once append
 * returns, so a crash of Berth loses nothing, a power loss may lose the last events (events
 * are history, not state: nothing is rebuilt from them). When the file holds more than
 * twice the retained count, `compact` rewrites it with only the retained events (temp file,
 * fsync, rename), so the file stays bounded and a reader never sees a half-written file.
 */
export class EventJournal {
  private fd: number | undefined;
  private linesInFile = 0;

  constructor(
    private readonly path: string,
    private readonly compactAbove: number,
  ) {}

  /** The file name for a tenant: its name when plain, else percent-encoded (no `/`, no `..`). */
  static fileFor(dir: string, tenant: string): string {
    const safe = /^[A-Za-z0-9_-]+$/.test(tenant)
      ? tenant
      : encodeURIComponent(tenant).replace(/[.!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    return join(dir, `${safe}.jsonl`);
  }

  load(): DockerEvent[] {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
    const events: DockerEvent[] = [];
    for (const line of text.split('\n')) {
      if (line === '') continue;
      this.linesInFile++;
      try {
        events.push(JSON.parse(line) as DockerEvent);
      } catch {
        // A line torn by a crash mid-write; the rest of the history is still good.
      }
    }
    return events;
  }

  append(event: DockerEvent, retained: () => readonly DockerEvent[]): void {
    if (this.linesInFile >= this.compactAbove) {
      this.compact(retained());
      return;
    }
    if (this.fd === undefined) {
      mkdirSync(join(this.path, '..'), { recursive: true });
      this.fd = openSync(this.path, 'a', 0o600);
    }
    writeSync(this.fd, `${JSON.stringify(event)}\n`);
    this.linesInFile++;
  }

  /** Rewrites the file with exactly these events (which include the newest one). */
  compact(events: readonly DockerEvent[]): void {
    this.close();
    mkdirSync(join(this.path, '..'), { recursive: true });
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, events.map((e) => `${JSON.stringify(e)}\n`).join(''));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    this.linesInFile = events.length;
  }

  close(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }
}
