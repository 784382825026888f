import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterState } from '../../../../src/server/scheduler/cluster-state.js';
import { Capacity } from '../../../../src/server/scheduler/plugins/capacity.js';
import { CycleState, type Resources } from '../../../../src/server/scheduler/types.js';
import { GiB, MiB, makeContainer, makeHost, makeRequest, placeOn, resources, schedulerWith } from '../../../support/scheduler-fixtures.js';

test('capacity filter: free capacity is capacity minus placed containers, resource by resource', () => {
  const capacity = resources({ milliCpus: 4000, memoryBytes: 8 * GiB, diskBytes: 100 * GiB, gpus: 2 });
  const used = resources({ milliCpus: 3000, memoryBytes: 6 * GiB, diskBytes: 90 * GiB, gpus: 1 });
  const cases: { name: string; want: Partial<Resources>; phrase: string | null }[] = [
    { name: 'nothing asked', want: {}, phrase: null },
    { name: 'exactly the free memory', want: { memoryBytes: 2 * GiB }, phrase: null },
    { name: 'one byte too much memory', want: { memoryBytes: 2 * GiB + 1 }, phrase: 'without enough memory (need 2 GiB)' },
    { name: 'too much CPU', want: { milliCpus: 1500 }, phrase: 'without enough CPU (need 1.5 CPUs)' },
    { name: 'exactly the free CPU', want: { milliCpus: 1000 }, phrase: null },
    { name: 'too many GPUs', want: { gpus: 2 }, phrase: 'without enough GPUs (need 2)' },
    { name: 'too much disk', want: { diskBytes: 11 * GiB }, phrase: 'without enough disk (need 11 GiB)' },
    { name: 'memory is reported before CPU', want: { memoryBytes: 3 * GiB, milliCpus: 2000 }, phrase: 'without enough memory (need 3 GiB)' },
    { name: 'fractional sizes', want: { memoryBytes: 2 * GiB + 512 * MiB }, phrase: 'without enough memory (need 2.5 GiB)' },
  ];
  for (const c of cases) {
    const cluster = new ClusterState();
    cluster.upsertHost(makeHost('h', { capacity }));
    cluster.addContainer(makeContainer('h', { resources: used }));
    const rejection = new Capacity().filter(new CycleState(), makeRequest({ resources: resources(c.want) }), cluster.host('h')!);
    assert.equal(rejection?.phrase ?? null, c.phrase, c.name);
  }
});

test('assumed and removed containers change what fits', async () => {
  const scheduler = await schedulerWith([makeHost('h', { capacity: resources({ memoryBytes: 4 * GiB }) })]);
  const first = scheduler.place(makeRequest({ resources: resources({ memoryBytes: 3 * GiB }) }));
  assert.equal(first.hostId, 'h');
  // Not yet confirmed: the claim already holds the memory.
  assert.equal(placeOn(scheduler, makeRequest({ resources: resources({ memoryBytes: 2 * GiB }) })), 'error: no host fits: 1 host without enough memory (need 2 GiB)');
  first.release();
  assert.equal(placeOn(scheduler, makeRequest({ resources: resources({ memoryBytes: 2 * GiB }) })), 'h');
});

test('a container limit caps hosts even for containers that ask for nothing, so binpack moves on', async () => {
  const scheduler = await schedulerWith(
    [makeHost('a', { maxContainers: 3 }), makeHost('b', { maxContainers: 2 })],
    [],
    { strategyFor: () => 'binpack' },
  );
  const placed = Array.from({ length: 5 }, () => placeOn(scheduler, makeRequest()));
  assert.deepEqual(placed, ['a', 'a', 'a', 'b', 'b']);
  assert.equal(placeOn(scheduler, makeRequest()), 'error: no host fits: 2 hosts at their container limit');
});

test('a host that reports no GPUs refuses a GPU request', async () => {
  const scheduler = await schedulerWith([makeHost('cpu-only'), makeHost('gpu', { capacity: resources({ milliCpus: 1000, memoryBytes: GiB, gpus: 4 }) })]);
  assert.equal(placeOn(scheduler, makeRequest({ resources: resources({ gpus: 1 }) })), 'gpu');
  assert.equal(placeOn(scheduler, makeRequest({ resources: resources({ gpus: 4 }) })), 'error: no host fits: 2 hosts without enough GPUs (need 4)');
});
