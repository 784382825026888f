import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { errnoCode } from '../../common/errors.js';
import { ChangeSignal } from './changes.js';

/**
 * Reading container logs written by conmon in the k8s-file format.
 *
 * A log line is `<RFC 3339 local time with ns> <stdout|stderr> <F|P> <text>\n`. `F` lines carry a
 * whole line of output and their text includes its newline; `P` lines carry a piece of a longer
 * line (or output without a trailing newline) and the newline after them is conmon's, not the
 * container's. A *message* is one F line, or a run of P lines of one stream completed by the
 * next F line of that stream or by reaching the end of what the file holds.
 *
 * Times are reported the way `docker logs -t` prints them: UTC, nine fraction digits.
 */

export type LogStream = 'stdout' | 'stderr';

export interface LogEntry {
  stream: LogStream;
  data: Buffer;
  /** RFC 3339, UTC, nanoseconds: 2024-01-02T03:04:05.123456789Z */
  time: string;
}

export interface ReadLogsOptions {
  follow: boolean;
  /** Unix seconds (fractional); messages before it are skipped. */
  since?: number;
  /** Unix seconds (fractional); messages after it are skipped (and end a follow). */
  until?: number;
  /** Only the last N messages of what the file holds when reading starts. */
  tail?: number | 'all';
  stdout: boolean;
  stderr: boolean;
  /** Kept for the caller's formatting; entries always carry `time`. */
  timestamps: boolean;
  signal?: AbortSignal;
  /** Settles when the container has exited; a follow then drains the file and ends. */
  exited?: Promise<unknown>;
}

/** Where Berth keeps a container's log below a data root (outside the exec root, so it survives reboots). */
export function logPathFor(dataRoot: string, id: string): string {
  return join(dataRoot, 'containers', id, 'container.log');
}

export interface LogLine {
  stream: LogStream;
  partial: boolean;
  data: Buffer;
  time: string;
  /** Unix seconds with fraction, for since/until comparisons. */
  seconds: number;
}

const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** Converts an RFC 3339 time with any offset to UTC with nine fraction digits, and to Unix seconds. */
export function normalizeTime(text: string): { time: string; seconds: number } | undefined {
  const m = TIME_RE.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = '', zone] = m;
  let offset = 0;
  if (zone !== 'Z') {
    const sign = zone!.startsWith('-') ? -1 : 1;
    offset = sign * (Number(zone!.slice(1, 3)) * 3600 + Number(zone!.slice(4, 6)) * 60);
  }
  const whole = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000 - offset;
  const nanos = frac.padEnd(9, '0');
  const iso = new Date(whole * 1000).toISOString(); // ends in .000Z
  return { time: `${iso.slice(0, 19)}.${nanos}Z`, seconds: whole + Number(nanos) / 1e9 };
}

/** Parses one line of a k8s-file log, without its trailing newline. */
export function parseLogLine(line: Buffer): LogLine | undefined {
  const sp1 = line.indexOf(0x20);
  if (sp1 < 0) return undefined;
  const sp2 = line.indexOf(0x20, sp1 + 1);
  if (sp2 < 0) return undefined;
  const stream = line.toString('latin1', sp1 + 1, sp2);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const tag = line[sp2 + 1];
  if (tag !== 0x46 /* F */ && tag !== 0x50 /* P */) return undefined;
  const when = normalizeTime(line.toString('latin1', 0, sp1));
  if (!when) return undefined;
  const partial = tag === 0x50;
  // "F" with no text at all (rare) still means an empty line.
  const text = line.length > sp2 + 2 ? line.subarray(sp2 + 3) : Buffer.alloc(0);
  const data = partial ? text : Buffer.concat([text, Buffer.from('\n')]);
  return { stream, partial, data, ...when };
}

interface Message {
  stream: LogStream;
  data: Buffer;
  time: string;
  seconds: number;
}

/** Joins P lines into messages; one per stream, because stdout and stderr interleave. */
class MessageAssembler {
  private readonly pending = new Map<LogStream, { parts: Buffer[]; time: string; seconds: number }>();

  push(line: LogLine): Message | undefined {
    const open = this.pending.get(line.stream);
    if (line.partial) {
      if (open) open.parts.push(line.data);
      else this.pending.set(line.stream, { parts: [line.data], time: line.time, seconds: line.seconds });
      return undefined;
    }
    if (!open) return { stream: line.stream, data: line.data, time: line.time, seconds: line.seconds };
    this.pending.delete(line.stream);
    return { stream: line.stream, data: Buffer.concat([...open.parts, line.data]), time: open.time, seconds: open.seconds };
  }

