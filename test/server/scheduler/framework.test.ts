import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKind } from '../../../src/common/errors.js';
import { statusOf } from '../../../src/server/docker-api/errors.js';
import { Diagnosis, feasibleHostsToFind, Framework, NoHostFitsError, DEFAULT_SAMPLING } from '../../../src/server/scheduler/framework.js';
import { REASON_CORDONED, REASON_DOWN } from '../../../src/server/scheduler/plugins/host-health.js';
import type { Scheduler } from '../../../src/server/scheduler/scheduler.js';
import { GiB, makeContainer, makeHost, makeRequest, resources, schedulerWith } from '../../support/scheduler-fixtures.js';

function refusal(scheduler: Scheduler, request = makeRequest()): NoHostFitsError {
  try {
    scheduler.place(request);
  } catch (err) {
    assert.ok(err instanceof NoHostFitsError, String(err));
    return err;
  }
  assert.fail('expected no host to fit');
}

test('"no host fits" counts each reason once, largest first, and is a 409 Conflict', async () => {
  const full = resources({ milliCpus: 1000, memoryBytes: GiB });
  const scheduler = await schedulerWith(
    [
      ...['m1', 'm2', 'm3'].map((id) => makeHost(id, { capacity: full })),
      makeHost('w1'),
      makeHost('w2'),
      makeHost('c1', { cordoned: true }),
    ],
    [makeContainer('w1', { name: 'web-1' }), makeContainer('w2', { name: 'web-2', labels: { app: 'web' } })],
  );
  const err = refusal(scheduler, makeRequest({ resources: resources({ memoryBytes: 2 * GiB }), env: ['affinity:container!=web-*'] }));
  assert.equal(err.message, 'no host fits: 3 hosts without enough memory (need 2 GiB), 2 excluded by anti-affinity to web-*, 1 cordoned');
  assert.ok(isKind(err, 'Conflict'));
  assert.equal(statusOf(err), 409);
  // Every host carries its own reason.
  assert.equal(err.diagnosis.rejections.size, 6);
  assert.equal(err.diagnosis.rejections.get('c1'), REASON_CORDONED);
  assert.equal(err.diagnosis.rejections.get('w2')?.plugin, 'affinity');
  assert.equal(err.diagnosis.rejections.get('m1')?.plugin, 'capacity');
});

test('a single host reads in the singular; an empty cluster says so', async () => {
  assert.equal(refusal(await schedulerWith([makeHost('h', { healthy: false })])).message, 'no host fits: 1 host down');
  assert.equal(refusal(await schedulerWith([])).message, 'no host fits: the cluster has no hosts');
});

test('hosts outside a hard affinity carry the affinity as their reason, the rest their own', async () => {
  const scheduler = await schedulerWith(
    [makeHost('a', { capacity: resources({ memoryBytes: GiB }) }), makeHost('b'), makeHost('c'), makeHost('d', { healthy: false })],
    [makeContainer('a', { name: 'db' })],
  );
  const err = refusal(scheduler, makeRequest({ env: ['affinity:container==db'], resources: resources({ memoryBytes: 2 * GiB }) }));
  assert.equal(err.message, 'no host fits: 3 hosts excluded by affinity to db, 1 without enough memory (need 2 GiB)');
  assert.equal(err.diagnosis.rejections.get('d')?.phrase, 'excluded by affinity to db');
  assert.equal(err.diagnosis.rejections.get('a')?.plugin, 'capacity');
});

test('the summary groups identical phrases from different hosts', () => {
  const diagnosis = new Diagnosis(5);
  for (const id of ['a', 'b', 'c']) diagnosis.rejections.set(id, REASON_DOWN);
  for (const id of ['d', 'e']) diagnosis.rejections.set(id, REASON_CORDONED);
  assert.equal(diagnosis.summary(), '3 hosts down, 2 cordoned');
});

test('sampling: small clusters are examined whole; 5,000 hosts stop after 100 feasible ones', () => {
  assert.equal(feasibleHostsToFind(50, DEFAULT_SAMPLING), 50);
  assert.equal(feasibleHostsToFind(100, DEFAULT_SAMPLING), 100);
  assert.equal(feasibleHostsToFind(1000, DEFAULT_SAMPLING), 400);
  assert.equal(feasibleHostsToFind(5000, DEFAULT_SAMPLING), 100);
  assert.equal(feasibleHostsToFind(20000, DEFAULT_SAMPLING), 400);
  assert.equal(feasibleHostsToFind(5000, { percentageOfHostsToScore: 100, minFeasibleHostsToScore: 100 }), 5000);
  assert.equal(feasibleHostsToFind(5000, { percentageOfHostsToScore: 10, minFeasibleHostsToScore: 100 }), 500);
});

