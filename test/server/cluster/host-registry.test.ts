import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SqliteStore } from '../../../src/server/store/sqlite/sqlite-store.js';
import { HostRegistry } from '../../../src/server/cluster/hub/host-registry.js';
import type { HostStatus } from '../../../src/common/agent-protocol.js';
import { isKind } from '../../../src/common/errors.js';

const status = (over: Partial<HostStatus> = {}): HostStatus => ({
  name: 'h1',
  address: '10.0.0.2',
  labels: { zone: 'a', disk: 'hdd' },
  capacity: { cpus: 4, memoryBytes: 8 << 30, diskBytes: 100 << 30, devices: [] },
  imageIds: [],
  containerCount: 0,
  engineVersion: '0.1.0',
  ...over,
});

describe('host registry', () => {
  let dir: string;
  let store: SqliteStore;
  let registry: HostRegistry;
  let id: string;
  const events: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-hr-'));
    store = new SqliteStore(join(dir, 'berth.db'));
    registry = new HostRegistry(store);
    await registry.load();
    for (const e of ['host-up', 'host-down', 'host-changed', 'host-removed']) registry.on(e, (h: { name: string }) => events.push(`${e}:${h.name}`));
    id = (await registry.add({ name: 'h1', address: '10.0.0.2', labels: { zone: 'a' }, certSerial: 'ABC', joinTokenId: 't' })).id;
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('down until the first heartbeat, up after it, down after the timeout, up again', async () => {
    assert.equal(registry.get('h1').state, 'down');
    await registry.heartbeat(id, status(), 1000);
    assert.equal(registry.get(id).state, 'up');
    await registry.heartbeat(id, status(), 1500);
    registry.expire(2000, 3000);
    assert.equal(registry.get(id).state, 'up');
    registry.expire(2000, 3600);
    assert.equal(registry.get(id).state, 'down');
    await registry.heartbeat(id, status({ containerCount: 2 }), 4000);
    assert.deepEqual(events.splice(0), ['host-up:h1', 'host-down:h1', 'host-up:h1']);
    await registry.heartbeat(id, status({ containerCount: 3 }), 4500);
    assert.deepEqual(events.splice(0), ['host-changed:h1']);
    await registry.heartbeat(id, status({ containerCount: 3 }), 5000);
    assert.deepEqual(events.splice(0), [], 'a heartbeat that changes nothing is no event');
  });

  test("operator labels win over the agent's, removals hide the agent's, and they survive a reload", async () => {
    await registry.label(id, { tier: 'gold', zone: 'b' }, ['disk']);
    assert.deepEqual(registry.get(id).labels, { zone: 'b', tier: 'gold' });
    await registry.setCordon('h1', true);
    const reloaded = new HostRegistry(store);
    await reloaded.load();
    const view = reloaded.get('h1');
    assert.deepEqual(view.labels, { zone: 'b', tier: 'gold' });
    assert.equal(view.cordoned, true);
    assert.equal(view.state, 'down');
    await assert.rejects(registry.label(id, { 'bad key': 'x' }, []), (err) => isKind(err, 'InvalidArgument'));
  });

  test('names are unique, refs resolve by id, name and prefix; removal frees the certificate', async () => {
    await assert.rejects(registry.add({ name: 'h1', address: '', labels: {}, certSerial: 'DEF', joinTokenId: 't' }), (err) => isKind(err, 'AlreadyExists'));
    assert.equal(registry.get(id.slice(0, 8)).id, id);
    assert.equal(registry.bySerial('ABC')?.id, id);
    await registry.remove('h1');
    assert.equal(registry.bySerial('ABC'), undefined);
    assert.throws(() => registry.get('h1'), (err) => isKind(err, 'NotFound'));
  });
});
