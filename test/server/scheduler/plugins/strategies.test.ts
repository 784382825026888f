import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GiB, makeContainer, makeHost, makeRequest, placeOn, resources, schedulerWith } from '../../../support/scheduler-fixtures.js';

const hosts = () => ['a', 'b', 'c', 'd'].map((id) => makeHost(id, { capacity: resources({ milliCpus: 4000, memoryBytes: 8 * GiB }) }));
const oneGiB = () => makeRequest({ resources: resources({ milliCpus: 500, memoryBytes: GiB }) });

function countPerHost(placed: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const host of placed) counts[host] = (counts[host] ?? 0) + 1;
  return counts;
}

test('spread (the default) puts each of 8 containers on the emptiest host: two per host', async () => {
  const scheduler = await schedulerWith(hosts());
  const placed = Array.from({ length: 8 }, () => placeOn(scheduler, oneGiB()));
  assert.deepEqual(countPerHost(placed), { a: 2, b: 2, c: 2, d: 2 });
});

test('binpack fills one host before the next: 8 GiB hosts take 8 containers of 1 GiB each', async () => {
  const scheduler = await schedulerWith(hosts(), [], { strategyFor: () => 'binpack' });
  const placed = Array.from({ length: 10 }, () => placeOn(scheduler, oneGiB()));
  assert.deepEqual(countPerHost(placed), { a: 8, b: 2 });
});

test('binpack prefers the fullest host that still fits, wherever it is in the order', async () => {
  const scheduler = await schedulerWith(hosts(), [makeContainer('c', { resources: resources({ memoryBytes: 6 * GiB }) })], { strategyFor: () => 'binpack' });
  assert.equal(placeOn(scheduler, oneGiB()), 'c');
  assert.equal(placeOn(scheduler, oneGiB()), 'c');
  assert.equal(placeOn(scheduler, oneGiB()), 'a', 'c is full now');
});

test('spread avoids hosts holding more of the tenant\'s own containers, even when load is equal', async () => {
  const scheduler = await schedulerWith(hosts(), [
    makeContainer('a', { tenant: 'acme' }),
    makeContainer('b', { tenant: 'acme' }),
    makeContainer('c', { tenant: 'globex' }),
    makeContainer('c', { tenant: 'globex' }),
  ]);
  const first = placeOn(scheduler, makeRequest({ tenant: 'acme' }));
  const second = placeOn(scheduler, makeRequest({ tenant: 'acme' }));
  assert.deepEqual([first, second].sort(), ['c', 'd']);
});

test('the strategy is chosen per tenant', async () => {
  const scheduler = await schedulerWith(hosts(), [], { strategyFor: (tenant) => (tenant === 'packer' ? 'binpack' : 'spread') });
  const packed = Array.from({ length: 4 }, () => placeOn(scheduler, makeRequest({ tenant: 'packer', resources: resources({ memoryBytes: GiB }) })));
  const spread = Array.from({ length: 4 }, () => placeOn(scheduler, makeRequest({ tenant: 'spreader', resources: resources({ memoryBytes: GiB }) })));
  assert.deepEqual(countPerHost(packed), { a: 4 });
  assert.equal(new Set(spread).size, 4, "spread puts the tenant's four containers on four hosts");
  assert.equal(spread.at(-1), 'a', 'the host binpack filled comes last');
});

test('image locality breaks ties toward hosts that hold the image', async () => {
  const scheduler = await schedulerWith([makeHost('a'), makeHost('b', { images: ['redis:7'] }), makeHost('c')]);
  assert.equal(placeOn(scheduler, makeRequest({ image: 'redis:7' })), 'b');
  assert.equal(placeOn(scheduler, makeRequest({ image: 'busybox' })), 'a');
});
