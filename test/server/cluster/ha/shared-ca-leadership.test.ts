/**
 * The pieces of an HA control plane that need only etcd (a real member, etcd-harness.ts):
 * servers racing to create the shared CA end with one; a server that had a CA offers it;
 * leadership goes to exactly one candidate and passes on when the leader resigns or its
 * lease lapses.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EtcdStore } from '../../../../src/server/store/etcd/etcd-store.js';
import { openSharedCa } from '../../../../src/server/cluster/ha/shared-ca.js';
import { EtcdLeadership } from '../../../../src/server/cluster/ha/leadership.js';
import { CertificateAuthority } from '../../../../src/server/tenancy/pki.js';
import { createLogger } from '../../../../src/common/logging.js';
import { EtcdCluster } from '../../../support/etcd-harness.js';
import { pollFor, removeTree } from '../../../support/cleanup.js';

describe('HA control plane: shared CA and leadership on etcd', () => {
  let etcd: EtcdCluster;
  let work: string;
  before(async () => {
    etcd = await EtcdCluster.start(1);
    work = await mkdtemp(join(tmpdir(), 'berth-ha-unit-'));
  });
  after(async () => {
    await etcd?.stop();
    if (work) await removeTree(work);
  });
  const freshStore = (): { store: EtcdStore; prefix: string } => {
    const prefix = `/t-${randomBytes(4).toString('hex')}/`;
    return { store: new EtcdStore({ endpoints: etcd.endpoints(), prefix }), prefix };
  };
  const dataRoot = async (name: string): Promise<string> => {
    const dir = join(work, name);
    await mkdir(dir, { recursive: true });
    return dir;
  };

  test('three servers starting at once end with one CA', async () => {
    const { store } = freshStore();
    try {
      const roots = await Promise.all(['s1', 's2', 's3'].map(dataRoot));
      const cas = await Promise.all(roots.map((root) => openSharedCa(store, join(root, 'pki'))));
      assert.equal(new Set(cas.map((ca) => ca.caPem)).size, 1);
      // Each server holds the key too (it signs), and a later start changes nothing.
      for (const root of roots) assert.match(await readFile(join(root, 'pki', 'ca-key.pem'), 'utf8'), /PRIVATE KEY/);
      assert.equal((await openSharedCa(store, join(roots[0]!, 'pki'))).caPem, cas[0]!.caPem);
    } finally {
      await store.close();
    }
  });

  test('a server that ran on SQLite offers its own CA; a server with another CA takes the stored one', async () => {
    const { store } = freshStore();
    try {
      const old = await dataRoot('migrated');
      const own = await CertificateAuthority.open(join(old, 'pki'));
      assert.equal((await openSharedCa(store, join(old, 'pki'))).caPem, own.caPem);
      const other = await dataRoot('other');
      const stray = await CertificateAuthority.open(join(other, 'pki'));
      const taken = await openSharedCa(store, join(other, 'pki'));
      assert.equal(taken.caPem, own.caPem);
      assert.notEqual(taken.caPem, stray.caPem);
    } finally {
      await store.close();
    }
  });

  test('one leader at a time; resigning or dying hands it on', async () => {
    const prefix = `/t-${randomBytes(4).toString('hex')}/`;
    const logger = createLogger('ha-test');
    const location = { endpoints: etcd.endpoints(), prefix };
    const candidates = ['a', 'b', 'c'].map((name) => new EtcdLeadership(location, name, logger));
    try {
      for (const c of candidates) c.start();
      const leaderOf = (): Promise<EtcdLeadership> =>
        pollFor('one leader', async () => {
          const leaders = candidates.filter((c) => c.isLeader);
          return leaders.length === 1 ? leaders[0] : undefined;
        });
      const first = await leaderOf();
      assert.equal(await candidates.find((c) => c !== first)!.leader(), first.self);
      const deposed = new Promise<void>((resolve) => first.once('deposed', () => resolve()));
      await first.close();
      await deposed;
      candidates.splice(candidates.indexOf(first), 1);
      const second = await leaderOf();
      assert.notEqual(second.self, first.self);
      assert.equal(await candidates.find((c) => c !== second)!.leader(), second.self);
    } finally {
      for (const c of candidates) await c.close();
    }
  });
});
