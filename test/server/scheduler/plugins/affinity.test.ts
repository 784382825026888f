import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AFFINITIES_LABEL } from '../../../../src/server/scheduler/expressions.js';
import type { ContainerRecord } from '../../../../src/server/scheduler/types.js';
import { feasibleHosts, makeContainer, makeHost, makeRequest, placeOn, schedulerWith } from '../../../support/scheduler-fixtures.js';

const WEB1_ID = 'a1b2c3d4e5f6'.padEnd(64, '7');

function cluster(): { hosts: ReturnType<typeof makeHost>[]; containers: ContainerRecord[] } {
  return {
    hosts: [
      makeHost('h1', { images: ['redis:7', 'busybox'] }),
      makeHost('h2', { images: ['busybox:latest'] }),
      makeHost('h3', { images: ['nginx:1.25'] }),
      makeHost('h4'),
    ],
    containers: [
      makeContainer('h1', { id: WEB1_ID, name: 'web-1', labels: { role: 'web' } }),
      makeContainer('h2', { name: 'web-22', labels: { role: 'web' } }),
      makeContainer('h3', { name: 'db-1', labels: { role: 'db', tier: 'backend' } }),
      // Another tenant's containers are invisible to acme's rules.
      makeContainer('h4', { tenant: 'globex', name: 'web-1', labels: { role: 'db' } }),
    ],
  };
}

/** Where a request could go (every feasible host), or the "no host fits" message when none. */
async function hostsFor(env: string[], labels: Record<string, string> = {}): Promise<string[]> {
  const { hosts, containers } = cluster();
  const scheduler = await schedulerWith(hosts, containers);
  const request = makeRequest({ env, labels });
  const fits = feasibleHosts(scheduler, request);
  if (fits.length > 0) return fits;
  return [placeOn(scheduler, request).replace(/^error: /, '')];
}

/** Where a request lands, with the cluster as built. */
async function chosenHost(env: string[]): Promise<string> {
  const { hosts, containers } = cluster();
  return placeOn(await schedulerWith(hosts, containers), makeRequest({ env }));
}

test('hard affinity and anti-affinity to containers, images and labels', async () => {
  const cases: { name: string; env?: string[]; labels?: Record<string, string>; want: string[] }[] = [
    { name: 'container by name', env: ['affinity:container==web-1'], want: ['h1'] },
    { name: 'container by full id', env: [`affinity:container==${WEB1_ID}`], want: ['h1'] },
    { name: 'container by short id', env: [`affinity:container==${WEB1_ID.slice(0, 12)}`], want: ['h1'] },
    { name: 'anti-affinity to a container', env: ['affinity:container!=web-1'], want: ['h2', 'h3', 'h4'] },
    { name: 'glob over names', env: ['affinity:container!=web-*'], want: ['h3', 'h4'] },
    { name: 'regexp over names', env: ['affinity:container==/web-[0-9]{2}/'], want: ['h2'] },
    { name: 'label ==', env: ['affinity:role==web'], want: ['h1', 'h2'] },
    { name: 'label !=', env: ['affinity:role!=db'], want: ['h1', 'h2', 'h4'] },
    { name: 'label glob', env: ['affinity:role!=w*'], want: ['h3', 'h4'] },
    { name: 'image by name without tag', env: ['affinity:image==redis:7'], want: ['h1'] },
    { name: 'image normalised to :latest', env: ['affinity:image==busybox'], want: ['h1', 'h2'] },
    { name: 'image glob', env: ['affinity:image==nginx*'], want: ['h3'] },
    { name: 'image anti-affinity', env: ['affinity:image!=busybox'], want: ['h3', 'h4'] },
    { name: 'rules AND', env: ['affinity:role==web', 'affinity:container!=web-1'], want: ['h2'] },
    { name: 'from the swarm label', labels: { [AFFINITIES_LABEL]: '["container!=db-1","role!=web"]' }, want: ['h4'] },
  ];
  for (const c of cases) assert.deepEqual(await hostsFor(c.env ?? [], c.labels), c.want, c.name);
});

test('refusals name the rule: anti-affinity to web-1, affinity to a container that does not exist', async () => {
  assert.deepEqual(await hostsFor(['affinity:container==nope']), ['no host fits: 4 hosts excluded by affinity to nope']);
  assert.deepEqual(await hostsFor(['affinity:role!=web', 'affinity:role!=db']), ['h4']);
  assert.deepEqual(await hostsFor(['affinity:role!=web', 'affinity:role!=db', 'constraint:node!=h4']), [
    'no host fits: 2 hosts excluded by anti-affinity to role=web, 1 excluded by anti-affinity to role=db, 1 excluded by constraint node!=h4',
  ]);
  // Affinity to a container on a host that cannot take the request: the other hosts are refused by the affinity.
  const { hosts, containers } = cluster();
  const scheduler = await schedulerWith(hosts, containers);
  scheduler.cluster.upsertHost(makeHost('h1', { cordoned: true }));
  assert.equal(placeOn(scheduler, makeRequest({ env: ['affinity:container==web-1'] })), 'error: no host fits: 3 hosts excluded by affinity to web-1, 1 cordoned');
});

test("another tenant's containers neither attract nor repel", async () => {
  const { hosts, containers } = cluster();
  const scheduler = await schedulerWith(hosts, containers);
  // globex's own web-1 is on h4; acme's is on h1.
  assert.equal(placeOn(scheduler, makeRequest({ tenant: 'globex', env: ['affinity:container==web-1'] })), 'h4');
  assert.equal(placeOn(scheduler, makeRequest({ tenant: 'initech', env: ['affinity:container==web-1'] })), 'error: no host fits: 4 hosts excluded by affinity to web-1');
});

test('soft rules score and never refuse', async () => {
  assert.equal(await chosenHost(['affinity:container==~web-1']), 'h1');
  assert.equal(await chosenHost(['affinity:container!=~web-*', 'affinity:role!=~db']), 'h4');
  assert.equal(await chosenHost(['affinity:image==~nginx:1.25']), 'h3');
  // Nothing matches: the preference cannot be met, the container is placed anyway.
  assert.match(await chosenHost(['affinity:container==~nope']), /^h\d$/);
  // Every host is refused by a soft rule: still placed.
  assert.deepEqual(await hostsFor(['affinity:container!=~web-1', 'affinity:role!=~web', 'affinity:role!=~db']), ['h1', 'h2', 'h3', 'h4']);
  // Soft beside hard: the hard rule filters, the soft one picks.
  assert.equal(await chosenHost(['affinity:role==web', 'affinity:image==~redis']), 'h1');
  assert.equal(await chosenHost(['affinity:role==web', 'affinity:container!=~web-1']), 'h2');
});

test('a placed container is seen by the next placement, a released one is not', async () => {
  const scheduler = await schedulerWith([makeHost('a'), makeHost('b')]);
  const first = scheduler.place(makeRequest({ name: 'db-a', labels: { role: 'db' } }));
  const second = scheduler.place(makeRequest({ name: 'db-b', env: ['affinity:role!=db'], labels: { role: 'db' } }));
  assert.notEqual(first.hostId, second.hostId);
  assert.equal(placeOn(scheduler, makeRequest({ env: ['affinity:role!=db'] })), 'error: no host fits: 2 hosts excluded by anti-affinity to role=db');
  second.release();
  second.release(); // idempotent
  assert.equal(placeOn(scheduler, makeRequest({ env: ['affinity:container!=db-a'] })), second.hostId);
});
