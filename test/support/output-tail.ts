import type { ChildProcess } from 'node:child_process';

/**
 * The recent output of a server a test started, for its failure messages and for tests that
 * read it: chunks are appended as they arrive, and once the text passes `maxChars` only its
 * newer half is kept, so a long run cannot grow it without bound.
 */
export class OutputTail {
  private kept = '';

  constructor(private readonly maxChars: number) {}

  /** Appends a chunk (bound: usable as a 'data' listener). */
  readonly append = (chunk: Buffer | string): void => {
    this.kept += chunk.toString();
    if (this.kept.length > this.maxChars) this.kept = this.kept.slice(-this.maxChars / 2);
  };

  /** Keeps the process's stdout and stderr. */
  follow(proc: ChildProcess): void {
    proc.stdout?.on('data', this.append);
    proc.stderr?.on('data', this.append);
  }

  /** All that is kept, or its last `chars` characters. */
  text(chars?: number): string {
    return chars === undefined ? this.kept : this.kept.slice(-chars);
  }
}
