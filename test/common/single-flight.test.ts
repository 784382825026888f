import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SingleFlight, sharedRecent } from '../../src/common/single-flight.js';

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

test('sharedRecent: callers share a run in flight and its result while it is recent; a failure is not kept', async () => {
  let clock = 0;
  let runs = 0;
  let fail = false;
  const shared = sharedRecent(async () => {
    runs++;
    if (fail) throw new Error('boom');
    return runs;
  }, 100, () => clock);
  assert.deepEqual(await Promise.all([shared(), shared()]), [1, 1]);
  clock = 99;
  assert.equal(await shared(), 1);
  clock = 100;
  assert.equal(await shared(), 2);
  fail = true;
  clock = 300;
  await assert.rejects(shared(), /boom/);
  fail = false;
  assert.equal(await shared(), 4);
});
