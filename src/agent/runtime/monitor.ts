import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { BundleLayout } from './bundle.js';
import { parseRuncError } from './runc.js';

/**
 * Starting conmon, the per-container monitor.
 *
 * conmon (2.1.x, API version 1) forks twice and detaches (setsid), so it outlives Berth. It runs
 * `runc create` (or `runc exec --detach`) with the container's stdio on pipes or a pty it holds,
 * writes every chunk of output to a k8s-file log and to clients of its attach socket, and, when
 * the process exits, writes the exit status to `<persist-dir>/exit` (128+n for signal n).
 *
 * Talking to it while it starts uses inherited file descriptors named by environment variables:
 * - `_OCI_SYNCPIPE`: conmon writes JSON lines `{"data": N}` (N = pid, or for exec later the
 *   exit code) or `{"data": -1, "message": "<runc stderr>"}` when the runtime failed.
 * - `_OCI_STARTPIPE`: conmon blocks on one read before it forks; with `--exec-attach` the runc
 *   child blocks on a second read, which gives us time to connect to the attach socket.
 * - `_OCI_ATTACHPIPE` (exec only): conmon writes `{"data": 0}` once its attach socket listens.
 */

/** A failure reported by conmon or the OCI runtime under it; `message` is the runtime's text. */
export class MonitorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MonitorError';
  }
}

/** Finds an executable by name on PATH (conmon insists on an absolute runtime path). */
export function resolveBinary(name: string): string {
  if (isAbsolute(name)) return name;
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  throw new Error(`${name} not found on PATH`);
}

interface SyncMessage {
  data: number;
  message?: string;
}

/** Reads conmon's newline-delimited JSON messages from one inherited pipe. */
class SyncReader {
  private buffer = '';
  private readonly queue: SyncMessage[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(private readonly stream: Readable) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (line === '') continue;
        try {
          this.queue.push(JSON.parse(line) as SyncMessage);
        } catch {
          this.queue.push({ data: -1, message: `unreadable message from conmon: ${line}` });
        }
      }
      this.wake?.();
    });
    const finish = (): void => {
      this.ended = true;
      this.wake?.();
    };
    stream.on('end', finish);
    stream.on('close', finish);
    stream.on('error', finish);
  }

  /** The next message, or undefined when conmon closed the pipe (or the timeout passed). */
  async next(timeoutMs: number): Promise<SyncMessage | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const msg = this.queue.shift();
      if (msg) return msg;
      if (this.ended) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  close(): void {
    this.stream.destroy();
  }
}

export interface MonitorCommon {
  conmon: string;
  runc: string;
  /** Arguments for runc before its subcommand (--root ..., --log-format ...). */
  runcGlobalArgs: string[];
}

export interface ContainerMonitorOptions {
  id: string;
  layout: BundleLayout;
  logPath: string;
  tty: boolean;
  stdin: boolean;
  /** Keep the container's stdin open when an attached client ends its input (Docker's !StdinOnce). */
  leaveStdinOpen: boolean;
  timeoutMs?: number;
}

export interface ExecMonitorOptions {
  containerId: string;
  execId: string;
  layout: BundleLayout;
  processSpecPath: string;
  tty: boolean;
  stdin: boolean;
  timeoutMs?: number;
}

function baseArgs(common: MonitorCommon, cid: string, cuuid: string, layout: BundleLayout): string[] {
  const args = [
    '--api-version', '1',
    '-c', cid,
    '-u', cuuid,
    '-r', common.runc,
    '-b', layout.dir,
    '-p', layout.pidFile,
    '-P', layout.conmonPidFile,
    '-0', layout.dir,
    // The socket lives in the bundle itself; clients reach long paths through /proc/self/fd.
    '--full-attach',
    '--log-level', 'error',
  ];
  for (const arg of common.runcGlobalArgs) args.push('--runtime-arg', arg);
  return args;
}

function spawnConmon(common: MonitorCommon, args: string[], cwd: string, pipes: string[]): ChildProcess {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  pipes.forEach((name, i) => {
    env[name] = String(3 + i);
  });
  return spawn(common.conmon, args, {
    cwd, // conmon drops its `oom` marker into its working directory
    env,
    stdio: ['ignore', 'ignore', 'pipe', ...pipes.map(() => 'pipe' as const)],
  });
}

