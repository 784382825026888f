import { Duplex } from 'node:stream';

/**
 * A plain Duplex in front of an HTTP/2 stream, for code that treats it as a connection (node's
 * HTTP server and client, the engine's hijacked attach/exec).
 *
 * Why not the stream itself: string writes to an Http2Stream (node's HTTP server writes its
 * status line and headers as latin1 strings) reached the peer with their first bytes garbled
 * (node 20); here strings become Buffers before they reach the stream. The few net.Socket
 * methods the engine calls (setNoDelay, setKeepAlive, setTimeout) are no-ops on a stream.
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
    // A connection's user may be done with it (an HTTP client after its response) when the
    // tunnel breaks; the error must not then go unhandled and end the process.
    this.on('error', () => undefined);
    inner.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) inner.pause();
    });
    inner.once('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
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
    this.inner.write(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk, callback);
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
