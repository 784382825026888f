import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestContext } from '../../../../src/common/context.js';
import { invalidArgument, notFound, unavailable } from '../../../../src/common/errors.js';
import { createLogger } from '../../../../src/common/logging.js';
import type { ClusterHost } from '../../../../src/server/cluster/agent-hub.js';
import type { FrontDeps, HostCall, HostClient } from '../../../../src/server/cluster/front/deps.js';
import { fanOut, holdersOf, leastLoaded } from '../../../../src/server/cluster/front/fan-out.js';
import { Scheduler } from '../../../../src/server/scheduler/scheduler.js';

const ctx: RequestContext = { tenant: 't', requestId: 'r' };
const logger = createLogger('fan-out-test');
logger.level = 'silent';

const host = (name: string, extra: Partial<ClusterHost> = {}): ClusterHost => ({
  id: `id-${name}`,
  name,
  address: '10.0.0.1',
  labels: {},
  capacity: { cpus: 2, memoryBytes: 1 << 30, diskBytes: 1 << 30, devices: [] },
  state: 'up',
  cordoned: false,
  lastSeen: 0,
  imageIds: [],
  engineVersion: 'test',
  ...extra,
});

/** A host client whose answers are a function of (host, call). */
function client(hosts: ClusterHost[], answer: (hostId: string, call: HostCall) => unknown): HostClient {
  return {
    up: () => hosts,
    request: () => Promise.reject(new Error('not used')),
    json: async <T>(_ctx: RequestContext, hostId: string, call: HostCall): Promise<T> => {
      const value = answer(hostId, call);
      if (value instanceof Error) throw value;
      return value as T;
    },
  };
}

function deps(hosts: ClusterHost[], answer: (hostId: string, call: HostCall) => unknown, scheduler = new Scheduler()): Pick<FrontDeps, 'hosts' | 'logger' | 'scheduler'> {
  return { hosts: client(hosts, answer), logger, scheduler };
}

test('fan-out leaves out a host that fails and keeps the order of the others', async () => {
  const hosts = [host('a'), host('b'), host('c')];
  const answers = await fanOut<string>(deps(hosts, (id) => (id === 'id-b' ? unavailable('gone') : id)), ctx, { method: 'GET', path: '/x' });
  assert.deepEqual(answers.map((a) => a.value), ['id-a', 'id-c']);
});

test('holders: NotFound is "not here", a bad reference is the engine\'s 400 when nobody holds it', async () => {
  const hosts = [host('a'), host('b')];
  const held = await holdersOf(deps(hosts, (id) => (id === 'id-b' ? { Id: 'x' } : notFound('No such image: x'))), ctx, '/images/x/json');
  assert.deepEqual(held.map((h) => h.host.name), ['b']);
  assert.deepEqual(await holdersOf(deps(hosts, () => notFound('No such image: x')), ctx, '/images/x/json'), []);
  await assert.rejects(holdersOf(deps(hosts, () => invalidArgument('invalid reference format')), ctx, '/images/X/json'), /invalid reference format/);
});

test('least loaded: uncordoned first, then fewest containers, then most memory', () => {
  const scheduler = new Scheduler();
  const hosts = [host('a'), host('b', { capacity: { cpus: 2, memoryBytes: 4 * 2 ** 30, diskBytes: 1 << 30, devices: [] } }), host('c', { cordoned: true })];
  for (const h of hosts) {
    scheduler.cluster.upsertHost({ id: h.id, name: h.name, labels: {}, capacity: { milliCpus: 2000, memoryBytes: h.capacity.memoryBytes, diskBytes: 0, gpus: 0 }, healthy: true, cordoned: h.cordoned, images: [] });
  }
  const d = deps(hosts, () => undefined, scheduler);
  assert.equal(leastLoaded(d).name, 'b', 'equal load: the most memory');
  const resources = { milliCpus: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
  scheduler.cluster.addContainer({ tenant: 't', id: 'c1', name: 'c1', hostId: 'id-b', image: 'x', labels: {}, resources });
  assert.equal(leastLoaded(d).name, 'a', 'fewer containers wins');
  assert.equal(leastLoaded(d, [hosts[2]!]).name, 'c', 'only cordoned hosts: one of them rather than none');
  assert.throws(() => leastLoaded(deps([], () => undefined)), /no host of the cluster is up/);
});
