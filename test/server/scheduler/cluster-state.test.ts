import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterState } from '../../../src/server/scheduler/cluster-state.js';
import { GiB, makeContainer, makeHost, resources } from '../../support/scheduler-fixtures.js';

test('indexes follow adds and removes: names, short ids, labels per host, tenant counts, images', () => {
  const cluster = new ClusterState();
  cluster.upsertHost(makeHost('a', { images: ['redis', 'sha256:1234'] }));
  cluster.upsertHost(makeHost('b', { images: ['redis:latest'] }));
  const web = makeContainer('a', { name: 'web', labels: { role: 'web' }, resources: resources({ memoryBytes: GiB }) });
  const web2 = makeContainer('b', { name: 'web2', labels: { role: 'web' } });
  const other = makeContainer('b', { tenant: 'globex', name: 'web', labels: { role: 'web' } });
  for (const c of [web, web2, other]) cluster.addContainer(c);
  const acme = cluster.tenant('acme');
  assert.equal(acme.byName('web'), web);
  assert.equal(acme.byName('/web'), web, 'docker names may carry their slash');
  assert.equal(acme.byIdOrPrefix(web.id.slice(0, 12)), web);
  assert.equal(acme.byIdOrPrefix(web.id.slice(0, 11)), undefined, 'shorter than a short id');
  assert.deepEqual([...acme.hostsWithLabel('role', 'web')!], [['a', 1], ['b', 1]]);
  const slot = (id: string): number => cluster.host(id)!.slot;
  assert.deepEqual([acme.containersOn(slot('a')), acme.containersOn(slot('b'))], [1, 1]);
  assert.equal(cluster.tenant('globex').containersOn(slot('b')), 1);
  assert.equal(cluster.tenant('nobody').containersOn(slot('a')), 0);
  assert.deepEqual([...cluster.tenant('globex').hostsWithLabel('role', 'web')!], [['b', 1]]);
  assert.deepEqual([...cluster.hostsWithImage('redis')!].sort(), ['a', 'b']);
  assert.equal(cluster.host('a')!.allocated.memoryBytes, GiB);

  cluster.removeContainer(web.id);
  assert.equal(acme.byName('web'), undefined);
  assert.deepEqual([...acme.hostsWithLabel('role', 'web')!], [['b', 1]]);
  assert.equal(cluster.host('a')!.allocated.memoryBytes, 0);
  assert.equal(acme.containersOn(slot('a')), 0);
  assert.deepEqual([cluster.host('a')!.containerCount, cluster.host('b')!.containerCount], [0, 2], 'container counts follow removals');
  cluster.removeContainer(web.id); // unknown now: no-op
  assert.equal(cluster.host('a')!.containerCount, 0);

  cluster.upsertHost(makeHost('b', { images: [] }));
  assert.deepEqual([...cluster.hostsWithImage('redis')!], ['a']);
  assert.equal(cluster.host('b')!.containerCount, 2, 'a new report keeps the accounted containers');
});

test('removing a host hands back its containers and keeps the walk order dense', () => {
  const cluster = new ClusterState();
  for (const id of ['a', 'b', 'c']) cluster.upsertHost(makeHost(id));
  const onA = makeContainer('a', { labels: { role: 'db' } });
  cluster.addContainer(onA);
  cluster.addContainer(makeContainer('c'));
  assert.deepEqual(cluster.removeHost('a'), [onA]);
  assert.deepEqual(
    cluster.hosts().map((h) => h.id),
    ['c', 'b'],
  );
  assert.equal(cluster.tenant('acme').hostsWithLabel('role', 'db'), undefined);
  assert.equal(cluster.hostCount, 2);
  assert.throws(() => cluster.addContainer(makeContainer('a')), /no such host: a/);
  assert.deepEqual(cluster.removeHost('zzz'), []);
});

test('a large tenant\'s per-host counts survive the switch to the dense array, and freed host slots start at zero', () => {
  const cluster = new ClusterState();
  for (let i = 0; i < 20; i++) cluster.upsertHost(makeHost(`h${i}`));
  const placed = Array.from({ length: 400 }, (_, i) => makeContainer(`h${i % 20}`, { name: `c${i}` }));
  for (const c of placed.slice(0, 100)) cluster.addContainer(c);
  const acme = cluster.tenant('acme');
  assert.equal(acme.containersOn(cluster.host('h3')!.slot), 5);
  for (const c of placed.slice(100)) cluster.addContainer(c); // crosses the switch to the dense array
  assert.equal(cluster.tenant('acme').containersOn(cluster.host('h3')!.slot), 20);
  for (const c of placed.filter((_, i) => i % 20 === 3 && i >= 200)) cluster.removeContainer(c.id);
  assert.equal(cluster.tenant('acme').containersOn(cluster.host('h3')!.slot), 10);
  // Removing h3 frees its slot; a new host takes it over with no containers counted.
  const freed = cluster.host('h3')!.slot;
  cluster.removeHost('h3');
  cluster.upsertHost(makeHost('fresh'));
  assert.equal(cluster.host('fresh')!.slot, freed);
  assert.equal(cluster.tenant('acme').containersOn(freed), 0);
  // Hosts added after the switch grow the array.
  for (let i = 20; i < 40; i++) cluster.upsertHost(makeHost(`h${i}`));
  cluster.addContainer(makeContainer('h39'));
  assert.equal(cluster.tenant('acme').containersOn(cluster.host('h39')!.slot), 1);
  assert.equal(cluster.tenant('acme').containersOn(10_000), 0);
});

test('image holders by slot follow reports and removals, and a reused slot starts without images', () => {
  const cluster = new ClusterState();
  for (let i = 0; i < 100; i++) cluster.upsertHost(makeHost(`h${i}`, { images: i % 2 === 0 ? ['redis'] : [] }));
  const slot = (id: string): number => cluster.host(id)!.slot;
  const holders = (): number[] =>
    cluster
      .hosts()
      .filter((h) => cluster.hostSlotsWithImage('docker.io/library/redis:latest')?.[h.slot] === 1)
      .map((h) => Number(h.id.slice(1)))
      .sort((a, b) => a - b);
  assert.deepEqual(holders(), [...cluster.hostsWithImage('redis')!].map((id) => Number(id.slice(1))).sort((a, b) => a - b));
  assert.equal(holders().length, 50, 'slots past the first array size were grown into');
  cluster.upsertHost(makeHost('h98', { images: [] }));
  cluster.upsertHost(makeHost('h99', { images: ['redis:latest'] }));
  assert.equal(holders().includes(98), false);
  assert.equal(holders().includes(99), true);
  const freed = slot('h0');
  cluster.removeHost('h0');
  cluster.upsertHost(makeHost('fresh'));
  assert.equal(slot('fresh'), freed, 'the freed slot is reused');
  assert.notEqual(cluster.hostSlotsWithImage('redis')![freed], 1, 'the new host does not inherit the old one\'s images');
  for (let i = 2; i < 100; i += 2) cluster.upsertHost(makeHost(`h${i}`, { images: [] }));
  cluster.upsertHost(makeHost('h99', { images: [] }));
  assert.equal(cluster.hostSlotsWithImage('redis'), undefined, 'an image no host holds is dropped');
});
