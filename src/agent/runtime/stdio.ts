import { closeSync, openSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { SeqpacketSocket } from 'node-unix-socket';
import type { StdioChunk, StdioSession } from './types.js';

/**
 * A client of conmon's attach socket.
 *
 * Wire format (SOCK_SEQPACKET, one message per packet):
 * - conmon → client: first byte names the pipe (2 = stdout, 3 = stderr; a TTY is all stdout),
 *   the rest is the data of one read from the container, at most 8 KiB.
 * - client → conmon: raw bytes for the container's stdin; conmon reads at most 32 KiB - 1 per
 *   packet and truncates the rest, so writes are cut into smaller packets.
 * - client shuts down its write side: conmon closes the container's stdin unless it runs with
 *   `--leave-stdin-open`. This happens for ANY attached client that goes away, with or without
 *   stdin, which is why a session without stdin on a stdin-once container should stay open
 *   until the output ends.
 * - conmon closes the connection after the process exited and its output was drained.
 */

const STDOUT_PIPE = 2;
const STDERR_PIPE = 3;
/** Under conmon's CONN_SOCK_BUF_SIZE - 1 (32767), which it would silently truncate. */
const MAX_STDIN_PACKET = 32 * 1024 - 1;
/** sizeof(sockaddr_un.sun_path) minus the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** Splits one packet from conmon into a chunk; undefined for packets we do not understand. */
export function decodeAttachPacket(packet: Buffer): StdioChunk | undefined {
  if (packet.length < 1) return undefined;
  const kind = packet[0];
  if (kind === STDOUT_PIPE) return { stream: 'stdout', data: packet.subarray(1) };
  if (kind === STDERR_PIPE) return { stream: 'stderr', data: packet.subarray(1) };
  return undefined;
}

/** Cuts stdin data into packets conmon reads whole. */
export function stdinPackets(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += MAX_STDIN_PACKET) out.push(data.subarray(off, off + MAX_STDIN_PACKET));
  return out;
}

/**
 * Connects to a SOCK_SEQPACKET socket at any path length: a long path is reached through
 * `/proc/self/fd/<dirfd>/<name>`, which the kernel resolves for the connecting process.
 */
async function connectSeqpacket(path: string): Promise<SeqpacketSocket> {
  let dirFd: number | undefined;
  let target = path;
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    dirFd = openSync(dirname(path), 'r');
    target = `/proc/self/fd/${dirFd}/${basename(path)}`;
  }
  try {
    const socket = new SeqpacketSocket();
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      try {
        socket.connect(target, () => {
          socket.off('error', reject);
          resolve();
        });
      } catch (err) {
        reject(err);
      }
    });
    return socket;
  } finally {
    if (dirFd !== undefined) closeSync(dirFd);
  }
}

/**
 * Opens a session on conmon's attach socket. Output arrives as `{stream, data}` objects and ends
 * when conmon closes the connection; `stdin` (when asked for) ends by shutting down our write
 * side, which conmon turns into EOF on the container's stdin.
 */
export async function openAttachSession(socketPath: string, options: { stdin: boolean }): Promise<StdioSession> {
  const socket = await connectSeqpacket(socketPath);
  let closed = false;
  const output = new Readable({
    objectMode: true,
    // conmon cannot be paused through this socket; output is buffered here meanwhile.
    read() {},
  });
  const finish = (): void => {
    if (!output.readableEnded) output.push(null);
  };
  socket.on('data', (packet: Buffer) => {
    const chunk = decodeAttachPacket(packet);
    if (chunk && chunk.data.length > 0) output.push(chunk);
  });
  // conmon closed the connection: the process is gone, so release our side too.
  const onRemoteEnd = (): void => {
    finish();
    if (!closed) {
      closed = true;
      socket.destroy();
    }
  };
  socket.on('end', onRemoteEnd);
  socket.on('close', onRemoteEnd);
  // A failing socket ends the session like a closed one: the process's output is kept in the
  // log either way, and a reader waiting for the end must get it (an error would leave the
  // client of an attach or exec waiting forever).
  socket.on('error', () => onRemoteEnd());

  let stdin: Writable | undefined;
  if (options.stdin) {
    stdin = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        // Input for a process that is gone is dropped, as a closed pipe would.
        if (closed) {
          callback();
          return;
        }
        const packets = stdinPackets(chunk);
        if (packets.length === 0) {
          callback();
          return;
        }
        // The native write reports a broken connection (the process went away meanwhile) by
        // throwing or by rejecting the promise it returns; either way the input is dropped.
        let done = false;
        const complete = (): void => {
          if (!done) {
            done = true;
            callback();
          }
        };
        try {
          packets.forEach((packet, i) => {
            const result = socket.write(packet, 0, packet.length, i === packets.length - 1 ? complete : undefined) as unknown;
            if (result instanceof Promise) result.catch(() => complete());
          });
        } catch {
          complete();
        }
      },
      final(callback) {
        if (closed) {
          callback();
          return;
        }
        try {
          socket.end(() => callback());
        } catch (err) {
          callback(err instanceof Error ? err : new Error(String(err)));
        }
      },
    });
    // A write after the process went away fails with EPIPE; the pump that feeds stdin decides
    // what that means, and an unobserved error must never take the whole server down.
    stdin.on('error', () => undefined);
  }

  return {
    output,
    stdin,
    close() {
      if (closed) return;
      closed = true;
      socket.destroy();
      finish();
    },
  };
}
