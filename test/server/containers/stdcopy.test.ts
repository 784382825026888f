import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { demultiplex, encodeFrames, FrameDecoder, MAX_FRAME_PAYLOAD, StdioEncoder } from '../../../src/server/containers/stdcopy.js';

test('a frame is an 8-byte header (stream, 0, 0, 0, big-endian length) and the payload', () => {
  const frame = encodeFrames('stderr', Buffer.from('hi\n'));
  assert.deepEqual([...frame.subarray(0, 8)], [2, 0, 0, 0, 0, 0, 0, 3]);
  assert.equal(frame.subarray(8).toString(), 'hi\n');
  assert.equal(encodeFrames('stdout', Buffer.from('x'))[0], 1);
  assert.equal(encodeFrames('systemerr', Buffer.from('x'))[0], 3);
});

test('an empty payload gives no frame; a large one is split into frames of at most 32 KiB', () => {
  assert.equal(encodeFrames('stdout', Buffer.alloc(0)).length, 0);
  const big = Buffer.alloc(MAX_FRAME_PAYLOAD * 2 + 5, 7);
  const frames = new FrameDecoder().push(encodeFrames('stdout', big));
  assert.deepEqual(frames.map((f) => f.data.length), [MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD, 5]);
  assert.deepEqual(Buffer.concat(frames.map((f) => f.data)), big);
});

test('the decoder reassembles frames split at any byte', () => {
  const bytes = Buffer.concat([encodeFrames('stdout', Buffer.from('out')), encodeFrames('stderr', Buffer.from('err'))]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const decoder = new FrameDecoder();
    const frames = [...decoder.push(bytes.subarray(0, cut)), ...decoder.push(bytes.subarray(cut))];
    assert.deepEqual(
      frames.map((f) => [f.stream, f.data.toString()]),
      [
        ['stdout', 'out'],
        ['stderr', 'err'],
      ],
      `cut at ${cut}`,
    );
    assert.equal(decoder.buffered, 0);
  }
});

test('demultiplex splits streams and refuses a truncated or corrupt stream', () => {
  const bytes = Buffer.concat([encodeFrames('stdout', Buffer.from('a')), encodeFrames('stderr', Buffer.from('b')), encodeFrames('stdout', Buffer.from('c'))]);
  const { stdout, stderr } = demultiplex(bytes);
  assert.equal(stdout.toString(), 'ac');
  assert.equal(stderr.toString(), 'b');
  assert.throws(() => demultiplex(bytes.subarray(0, bytes.length - 1)), /truncated/);
  assert.throws(() => demultiplex(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0])), /bad stdcopy stream byte/);
});

test('StdioEncoder frames object chunks, or passes them raw for a TTY', async () => {
  const chunks = [
    { stream: 'stdout' as const, data: Buffer.from('o') },
    { stream: 'stderr' as const, data: Buffer.from('e') },
    { stream: 'stdout' as const, data: Buffer.alloc(0) },
  ];
  const collect = async (tty: boolean): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const part of Readable.from(chunks).pipe(new StdioEncoder({ tty }))) parts.push(part as Buffer);
    return Buffer.concat(parts);
  };
  const framed = demultiplex(await collect(false));
  assert.equal(framed.stdout.toString(), 'o');
  assert.equal(framed.stderr.toString(), 'e');
  assert.equal((await collect(true)).toString(), 'oe');
});
