import { Duplex } from 'node:stream';

/**
 * A plain Duplex in front of an HTTP/2 stream, for code that treats it as a connection (node's
 * HTTP server and client, the engine's hijacked attach/exec).
 *
 * Why not the stream itself: node's Http2Stream takes writes without copying them, and the
 * HTTP server reuses the buffer it builds response headers in, so the first bytes of a
 * response could arrive garbled (seen on node 20); here every write is copied into a buffer
 * of its own before it reaches the stream. The few net.Socket methods the engine calls
 * (setNoDelay, setKeepAlive, setTimeout) are harmless no-ops on a stream.
 *
 * Ends and errors pass both ways: end() ends our side of the stream (half-close, as attach
 * needs), destroy() resets it.
 */
export class StreamConnection extends Duplex {
  readonly remoteAddress: string | undefined;

  constructor(
    private readonly inner: Duplex,
    remoteAddress?: string,
  ) {
    super({ allowHalfOpen: true });
    this.remoteAddress = remoteAddress;
    inner.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) inner.pause();
    });
    inner.once('end', () => this.push(null));
    inner.once('error', (err) => this.destroy(err));
    // The stream is gone (ended both ways, or reset): we are too, once what it sent was read.
    inner.once('close', () => {
      if (this.destroyed) return;
      this.push(null);
      if (this.readableLength === 0) this.destroy();
      else this.once('end', () => this.destroy());
    });
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer | string, encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    const copy = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : Buffer.from(chunk);
    this.inner.write(copy, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.inner.end(callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.inner.destroyed) this.inner.destroy(err ?? undefined);
    callback(err);
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  setTimeout(_ms: number, _callback?: () => void): this {
    return this;
  }
}
