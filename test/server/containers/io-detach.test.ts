import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DetachScanner, parseDetachKeys } from '../../../src/server/containers/io-detach.js';

test('detach keys parse like Docker: ctrl-<x>, single characters, comma separated', () => {
  const cases: { name: string; spec: string; bytes: number[] }[] = [
    { name: 'default', spec: 'ctrl-p,ctrl-q', bytes: [16, 17] },
    { name: 'letters and specials', spec: 'ctrl-a,ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_', bytes: [1, 0, 27, 28, 29, 30, 31] },
    { name: 'plain characters', spec: 'a,b', bytes: [97, 98] },
    { name: 'upper-case ctrl', spec: 'CTRL-X', bytes: [24] },
  ];
  for (const c of cases) assert.deepEqual([...parseDetachKeys(c.spec)], c.bytes, c.name);
  for (const bad of ['ctrl-1', 'ab', 'ctrl-', '']) {
    assert.throws(() => parseDetachKeys(bad), { message: `Invalid detach keys (${bad}) provided` }, bad);
  }
});

test('the scanner detaches on the sequence and never forwards it', () => {
  const scanner = new DetachScanner(parseDetachKeys('ctrl-p,ctrl-q'));
  assert.deepEqual(scanner.push(Buffer.from('ab')), { forward: Buffer.from('ab'), detached: false });
  const first = scanner.push(Buffer.from([0x63, 16]));
  assert.deepEqual(first, { forward: Buffer.from('c'), detached: false });
  assert.deepEqual(scanner.push(Buffer.from([17, 0x64])), { forward: Buffer.alloc(0), detached: true });
});

test('a partial sequence is released when the next byte does not continue it', () => {
  const s2 = new DetachScanner(parseDetachKeys('ctrl-p,ctrl-q'));
  assert.deepEqual([...s2.push(Buffer.from([16, 0x78])).forward], [16, 0x78]);
  // ctrl-p ctrl-p ctrl-q: the first ctrl-p is data, the next two detach.
  const s3 = new DetachScanner(parseDetachKeys('ctrl-p,ctrl-q'));
  assert.deepEqual(s3.push(Buffer.from([16, 16, 17])), { forward: Buffer.from([16]), detached: true });
  // Held bytes reach the process when input ends.
  const s4 = new DetachScanner(parseDetachKeys('ctrl-p,ctrl-q'));
  assert.deepEqual([...s4.push(Buffer.from([0x61, 16])).forward], [0x61]);
  assert.deepEqual([...s4.flush()], [16]);
});

test('a one-key sequence detaches at once', () => {
  const scanner = new DetachScanner(parseDetachKeys('ctrl-x'));
  assert.deepEqual(scanner.push(Buffer.from([0x61, 24, 0x62])), { forward: Buffer.from('a'), detached: true });
});
