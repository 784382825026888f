import type { Duplex, Readable, Writable } from 'node:stream';
import type { StdioChunk } from '../../agent/runtime/types.js';
import { DetachScanner } from './io-detach.js';
import { encodeFrames } from './stdcopy.js';

/**
 * Moving bytes between a client's hijacked connection and a process's stdio, shared by attach
 * and exec start.
 *
 * Terms: the *client* is the hijacked socket (raw stdin in, framed or raw output out); the
 * *session* is the runtime's StdioSession. Output stops when the session's output ends or the
 * client goes away; stdin stops on client EOF, on the detach keys, or when the client goes away.
 */

export interface OutputOptions {
  tty: boolean;
  stdout: boolean;
  stderr: boolean;
}

/** True once the client closed its connection (fully, not just its write side). */
export function clientGone(client: Duplex): boolean {
  return client.destroyed || client.writableEnded || !client.writable;
}

/** Writes, waiting for drain; resolves false when the client went away meanwhile. */
export function writeToClient(client: Duplex, bytes: Buffer): Promise<boolean> {
  if (clientGone(client)) return Promise.resolve(false);
  if (bytes.length === 0) return Promise.resolve(true);
  if (client.write(bytes)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      client.off('drain', onDrain);
      client.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    client.on('drain', onDrain);
    client.on('close', onClose);
  });
}

/** Output chunk as the client's wire format wants it. */
export function encodeChunk(chunk: StdioChunk, tty: boolean): Buffer {
  return tty ? chunk.data : encodeFrames(chunk.stream, chunk.data);
}

/**
 * Copies object-mode {stream, data} chunks to the client until the source ends or the client
 * leaves. Resolves true when the source ended (everything was delivered).
 */
export async function pumpOutput(source: Readable, client: Duplex, options: OutputOptions): Promise<boolean> {
  const closed = new Promise<'closed'>((resolve) => {
    if (client.destroyed) resolve('closed');
    client.once('close', () => resolve('closed'));
  });
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<StdioChunk>;
  // A source that fails has ended as far as the client is concerned.
  const nextChunk = (): Promise<IteratorResult<StdioChunk>> =>
    iterator.next().catch((): IteratorResult<StdioChunk> => ({ done: true, value: undefined }));
  try {
    for (;;) {
      const next = await Promise.race([nextChunk(), closed]);
      if (next === 'closed') return false;
      if (next.done) return true;
      const chunk = next.value;
      if (!options.tty && !(chunk.stream === 'stdout' ? options.stdout : options.stderr)) continue;
      if (options.tty && !options.stdout && !options.stderr) continue;
      if (!(await writeToClient(client, encodeChunk(chunk, options.tty)))) return false;
    }
  } finally {
    // Stop the source when we leave early; a finished source ignores this.
    void iterator.return?.();
  }
}

export interface StdinOptions {
  detachKeys: Buffer;
  /** End the process's stdin when the client ends its input (StdinOnce; always for exec). */
  closeOnEof: boolean;
  onDetach: () => void;
}

/**
 * Forwards the client's raw input to `stdin`, watching for the detach keys. Returns a function
 * that stops forwarding (without ending stdin).
 */
export function pumpStdin(client: Duplex, stdin: Writable, options: StdinOptions): () => void {
  const scanner = new DetachScanner(options.detachKeys);
  let stopped = false;
  const onData = (data: Buffer): void => {
    if (stopped) return;
    const { forward, detached } = scanner.push(data);
    if (forward.length > 0 && !stdin.destroyed && !stdin.writableEnded) {
      // Backpressure from the process reaches the client through TCP: pause until drained.
      if (!stdin.write(forward)) {
        client.pause();
        stdin.once('drain', () => client.resume());
      }
    }
    if (detached) {
      stop();
      options.onDetach();
    }
  };
  const onEnd = (): void => {
    if (stopped) return;
    const rest = scanner.flush();
    if (rest.length > 0 && !stdin.writableEnded) stdin.write(rest);
    stop();
    if (options.closeOnEof && !stdin.writableEnded && !stdin.destroyed) stdin.end();
  };
  const stop = (): void => {
    stopped = true;
    client.off('data', onData);
    client.off('end', onEnd);
  };
  // A process that is gone makes writes fail; that is not the client's problem.
  stdin.on('error', () => undefined);
  client.on('data', onData);
  client.on('end', onEnd);
  // The client may have half-closed already (`cat </dev/null` sends its FIN right after the
  // request): 'end' was then emitted before we listened and will not come again.
  if (client.readableEnded) onEnd();
  else client.resume();
  return stop;
}

/** Reads and drops the client's input (no stdin attached) so its half-close is still seen. */
export function drainInput(client: Duplex): void {
  client.on('data', () => undefined);
  client.resume();
}

/** Ends the client's connection politely (FIN after pending writes), then frees it. */
export function endClient(client: Duplex): void {
  if (client.destroyed) return;
  client.end(() => client.destroy());
  // A client that never reads would keep the socket forever.
  setTimeout(() => client.destroy(), 5000).unref();
}