/** Collects what conmon says on stderr before it detaches (argument errors and the like). */
function collectStderr(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    if (text.length < 16384) text += chunk;
  });
  return () => text.trim();
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

function failureFrom(msg: SyncMessage | undefined, stderr: string, what: string): MonitorError {
  if (msg?.message) return new MonitorError(parseRuncError(msg.message));
  if (stderr) return new MonitorError(stderr.replace(/^\[conmon:\w\]:\s*/gm, ''));
  return new MonitorError(`${what} failed without a message`);
}

/** Reads the pid conmon's first process wrote for its detached child. */
export async function readPidFile(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts the monitor for a container and waits until `runc create` finished: on success the
 * container exists in state `created` and its init pid is returned. On failure throws a
 * MonitorError with runc's message; the caller cleans up runc state, bundle and cgroup.
 */
export async function launchContainerMonitor(common: MonitorCommon, options: ContainerMonitorOptions): Promise<{ pid: number }> {
  const args = baseArgs(common, options.id, options.id, options.layout);
  args.push('-l', `k8s-file:${options.logPath}`);
  if (options.tty) args.push('-t');
  if (options.stdin) args.push('-i');
  if (options.stdin && options.leaveStdinOpen) args.push('--leave-stdin-open');
  const child = spawnConmon(common, args, options.layout.dir, ['_OCI_SYNCPIPE']);
  const stderr = collectStderr(child);
  const sync = new SyncReader(child.stdio[3] as Readable);
  try {
    const msg = await sync.next(options.timeoutMs ?? 120_000);
    await exitOf(child);
    if (msg && msg.data > 0 && !msg.message) return { pid: msg.data };
    throw failureFrom(msg, stderr(), 'runc create');
  } finally {
    sync.close();
    child.stderr?.destroy();
  }
}

export interface ExecMonitor {
  pid: number;
  /** Exit status of the exec'd process (128+n for signal n). */
  exited: Promise<number>;
}

/**
 * Starts a monitor that runs `runc exec --detach` for one process in a running container.
 * `onListening` runs once conmon's attach socket for the session listens and before the process
 * starts, so a client connected there misses no output. Throws MonitorError with runc's message
 * when the exec fails (e.g. executable not found).
 */
export async function launchExecMonitor(
  common: MonitorCommon,
  options: ExecMonitorOptions,
  onListening: () => Promise<void>,
): Promise<ExecMonitor> {
  const args = baseArgs(common, options.containerId, options.execId, options.layout);
  args.push('-e', '--exec-process-spec', options.processSpecPath, '--exec-attach', '-l', 'none');
  if (options.tty) args.push('-t');
  if (options.stdin) args.push('-i');
  const child = spawnConmon(common, args, options.layout.dir, ['_OCI_SYNCPIPE', '_OCI_STARTPIPE', '_OCI_ATTACHPIPE']);
  const stderr = collectStderr(child);
  const sync = new SyncReader(child.stdio[3] as Readable);
  const start = child.stdio[4] as Writable;
  const attach = new SyncReader((child.stdio as unknown as Readable[])[5]!);
  const timeout = options.timeoutMs ?? 120_000;
  const cleanup = (): void => {
    sync.close();
    attach.close();
    start.destroy();
    child.stderr?.destroy();
  };
  try {
    // First read: conmon waits for it before forking (meant for cgroup placement; nothing to do).
    start.write('0');
    const ready = await attach.next(timeout);
    if (!ready || ready.data !== 0) throw failureFrom(ready, stderr(), 'runc exec');
    await onListening();
    // Second read: the runc child waits for it, so the process starts only now.
    start.write('1');
    const started = await sync.next(timeout);
    if (!started || started.data <= 0 || started.message) throw failureFrom(started, stderr(), 'runc exec');
    const exited = sync.next(2 ** 31 - 1).then((msg) => {
      cleanup();
      if (!msg) throw new MonitorError('exec monitor exited without an exit status');
      return msg.data;
    });
    // Callers that never await the exit must not see an unhandled rejection.
    exited.catch(() => undefined);
    return { pid: started.data, exited };
  } catch (err) {
    cleanup();
    throw err;
  }
}
