import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import { isKind } from '../../../src/common/errors.js';
import { dockerErrorHandler } from '../../../src/server/docker-api/errors.js';
import type { Scheduler } from '../../../src/server/scheduler/scheduler.js';
import type { PlacementRequest } from '../../../src/server/scheduler/types.js';
import { GiB, makeHost, makeRequest, resources, schedulerWith, seededRandom } from '../../support/scheduler-fixtures.js';

/**
 * What a create does around the scheduler: place, then an agent round trip of random length,
 * then confirm, or release when the create fails.
 */
async function create(scheduler: Scheduler, request: PlacementRequest, delayMs: number, fails = false): Promise<string> {
  const placement = scheduler.place(request); // throws "no host fits" synchronously
  await sleep(delayMs);
  if (fails) {
    placement.release();
    throw new Error('agent refused');
  }
  placement.confirm();
  return placement.hostId;
}

test('50 concurrent creates with anti-affinity to each other on 40 hosts: 40 land on distinct hosts, 10 are refused', async () => {
  const scheduler = await schedulerWith(Array.from({ length: 40 }, (_, i) => makeHost(`h${i}`)));
  const random = seededRandom(1);
  const outcomes = await Promise.allSettled(
    Array.from({ length: 50 }, (_, i) =>
      Promise.resolve().then(() =>
        create(scheduler, makeRequest({ name: `cache-${i}`, labels: { service: 'cache' }, env: ['affinity:service!=cache'] }), random() * 20),
      ),
    ),
  );
  const hosts = outcomes.filter((o) => o.status === 'fulfilled').map((o) => (o as PromiseFulfilledResult<string>).value);
  const refused = outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason as Error);
  assert.equal(hosts.length, 40);
  assert.equal(new Set(hosts).size, 40, 'no two replicas share a host');
  assert.equal(refused.length, 10);
  for (const err of refused) {
    assert.ok(isKind(err, 'Conflict'));
    assert.equal(err.message, 'no host fits: 40 hosts excluded by anti-affinity to service=cache');
  }
});

test('concurrent creates never overcommit memory, and failed creates give their claim back', async () => {
  const scheduler = await schedulerWith(Array.from({ length: 10 }, (_, i) => makeHost(`h${i}`, { capacity: resources({ memoryBytes: 4 * GiB }) })));
  const random = seededRandom(2);
  const twoGiB = (): PlacementRequest => makeRequest({ resources: resources({ memoryBytes: 2 * GiB }) });
  // First wave: 30 creates for 20 slots, a quarter of them fail at the agent after claiming.
  const wave = await Promise.allSettled(
    Array.from({ length: 30 }, (_, i) => Promise.resolve().then(() => create(scheduler, twoGiB(), random() * 15, i % 4 === 0))),
  );
  const placed = wave.filter((o) => o.status === 'fulfilled').length;
  const agentFailures = wave.filter((o) => o.status === 'rejected' && (o.reason as Error).message === 'agent refused').length;
  const noFit = wave.filter((o) => o.status === 'rejected' && /^no host fits/.test((o.reason as Error).message)).length;
  assert.equal(placed + agentFailures + noFit, 30);
  assert.ok(agentFailures > 0);
  assert.ok(noFit > 0, 'some creates found every slot claimed while others were in flight');
  for (const host of scheduler.cluster.hosts()) assert.ok(host.allocated.memoryBytes <= host.capacity.memoryBytes, host.id);
  // The released claims are free again: exactly the remaining slots can be filled.
  const remaining = 20 - placed;
  const second = await Promise.allSettled(Array.from({ length: remaining + 3 }, () => Promise.resolve().then(() => create(scheduler, twoGiB(), 1))));
  assert.equal(second.filter((o) => o.status === 'fulfilled').length, remaining);
  for (const host of scheduler.cluster.hosts()) assert.equal(host.allocated.memoryBytes, 4 * GiB, host.id);
});

test('confirm and release are idempotent and settle a claim once', async () => {
  const scheduler = await schedulerWith([makeHost('h')]);
  const request = makeRequest({ resources: resources({ memoryBytes: GiB }) });
  const placement = scheduler.place(request);
  assert.equal(scheduler.cluster.isAssumed(request.id), true);
  placement.confirm();
  placement.confirm();
  assert.equal(scheduler.cluster.isAssumed(request.id), false);
  placement.release(); // after confirm: the container exists, nothing to give back
  assert.equal(scheduler.cluster.host('h')!.allocated.memoryBytes, GiB);
  scheduler.cluster.removeContainer(request.id);
  assert.equal(scheduler.cluster.host('h')!.allocated.memoryBytes, 0);
});

test('bad rules are refused before anything is claimed', async () => {
  const scheduler = await schedulerWith([makeHost('h')]);
  const request = makeRequest({ env: ['affinity:container=web'] });
  assert.throws(() => scheduler.place(request), (err: unknown) => isKind(err, 'InvalidArgument'));
  assert.equal(scheduler.cluster.isAssumed(request.id), false);
  assert.equal(scheduler.cluster.host('h')!.containerCount, 0);
});

test('claims never settled expire; a placed container with the same id is refused', async () => {
  const scheduler = await schedulerWith([makeHost('h', { capacity: resources({ memoryBytes: GiB }) })]);
  const stale = makeRequest({ resources: resources({ memoryBytes: GiB }) });
  scheduler.place(stale);
  assert.match(String(captured(() => scheduler.place(makeRequest({ resources: resources({ memoryBytes: GiB }) })))), /no host fits/);
  assert.deepEqual(scheduler.cluster.forgetAssumedBefore(Date.now() + 1), [stale.id]);
  scheduler.place(makeRequest({ resources: resources({ memoryBytes: GiB }) })).confirm();
  assert.deepEqual(scheduler.cluster.forgetAssumedBefore(Date.now() + 1), [], 'confirmed containers never expire');
  const duplicate = makeRequest();
  scheduler.place(duplicate).confirm();
  assert.throws(() => scheduler.place(duplicate), (err: unknown) => isKind(err, 'Conflict'));
});

function captured(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (err) {
    return err;
  }
}

test('through the Docker API error handler: bad rules are 400 and "no host fits" is 409, both as {"message"}', async () => {
  const scheduler = await schedulerWith([makeHost('h', { cordoned: true })]);
  const app = Fastify();
  app.setErrorHandler(dockerErrorHandler);
  // Stands in for the create route the cluster work will wire: body → placement request → place.
  app.post('/place', async (request) => {
    const { env, labels } = request.body as { env: string[]; labels: Record<string, string> };
    return { host: scheduler.place(makeRequest({ env, labels })).hostId };
  });
  try {
    const bad = await app.inject({ method: 'POST', url: '/place', payload: { env: ['affinity:container=web-1'], labels: {} } });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.headers['content-type'], 'application/json');
    assert.match(JSON.parse(bad.body).message, /^invalid affinity expression "affinity:container=web-1"/);
    const badLabel = await app.inject({ method: 'POST', url: '/place', payload: { env: [], labels: { 'com.docker.swarm.constraints': '{' } } });
    assert.equal(badLabel.statusCode, 400);
    assert.match(JSON.parse(badLabel.body).message, /^invalid label com\.docker\.swarm\.constraints/);
    const full = await app.inject({ method: 'POST', url: '/place', payload: { env: [], labels: {} } });
    assert.equal(full.statusCode, 409);
    assert.deepEqual(JSON.parse(full.body), { message: 'no host fits: 1 host cordoned' });
  } finally {
    await app.close();
  }
});
