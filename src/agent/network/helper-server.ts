import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { helperPath } from '../userns/helper.js';

/**
 * One resident `berth-userns serve` (native/berth-userns.c) that runs the helper's net-*
 * commands for this Berth process. Starting a process from Node costs a fork of the whole
 * Node process (2–3 ms on an idle 2-core machine, far more under load), which was most of an
 * attach; the server forks only its own small self per request.
 *
 * Requests go one a line (arguments separated by tabs) and are answered in order, one line
 * each: "<exit code> <message>". The server is started on first use and again after it died;
 * a death fails the requests in flight (their callers roll back as for any failure). It exits
 * when Berth's end of its stdin closes or Berth dies, and never keeps Node's event loop alive
 * while idle.
 */

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
  args: string[];
}

/** One running server and the requests it has yet to answer, in the order they were sent. */
interface Connection {
  child: ChildProcessByStdio<Writable, Readable, null>;
  pending: Pending[];
  buffered: string;
}

export class HelperServer {
  private current: Connection | undefined;

  constructor(private readonly path: () => string = helperPath) {}

  /** Runs one net-* command; rejects with the helper's message when it fails. */
  run(args: string[]): Promise<void> {
    const bad = args.find((a) => /[\t\n]/.test(a));
    if (bad !== undefined) return Promise.reject(new Error(`berth-userns: argument with a tab or newline: ${JSON.stringify(bad)}`));
    return new Promise((resolve, reject) => {
      const connection = this.current ?? this.start();
      connection.pending.push({ resolve, reject, args });
      setRef(connection, true);
      connection.child.stdin.write(`${args.join('\t')}\n`);
    });
  }

  /**
   * Ends the server (Berth's clean shutdown): it answers what it was sent, then exits. A later
   * run starts a new one.
   */
  close(): void {
    this.current?.child.stdin.end();
    this.current = undefined;
  }

  private start(): Connection {
    const path = this.path();
    const connection: Connection = { child: spawn(path, ['serve'], { stdio: ['pipe', 'pipe', 'inherit'] }), pending: [], buffered: '' };
    this.current = connection;
    const { child } = connection;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => onData(connection, path, chunk));
    // Write errors surface as the exit below (EPIPE when the server died).
    child.stdin.on('error', () => undefined);
    const failAll = (why: string): void => {
      if (this.current === connection) this.current = undefined;
      for (const p of connection.pending.splice(0)) p.reject(new Error(`${path} serve ${why} before answering: ${p.args.join(' ')}`));
    };
    child.on('error', (err) => failAll(`failed (${err.message})`));
    child.on('exit', (code, signal) => failAll(`exited (${signal ?? code})`));
    return connection;
  }
}

function onData(connection: Connection, path: string, chunk: string): void {
  connection.buffered += chunk;
  for (let nl = connection.buffered.indexOf('\n'); nl >= 0; nl = connection.buffered.indexOf('\n')) {
    const line = connection.buffered.slice(0, nl);
    connection.buffered = connection.buffered.slice(nl + 1);
    const request = connection.pending.shift();
    if (!request) continue;
    const space = line.indexOf(' ');
    const code = Number(space < 0 ? line : line.slice(0, space));
    const message = space < 0 ? '' : line.slice(space + 1);
    if (code === 0) request.resolve();
    else request.reject(new Error(`${path} ${request.args.join(' ')} failed (exit ${code}): ${message}`));
  }
  if (connection.pending.length === 0) setRef(connection, false);
}

/** Keeps the event loop alive only while an answer is awaited. */
function setRef(connection: Connection, wanted: boolean): void {
  const { child } = connection;
  const streams = [child.stdout, child.stdin] as unknown as { ref?: () => void; unref?: () => void }[];
  if (wanted) {
    child.ref();
    for (const s of streams) s.ref?.();
  } else {
    child.unref();
    for (const s of streams) s.unref?.();
  }
}

/** The server of this Berth process. */
export const helperServer = new HelperServer();
