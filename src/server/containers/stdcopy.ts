import { Transform, type TransformCallback } from 'node:stream';

/**
 * Docker's multiplexed stdio framing ("stdcopy"), used on attach, exec start and logs when the
 * process has no TTY (content type application/vnd.docker.multiplexed-stream).
 *
 * Each frame is an 8-byte header followed by the payload:
 *   byte 0     stream: 0 stdin, 1 stdout, 2 stderr, 3 systemerr (an error after the stream began)
 *   bytes 1-3  zero
 *   bytes 4-7  payload length, big-endian uint32
 *
 * Invariant: a frame never carries more than MAX_FRAME_PAYLOAD bytes; longer chunks are split so
 * a client's fixed buffers are never asked to hold more than Docker itself sends.
 */
export type StdStream = 'stdin' | 'stdout' | 'stderr' | 'systemerr';

const STREAM_BYTE: Record<StdStream, number> = { stdin: 0, stdout: 1, stderr: 2, systemerr: 3 };
const BYTE_STREAM: StdStream[] = ['stdin', 'stdout', 'stderr', 'systemerr'];

export const FRAME_HEADER_SIZE = 8;
/** Docker's stdcopy writer buffers up to 32 KiB per write; keep frames no larger. */
export const MAX_FRAME_PAYLOAD = 32 * 1024;

/** One or more frames carrying `data` on `stream` (an empty payload gives no frame). */
export function encodeFrames(stream: StdStream, data: Buffer): Buffer {
  if (data.length === 0) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += MAX_FRAME_PAYLOAD) {
    const payload = data.subarray(offset, Math.min(offset + MAX_FRAME_PAYLOAD, data.length));
    const header = Buffer.alloc(FRAME_HEADER_SIZE);
    header[0] = STREAM_BYTE[stream];
    header.writeUInt32BE(payload.length, 4);
    parts.push(header, payload);
  }
  return Buffer.concat(parts);
}

/** A chunk as the runtime and the logs reader hand them out (object mode). */
export interface StreamChunk {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

/**
 * Object-mode {stream, data} in, bytes out. With `tty` the payload is passed through raw, since
 * a terminal merges both streams and Docker sends the raw-stream content type.
 */
export class StdioEncoder extends Transform {
  private readonly tty: boolean;
  constructor(options: { tty: boolean }) {
    super({ writableObjectMode: true });
    this.tty = options.tty;
  }

  override _transform(chunk: StreamChunk, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.data.length === 0) {
      callback();
      return;
    }
    callback(null, this.tty ? chunk.data : encodeFrames(chunk.stream, chunk.data));
  }
}

export interface DecodedFrame {
  stream: StdStream;
  data: Buffer;
}

/**
 * Incremental decoder of a multiplexed stream: feed bytes with push(), take complete frames.
 * Used by tests and by anything that reads a framed stream back; a bad stream byte throws.
 */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);

  push(bytes: Buffer): DecodedFrame[] {
    this.pending = this.pending.length === 0 ? bytes : Buffer.concat([this.pending, bytes]);
    const frames: DecodedFrame[] = [];
    while (this.pending.length >= FRAME_HEADER_SIZE) {
      const streamByte = this.pending[0]!;
      const stream = BYTE_STREAM[streamByte];
      if (stream === undefined) throw new Error(`bad stdcopy stream byte ${streamByte}`);
      const length = this.pending.readUInt32BE(4);
      if (this.pending.length < FRAME_HEADER_SIZE + length) break;
      frames.push({ stream, data: Buffer.from(this.pending.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + length)) });
      this.pending = this.pending.subarray(FRAME_HEADER_SIZE + length);
    }
    return frames;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  get buffered(): number {
    return this.pending.length;
  }
}

/** Splits a whole multiplexed buffer into its stdout and stderr text (tests, small outputs). */
export function demultiplex(bytes: Buffer): { stdout: Buffer; stderr: Buffer; systemerr: Buffer } {
  const decoder = new FrameDecoder();
  const out: Record<'stdout' | 'stderr' | 'systemerr' | 'stdin', Buffer[]> = { stdin: [], stdout: [], stderr: [], systemerr: [] };
  for (const frame of decoder.push(bytes)) out[frame.stream].push(frame.data);
  if (decoder.buffered > 0) throw new Error(`truncated stdcopy frame (${decoder.buffered} bytes left)`);
  return { stdout: Buffer.concat(out.stdout), stderr: Buffer.concat(out.stderr), systemerr: Buffer.concat(out.systemerr) };
}