test('a sampled walk stops early but rotates, so every host gets its turn; a full walk never misses a fit', async () => {
  const hosts = Array.from({ length: 300 }, (_, i) => makeHost(`h${i}`));
  const sampled = await schedulerWith(hosts, [], { sampling: { percentageOfHostsToScore: 10, minFeasibleHostsToScore: 10 } });
  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const placement = sampled.place(makeRequest());
    assert.equal(placement.hostsExamined, 30);
    seen.add(placement.hostId);
    placement.release();
  }
  // 300 hosts in windows of 30: ten different windows, then the walk comes round again.
  assert.equal(seen.size, 10, 'each placement looked at a different window of hosts');
  // Only the last host fits: sampling keeps walking until it finds a feasible host.
  const oneFits = await schedulerWith(
    hosts.map((h, i) => (i === 299 ? h : { ...h, cordoned: true })),
    [],
    { sampling: { percentageOfHostsToScore: 10, minFeasibleHostsToScore: 10 } },
  );
  const placement = oneFits.place(makeRequest());
  assert.equal(placement.hostId, 'h299');
  assert.equal(placement.hostsExamined, 300);
});

test('at 5,000 hosts with default sampling: a lone fitting host is found wherever the walk starts, and "no host fits" counts all 5,000', async () => {
  const hosts = Array.from({ length: 5000 }, (_, i) => makeHost(`h${i}`, { capacity: resources({ milliCpus: 4000, memoryBytes: 4 * GiB }) }));
  // Only h7 (before the walk's start) can take 8 GiB; every other host is too small, cordoned or down.
  const fitsOne = await schedulerWith(
    hosts.map((h, i) =>
      i === 7 ? { ...h, capacity: resources({ milliCpus: 4000, memoryBytes: 16 * GiB }) } : i % 3 === 0 ? { ...h, cordoned: true } : i % 3 === 1 ? { ...h, healthy: false } : h,
    ),
  );
  // Small placements move the rotating walk's start far past h7.
  for (let i = 0; i < 30; i++) fitsOne.place(makeRequest({ resources: resources({ memoryBytes: GiB }) })).confirm();
  const placement = fitsOne.place(makeRequest({ resources: resources({ memoryBytes: 8 * GiB }) }));
  assert.equal(placement.hostId, 'h7');
  assert.equal(placement.hostsExamined, 5000, 'sampling kept walking, all the way round, until it found the one');
  placement.release();

  const error = refusal(fitsOne, makeRequest({ resources: resources({ memoryBytes: 32 * GiB }) }));
  assert.equal(error.diagnosis.rejections.size, 5000, 'every host has its reason');
  assert.equal(error.message, 'no host fits: 1667 hosts cordoned, 1667 without enough memory (need 32 GiB), 1666 down');
});

test('at 5,000 hosts, a hard affinity that no examined host satisfies still accounts for every host in the summary', async () => {
  const hosts = Array.from({ length: 5000 }, (_, i) => makeHost(`h${i}`));
  const scheduler = await schedulerWith(hosts, [makeContainer('h4999', { name: 'db' })]);
  scheduler.cluster.upsertHost({ ...hosts[4999]!, cordoned: true });
  const error = refusal(scheduler, makeRequest({ env: ['affinity:container==db'] }));
  assert.equal(error.diagnosis.rejections.size, 5000);
  assert.equal(error.message, 'no host fits: 4999 hosts excluded by affinity to db, 1 cordoned');
});

test('one cycle leaves nothing behind for the next: skipped plugins and feasible hosts are per request', async () => {
  // h5 is the fullest host, so it scores lowest: a host left over from an earlier cycle would beat it.
  const hosts = Array.from({ length: 300 }, (_, i) => makeHost(`h${i}`));
  const scheduler = await schedulerWith(hosts, [makeContainer('h5', { name: 'big', resources: resources({ memoryBytes: 15 * GiB }) })]);
  for (let round = 0; round < 3; round++) {
    const plain = scheduler.place(makeRequest());
    assert.notEqual(plain.hostId, 'h5');
    assert.ok(plain.feasibleHosts > 100, `${plain.feasibleHosts} feasible hosts`);
    plain.confirm();
    const pinned = scheduler.place(makeRequest({ env: ['constraint:node==h5'] }));
    assert.deepEqual([pinned.hostId, pinned.feasibleHosts], ['h5', 1], 'the constraint filter ran although the request before had none');
    pinned.confirm();
    const apart = scheduler.place(makeRequest({ env: ['affinity:container!=big', 'constraint:node==/^h[0-9]$/'] }));
    assert.notEqual(apart.hostId, 'h5', 'the affinity filter ran');
    assert.equal(apart.feasibleHosts, 9);
    apart.confirm();
  }
});

test('a profile with more filters than a skip mask holds is refused when the framework is built, never during a placement', () => {
  const filter = { name: 'f', filter: () => null };
  const profile = { name: 'wide', preFilters: [], filters: Array.from({ length: 31 }, () => filter), scorers: [], reservers: [], walk: 'rotate' as const };
  assert.throws(() => new Framework(profile), /more than 30 filters or scorers/);
  assert.doesNotThrow(() => new Framework({ ...profile, filters: profile.filters.slice(0, 30) }));
});
