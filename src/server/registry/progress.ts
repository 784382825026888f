/**
 * Docker's JSON progress stream, as `docker pull` and `push` read it: one JSON object per line
 * with `status`, an optional layer `id` and `progressDetail` ({current, total}); the CLI draws
 * bars from progressDetail on a terminal and prints each status line otherwise.
 */
export interface ProgressMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  /** The legacy rendered bar; the CLI shows it only when progressDetail is absent. */
  progress?: string;
  aux?: Record<string, unknown>;
}

/** Where a pull or push reports progress; the API edge writes it to the response. */
export interface ProgressSink {
  write(message: ProgressMessage): void;
}

export const discardProgress: ProgressSink = { write: () => undefined };

/** Docker's short layer id: the first 12 hex digits of a digest. */
export const shortId = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

/**
 * Byte progress for one layer, rate-limited so a fast local download does not emit a line per
 * 64 KiB chunk (at most every 100 ms, plus the final count).
 */
export class ByteProgress {
  private last = 0;
  constructor(
    private readonly sink: ProgressSink,
    private readonly id: string,
    private readonly action: string,
    private readonly total: number,
  ) {}

  update(current: number): void {
    const now = Date.now();
    if (current < this.total && now - this.last < 100) return;
    this.last = now;
    this.sink.write({ status: this.action, id: this.id, progressDetail: { current, total: this.total }, progress: bar(current, this.total) });
  }
}

function bar(current: number, total: number): string {
  const width = 50;
  const filled = total > 0 ? Math.min(width, Math.floor((current / total) * width)) : 0;
  const arrow = filled < width ? '>' : '';
  return `[${'='.repeat(Math.max(0, filled - (arrow ? 1 : 0)))}${arrow}${' '.repeat(width - Math.max(filled, arrow ? 1 : 0))}] ${human(current)}/${human(total)}`;
}

function human(bytes: number): string {
  if (bytes < 1000) return `${bytes}B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 3 : value < 100 ? 2 : 1)}${units[unit]}`;
}
