import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { jsonLines } from '../../src/common/json-lines.js';

const collect = async <T>(lines: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const value of lines) out.push(value);
  return out;
};

test('jsonLines: values across chunk boundaries (a character split too); bad lines reported and skipped; an unfinished last line dropped', async () => {
  const bytes = Buffer.from('{"a":1}\n\n{"b":"é"}\r\nnot json\n{"c":', 'utf8');
  const split = bytes.indexOf(0xa9); // inside é
  const bad: string[] = [];
  const values = await collect(jsonLines(Readable.from([bytes.subarray(0, 3), bytes.subarray(3, split), bytes.subarray(split)]), { onBadLine: (line) => bad.push(line) }));
  assert.deepEqual(values, [{ a: 1 }, { b: 'é' }]);
  assert.deepEqual(bad, ['', 'not json']);
});

test('jsonLines: a line beyond the cap ends the reading with an error', async () => {
  await assert.rejects(collect(jsonLines(Readable.from(['{"a":1}\n', 'x'.repeat(20)]), { maxLine: 10 })), /longer than 10 bytes/);
});
