import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { RequestContext } from '../../../src/common/context.js';
import { BerthError } from '../../../src/common/errors.js';
import { EtcdStore } from '../../../src/server/store/etcd/etcd-store.js';
import { migrateToEtcd } from '../../../src/server/store/migrate.js';
import { SqliteStore } from '../../../src/server/store/sqlite/sqlite-store.js';
import { EtcdCluster } from '../../support/etcd-harness.js';

let cluster: EtcdCluster;
let dir: string;
before(async () => {
  cluster = await EtcdCluster.start(1);
  dir = await mkdtemp(join(tmpdir(), 'berth-migrate-'));
});
after(async () => {
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const tenant = (name: string): RequestContext => ({ tenant: name, requestId: 't' });

/** A SQLite store with records of three tenants and three kinds, some renamed and updated. */
async function populatedSource(): Promise<SqliteStore> {
  const source = new SqliteStore(join(dir, `${randomBytes(4).toString('hex')}.db`));
  for (const t of ['default', 'acme', 'globex']) {
    for (const kind of ['container', 'volume', 'network']) {
      for (let i = 0; i < 7; i++) {
        await source.create(tenant(t), kind, { id: `${kind}-${i}`, ...(i % 2 ? { name: `${t}-${kind}-${i}` } : {}), value: { t, kind, i, nested: { list: [i, 'x'] } } });
      }
    }
    await source.update(tenant(t), 'container', 'container-1', { value: { renamed: true }, name: 'renamed' });
  }
  return source;
}

function target(): EtcdStore {
  return new EtcdStore({ endpoints: cluster.endpoints(), prefix: `/m-${randomBytes(4).toString('hex')}/` });
}

test('migration keeps ids, names, revisions and values of every tenant and kind; a second run changes nothing', async () => {
  const source = await populatedSource();
  const etcd = target();
  try {
    const first = await migrateToEtcd(source.exportRecords(), etcd, { force: false });
    assert.deepEqual([first.created, first.unchanged, first.removed], [63, 0, 0]);
    assert.equal(first.counts.get('container acme'), 7);
    for (const t of ['default', 'acme', 'globex']) {
      for (const kind of ['container', 'volume', 'network']) {
        assert.deepEqual(
          (await etcd.list(tenant(t), kind)).sort((a, b) => a.id.localeCompare(b.id)),
          (await source.list(tenant(t), kind)).sort((a, b) => a.id.localeCompare(b.id)),
        );
      }
    }
    const renamed = await etcd.lookup(tenant('acme'), 'container', 'renamed');
    assert.deepEqual([renamed.id, renamed.revision], ['container-1', 2]);
    // Names keep working as names in the target: taken ones are refused.
    await assert.rejects(etcd.create(tenant('acme'), 'container', { id: 'new', name: 'renamed', value: 1 }), (err) => err instanceof BerthError && err.kind === 'AlreadyExists');
    await etcd.delete(tenant('acme'), 'container', 'new').catch(() => undefined);

    const second = await migrateToEtcd(source.exportRecords(), etcd, { force: false });
    assert.deepEqual([second.created, second.unchanged, second.removed], [0, 63, 0]);
  } finally {
    await source.close();
    await etcd.close();
  }
});

test('an interrupted migration is completed by running it again', async () => {
  const source = await populatedSource();
  const etcd = target();
  try {
    const all = [...source.exportRecords()];
    // The first run died after writing some records.
    for (const record of all.slice(0, 20)) await etcd.importRecord(record.tenant, record.kind, record);
    const resumed = await migrateToEtcd(all, etcd, { force: false });
    assert.deepEqual([resumed.created, resumed.unchanged], [all.length - 20, 20]);
  } finally {
    await source.close();
    await etcd.close();
  }
});

test('a target holding other records is refused unless --force, which makes it a copy', async () => {
  const source = await populatedSource();
  const etcd = target();
  try {
    await etcd.create(tenant('acme'), 'container', { id: 'stranger', name: 'acme-container-3', value: 'not in the source' });
    await etcd.create(tenant('acme'), 'volume', { id: 'volume-0', value: 'differs from the source' });
    await assert.rejects(migrateToEtcd(source.exportRecords(), etcd, { force: false }), (err) => err instanceof BerthError && err.kind === 'Conflict' && /2 record\(s\).*--force/.test(err.message));
    assert.equal((await etcd.exportRecords()).length, 2, 'a refused migration writes nothing');
    const forced = await migrateToEtcd(source.exportRecords(), etcd, { force: true });
    assert.deepEqual([forced.created, forced.removed], [63, 2]);
    assert.equal((await etcd.lookup(tenant('acme'), 'container', 'acme-container-3')).id, 'container-3');
    assert.deepEqual((await etcd.get(tenant('acme'), 'volume', 'volume-0')).value, { t: 'acme', kind: 'volume', i: 0, nested: { list: [0, 'x'] } });
  } finally {
    await source.close();
    await etcd.close();
  }
});
