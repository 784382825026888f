import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { RequestContext } from '../../../src/common/context.js';
import { BerthError } from '../../../src/common/errors.js';
import { EtcdStore } from '../../../src/server/store/etcd/etcd-store.js';
import { EtcdCluster } from '../../support/etcd-harness.js';
import { pollFor } from '../../support/cleanup.js';

const ctx: RequestContext = { tenant: 'alice', requestId: 't' };
const kindOf = (err: unknown): string => (err instanceof BerthError ? err.kind : `not a BerthError: ${String(err)}`);

/**
 * Writers that create records until stopped; each remembers what etcd acknowledged and how
 * the others failed.
 */
function startWriters(store: EtcdStore, count: number, tag: string) {
  const acknowledged: { id: string; at: number }[] = [];
  const failures: string[] = [];
  let stopped = false;
  const done = Promise.all(
    Array.from({ length: count }, async (_, worker) => {
      for (let n = 0; !stopped; n++) {
        const id = `${tag}-${worker}-${n}`;
        try {
          await store.create(ctx, 'thing', { id, name: `name-${id}`, value: { worker, n } });
          acknowledged.push({ id, at: Date.now() });
        } catch (err) {
          failures.push(kindOf(err));
        }
      }
    }),
  );
  return {
    acknowledged,
    failures,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

async function assertAllPresent(store: EtcdStore, ids: string[]): Promise<void> {
  const listed = new Map((await store.list<{ worker: number; n: number }>(ctx, 'thing')).map((r) => [r.id, r]));
  const missing = ids.filter((id) => !listed.has(id));
  assert.deepEqual(missing, [], `${missing.length} acknowledged writes lost`);
  for (const id of ids) {
    const record = listed.get(id)!;
    assert.equal(record.name, `name-${id}`);
    const [, worker, n] = id.split('-');
    assert.deepEqual(record.value, { worker: Number(worker), n: Number(n) });
  }
}

test('SIGKILL of etcd mid-write: every acknowledged write is there after restart; failures are Unavailable', async (t) => {
  const cluster = await EtcdCluster.start(1);
  const store = new EtcdStore({ endpoints: cluster.endpoints(), prefix: `/k-${randomBytes(4).toString('hex')}/`, callTimeoutMs: 2000, retryForMs: 3000 });
  try {
    const writers = startWriters(store, 6, 'a');
    await pollFor('some writes', async () => (writers.acknowledged.length >= 50 ? true : undefined));
    await cluster.kill(0);
    const ackedBeforeKill = writers.acknowledged.length;
    // While etcd is down a call fails as Unavailable once its retries are spent, never with a driver error.
    await assert.rejects(store.get(ctx, 'thing', 'anything'), (err) => kindOf(err) === 'Unavailable');
    await cluster.restart(0);
    await pollFor('writes after the restart', async () => (writers.acknowledged.length > ackedBeforeKill + 20 ? true : undefined));
    await writers.stop();
    assert.ok(new Set(writers.failures).size <= 1 && writers.failures.every((k) => k === 'Unavailable'), `failures: ${[...new Set(writers.failures)].join(', ')}`);
    await assertAllPresent(store, writers.acknowledged.map((w) => w.id));
    t.diagnostic(`acknowledged ${writers.acknowledged.length} (${ackedBeforeKill} before the kill), failed ${writers.failures.length}`);
  } finally {
    await store.close();
    await cluster.stop();
  }
});

/** The member id of the current leader, and each member's own id, from etcd's JSON gateway. */
async function leaderIndex(cluster: EtcdCluster): Promise<number> {
  const statuses = await Promise.all(
    cluster.endpoints().map(async (endpoint) => {
      const response = await fetch(`http://${endpoint}/v3/maintenance/status`, { method: 'POST', body: '{}' });
      return (await response.json()) as { leader: string; header: { member_id: string } };
    }),
  );
  const index = statuses.findIndex((s) => s.header.member_id === s.leader);
  assert.ok(index >= 0, 'the cluster has a leader');
  return index;
}

test('three-member cluster: killing the leader does not stop writes, and watches on another server see them', async (t) => {
  const cluster = await EtcdCluster.start(3);
  const prefix = `/c-${randomBytes(4).toString('hex')}/`;
  const writerStore = new EtcdStore({ endpoints: cluster.endpoints(), prefix });
  const watcherStore = new EtcdStore({ endpoints: cluster.endpoints(), prefix });
  const watched = new Set<string>();
  const watch = await watcherStore.watch('thing', (change) => {
    if (change.record) watched.add(change.id);
  });
  try {
    const writers = startWriters(writerStore, 4, 'c');
    await pollFor('some writes', async () => (writers.acknowledged.length >= 30 ? true : undefined));
    const leader = await leaderIndex(cluster);
    const killedAt = Date.now();
    await cluster.kill(leader);
    await pollFor('writes after the kill', async () =>
      writers.acknowledged.filter((w) => w.at > killedAt + 500).length >= 50 ? true : undefined,
    );
    await writers.stop();
    assert.deepEqual(writers.failures, [], 'no write failed while a quorum was up');
    const ids = writers.acknowledged.map((w) => w.id);
    await assertAllPresent(writerStore, ids);
    const after = writers.acknowledged.filter((w) => w.at > killedAt);
    t.diagnostic(`acknowledged ${ids.length}, ${after.length} after killing leader m${leader}; first in ${(after[0]?.at ?? killedAt) - killedAt} ms`);
    await pollFor('the watch to see every acknowledged write', async () => (ids.every((id) => watched.has(id)) ? true : undefined), 15_000);

    // The killed member comes back and catches up: read through it alone.
    await cluster.restart(leader);
    const onlyRestarted = new EtcdStore({ endpoints: [cluster.endpoints()[leader]!], prefix });
    try {
      await assertAllPresent(onlyRestarted, ids);
    } finally {
      await onlyRestarted.close();
    }
  } finally {
    await watch.close();
    await writerStore.close();
    await watcherStore.close();
    await cluster.stop();
  }
});

test('a store whose endpoints are all down fails as Unavailable', async () => {
  const cluster = await EtcdCluster.start(1);
  const endpoints = cluster.endpoints();
  await cluster.stop();
  const store = new EtcdStore({ endpoints, callTimeoutMs: 500, retryForMs: 1000 });
  try {
    await assert.rejects(store.create(ctx, 'thing', { id: 'x', value: 1 }), (err) => kindOf(err) === 'Unavailable');
  } finally {
    await store.close();
  }
});
