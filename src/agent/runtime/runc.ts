import { execFile } from 'node:child_process';
import { constants as fsConstants, open as openCallback } from 'node:fs';
import { rm, unlink } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const openFd = promisify(openCallback);
/** How long a created container's init may take to answer on its exec fifo. */
const EXEC_FIFO_TIMEOUT_MS = 10_000;

/**
 * A thin typed wrapper around the runc command line.
 *
 * Terms: `root` is runc's state directory (one per Berth agent, `<execRoot>/runc`); an `id` is
 * the container id runc knows. Every call runs `runc --root <root> --log-format json ...` so
 * that runc's own errors come back as JSON lines whose `msg` we can surface verbatim.
 *
 * This module knows nothing about Berth errors or conmon: it throws `RuncError` carrying runc's
 * message, and the runtime translates those into BerthError kinds.
 */

export type RuncStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

export interface RuncState {
  id: string;
  pid: number;
  status: RuncStatus;
  bundle: string;
  created: string;
}

/** The `linux.resources` subset `runc update -r` accepts. */
export interface RuncResources {
  memory?: { limit?: number; reservation?: number; swap?: number };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string };
  pids?: { limit: number };
  blockIO?: { weight?: number };
}

/** runc failed; `message` is runc's own error text (the `msg` of its JSON log line). */
export class RuncError extends Error {
  readonly args: string[];
  readonly exitCode: number | null;
  constructor(message: string, args: string[], exitCode: number | null) {
    super(message);
    this.name = 'RuncError';
    this.args = args;
    this.exitCode = exitCode;
  }
  /** runc reports a missing container this way for every subcommand. */
  get notFound(): boolean {
    return /container does not exist|container with id .* does not exist/.test(this.message);
  }
}

/**
 * Extracts runc's error text from its stderr: JSON log lines (`--log-format json`), logfmt lines
 * (`time=... level=error msg="..."`, as runc prints when the flag is not passed, e.g. under
 * conmon), or plain text. The last error line wins, since runc logs the final cause last.
 */
export function parseRuncError(stderr: string): string {
  let found: string | undefined;
  for (const raw of stderr.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('{')) {
      try {
        const parsed = JSON.parse(line) as { level?: unknown; msg?: unknown };
        if (typeof parsed.msg === 'string' && (parsed.level === 'error' || parsed.level === 'fatal' || found === undefined)) {
          found = parsed.msg;
        }
        continue;
      } catch {
        // not JSON after all; fall through to the other shapes
      }
    }
    const logfmt = /level=(\w+)\s+msg="((?:[^"\\]|\\.)*)"/.exec(line);
    if (logfmt) {
      if (logfmt[1] === 'error' || logfmt[1] === 'fatal' || found === undefined) {
        found = unquoteGo(logfmt[2]!);
      }
      continue;
    }
    found ??= line;
  }
  return found ?? 'runc failed without a message';
}

/** Undoes Go's %q quoting of a logfmt value. */
function unquoteGo(value: string): string {
  try {
    return JSON.parse(`"${value}"`) as string;
  } catch {
    return value.replace(/\\"/g, '"').replace(/\\\\/g, '\\');
  }
}

export class Runc {
  readonly binary: string;
  readonly root: string;

  constructor(options: { binary: string; root: string }) {
    this.binary = options.binary;
    this.root = options.root;
  }

  /** Arguments that go before every subcommand. */
  globalArgs(): string[] {
    return ['--root', this.root, '--log-format', 'json'];
  }

  async run(args: string[], input?: string): Promise<string> {
    const full = [...this.globalArgs(), ...args];
    return new Promise((resolve, reject) => {
      const child = execFile(this.binary, full, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) {
          const code = typeof err.code === 'number' ? err.code : null;
          reject(new RuncError(parseRuncError(stderr || err.message), full, code));
          return;
        }
        resolve(stdout);
      });
      if (input !== undefined) child.stdin?.end(input);
    });
  }

  /**
   * Lets a created container run its program. This is `runc start` without starting a runc
   * process (about 6 ms): a created container's init blocks opening `<root>/<id>/exec.fifo`
   * for writing; `runc start` opens it for reading, reads the byte the init writes, reads on
   * to EOF (the init's exec closes its end) and removes the fifo, which is how runc tells
   * created from running. When the fifo is missing or yields nothing (no such container,
   * already started, init dead), the real `runc start` runs to report the error in its words.
   */
  async start(id: string): Promise<void> {
    if (/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id) && (await this.startThroughExecFifo(id))) return;
    await this.run(['start', id]);
  }

  /** True when the init took the start signal; false when the caller should ask runc. */
  private async startThroughExecFifo(id: string): Promise<boolean> {
    const fifo = join(this.root, id, 'exec.fifo');
    let fd: number;
    try {
      // Non-blocking: without a writer (init gone) the open still succeeds and reads see EOF.
      fd = await openFd(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    } catch {
      return false;
    }
    const received = await new Promise<number>((resolve, reject) => {
      // A socket over the fifo reads it through the event loop (epoll), not a blocked thread.
      const stream = new Socket({ fd, readable: true, writable: false });
      let bytes = 0;
      const timer = setTimeout(() => {
        stream.destroy();
        reject(new RuncError(`container ${id} did not take the start signal within ${EXEC_FIFO_TIMEOUT_MS} ms`, ['start', id], null));
      }, EXEC_FIFO_TIMEOUT_MS);
      stream.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      stream.once('error', (err) => {
        clearTimeout(timer);
        stream.destroy();
        reject(err);
      });
      stream.once('end', () => {
        clearTimeout(timer);
        stream.destroy();
        resolve(bytes);
      });
    });
    if (received === 0) return false;
    await unlink(fifo).catch(() => undefined);
    return true;
  }

  /** `signal` is a number or a name runc accepts (KILL, SIGKILL). */
  async kill(id: string, signal: number | string, all = false): Promise<void> {
    await this.run(['kill', ...(all ? ['--all'] : []), id, String(signal)]);
  }

  async pause(id: string): Promise<void> {
    await this.run(['pause', id]);
  }

  async resume(id: string): Promise<void> {
    await this.run(['resume', id]);
  }

  async update(id: string, resources: RuncResources): Promise<void> {
    await this.run(['update', '--resources', '-', id], JSON.stringify(resources));
  }

  async state(id: string): Promise<RuncState> {
    return JSON.parse(await this.run(['state', id])) as RuncState;
  }

  /** With force, kills a running container first; succeeds when runc has no such container. */
  async delete(id: string, force: boolean): Promise<void> {
    await this.run(['delete', ...(force ? ['--force'] : []), id]);
  }

  /**
   * What `runc delete` does for a container whose init has exited, has no hooks and had its
   * own pid namespace (so no process of it can be left): remove runc's state directory. The
   * cgroup is the caller's to remove. Saves starting a runc process (about 7 ms) on every exit.
   */
  async removeStoppedState(id: string): Promise<void> {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) throw new RuncError(`invalid container id: ${id}`, [], null);
    await rm(join(this.root, id), { recursive: true, force: true });
  }

  async list(): Promise<RuncState[]> {
    const out = (await this.run(['list', '--format', 'json'])).trim();
    if (out === '' || out === 'null') return [];
    return JSON.parse(out) as RuncState[];
  }
}