  /** Pieces never completed (output without a final newline), in time order. */
  flush(): Message[] {
    const out = [...this.pending.entries()].map(([stream, p]) => ({ stream, data: Buffer.concat(p.parts), time: p.time, seconds: p.seconds }));
    this.pending.clear();
    return out.sort((a, b) => a.seconds - b.seconds);
  }
}

/** Reads whole lines from a growing file, remembering where it stopped. */
class LineReader {
  private position = 0;
  private rest: Buffer = Buffer.alloc(0);
  constructor(private readonly fh: FileHandle) {}

  async readAvailable(): Promise<Buffer[]> {
    const lines: Buffer[] = [];
    const buf = Buffer.allocUnsafe(256 * 1024);
    for (;;) {
      const { bytesRead } = await this.fh.read(buf, 0, buf.length, this.position);
      if (bytesRead === 0) break;
      this.position += bytesRead;
      let chunk = Buffer.concat([this.rest, buf.subarray(0, bytesRead)]);
      let nl: number;
      while ((nl = chunk.indexOf(0x0a)) >= 0) {
        lines.push(Buffer.from(chunk.subarray(0, nl)));
        chunk = chunk.subarray(nl + 1);
      }
      this.rest = Buffer.from(chunk);
    }
    return lines;
  }
}

async function openIfExists(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

async function* messages(path: string, options: ReadLogsOptions): AsyncGenerator<LogEntry> {
  const { signal } = options;
  let exited = false;
  // Wakes the waits below on abort and exit as well as on file changes.
  const pending = new ChangeSignal();
  let changes: ChangeSignal | undefined;
  const wake = (): void => {
    pending.notify();
    changes?.notify();
  };
  if (signal) {
    if (signal.aborted) pending.notify();
    signal.addEventListener('abort', wake, { once: true });
  }
  const markExited = (): void => {
    exited = true;
    wake();
  };
  options.exited?.then(markExited, markExited);

  let fh = await openIfExists(path);
  // A follow may start before the container wrote anything: wait for the file.
  while (!fh && options.follow && !signal?.aborted && !exited) {
    await pending.wait(100);
    fh = await openIfExists(path);
  }
  if (!fh) {
    signal?.removeEventListener('abort', wake);
    return;
  }

  const wanted = (m: Message): boolean =>
    (m.stream === 'stdout' ? options.stdout : options.stderr) &&
    (options.since === undefined || m.seconds >= options.since) &&
    (options.until === undefined || m.seconds <= options.until);
  const pastUntil = (m: Message): boolean => options.until !== undefined && m.seconds > options.until;
  const entry = (m: Message): LogEntry => ({ stream: m.stream, data: m.data, time: m.time });

  try {
    const reader = new LineReader(fh);
    const assembler = new MessageAssembler();
    const assemble = (lines: Buffer[]): Message[] => {
      const out: Message[] = [];
      for (const raw of lines) {
        const parsed = parseLogLine(raw);
        if (!parsed) continue;
        const m = assembler.push(parsed);
        if (m) out.push(m);
      }
      return out;
    };

    // History: everything in the file now. Tail counts messages of the selected streams and
    // is applied before since/until, as dockerd does.
    // Pieces without their newline yet are passed on once we caught up with the writer, so a
    // prompt without a newline shows up in a follow; a line conmon split is still whole in the
    // file by then in all but a rare race.
    let history = assemble(await reader.readAvailable());
    history.push(...assembler.flush());
    history = history.filter((m) => (m.stream === 'stdout' ? options.stdout : options.stderr));
    const tail = options.tail;
    if (tail !== undefined && tail !== 'all' && tail >= 0) history = tail === 0 ? [] : history.slice(-tail);
    for (const m of history) {
      if (signal?.aborted) return;
      if (pastUntil(m)) return;
      if (wanted(m)) yield entry(m);
    }
    if (!options.follow) return;

    changes = new ChangeSignal(path);
    if (exited || signal?.aborted) changes.notify();
    for (;;) {
      if (signal?.aborted) return;
      const wasExited = exited;
      const fresh = assemble(await reader.readAvailable());
      fresh.push(...assembler.flush());
      for (const m of fresh) {
        if (signal?.aborted) return;
        if (pastUntil(m)) return;
        if (wanted(m)) yield entry(m);
      }
      if (wasExited) return;
      await changes.wait(250);
    }
  } finally {
    signal?.removeEventListener('abort', wake);
    changes?.close();
    pending.close();
    await fh.close();
  }
}

/**
 * Streams a container's log as `LogEntry` objects. Without follow it ends at the end of the
 * file; with follow it keeps reading new lines until `exited` settles and the file is drained,
 * or until `signal` aborts (then it ends quietly, without an error).
 */
export function readLogs(path: string, options: ReadLogsOptions): Readable {
  return Readable.from(messages(path, options), { objectMode: true });
}
