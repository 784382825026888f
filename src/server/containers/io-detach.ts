import { invalidArgument } from '../../common/errors.js';

/**
 * Docker's detach keys: a sequence typed on an attached stdin that detaches the client and
 * leaves the process running. Written as comma-separated keys, each one character or
 * `ctrl-<x>` with x in a-z, @, [, \, ], ^, _ (the default is ctrl-p,ctrl-q).
 */
export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

const CTRL_SPECIAL: Record<string, number> = { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 };

/** The byte sequence of a detach-keys spec; InvalidArgument with Docker's message when malformed. */
export function parseDetachKeys(spec: string): Buffer {
  const bytes: number[] = [];
  for (const key of spec.split(',')) {
    const lower = key.toLowerCase();
    if (key.length === 1) {
      bytes.push(key.charCodeAt(0));
      continue;
    }
    if (lower.startsWith('ctrl-') && key.length === 6) {
      const ch = lower[5]!;
      if (ch >= 'a' && ch <= 'z') {
        bytes.push(ch.charCodeAt(0) - 96);
        continue;
      }
      const special = CTRL_SPECIAL[ch];
      if (special !== undefined) {
        bytes.push(special);
        continue;
      }
    }
    throw invalidArgument(`Invalid detach keys (${spec}) provided`);
  }
  return Buffer.from(bytes);
}

/**
 * Watches stdin for the detach sequence. Bytes that might begin the sequence are held back
 * until it is clear they do not complete it (then they are passed on), so a detach never
 * leaks a partial sequence to the process.
 */
export class DetachScanner {
  private held = 0;
  constructor(private readonly keys: Buffer) {}

  /** Returns what to forward to the process, and whether the sequence completed. */
  push(data: Buffer): { forward: Buffer; detached: boolean } {
    if (this.keys.length === 0) return { forward: data, detached: false };
    const out: number[] = [];
    for (const byte of data) {
      if (byte === this.keys[this.held]) {
        this.held += 1;
        if (this.held === this.keys.length) {
          this.held = 0;
          return { forward: Buffer.from(out), detached: true };
        }
        continue;
      }
      // Not the next key: release what was held, then look at this byte afresh.
      for (let i = 0; i < this.held; i++) out.push(this.keys[i]!);
      this.held = 0;
      if (byte === this.keys[0]) {
        this.held = 1;
        if (this.keys.length === 1) return { forward: Buffer.from(out), detached: true };
      } else {
        out.push(byte);
      }
    }
    return { forward: Buffer.from(out), detached: false };
  }

  /** Held bytes that must still reach the process when stdin ends. */
  flush(): Buffer {
    const held = this.keys.subarray(0, this.held);
    this.held = 0;
    return Buffer.from(held);
  }
}
