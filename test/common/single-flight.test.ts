import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SingleFlight } from '../../src/common/single-flight.js';

test('callers of one key share one run while it is in flight; the key is free again after', async () => {
  const flights = new SingleFlight<number>();
  let runs = 0;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const work = async (): Promise<number> => {
    runs++;
    await gate;
    return runs;
  };
  const a = flights.run('k', work);
  const b = flights.run('k', work);
  const other = flights.run('other', async () => 42);
  assert.equal(a.joined, false);
  assert.equal(b.joined, true);
  release();
  assert.deepEqual(await Promise.all([a.promise, b.promise, other.promise]), [1, 1, 42]);
  assert.equal(flights.has('k'), false);
  const c = flights.run('k', work);
  assert.equal(c.joined, false);
  assert.equal(await c.promise, 2);
});

test('a failure reaches every caller and frees the key', async () => {
  const flights = new SingleFlight<void>();
  const a = flights.run('k', async () => {
    await new Promise((r) => setTimeout(r, 10));
    throw new Error('boom');
  });
  const b = flights.run('k', async () => undefined);
  await assert.rejects(a.promise, /boom/);
  await assert.rejects(b.promise, /boom/);
  assert.equal(flights.has('k'), false);
});
