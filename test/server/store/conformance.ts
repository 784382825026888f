import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestContext } from '../../../src/common/context.js';
import { BerthError } from '../../../src/common/errors.js';
import type { Store, StoreChange } from '../../../src/server/store/store.js';

const alice: RequestContext = { tenant: 'alice', requestId: 't' };
const bob: RequestContext = { tenant: 'bob', requestId: 't' };

function kindOf(err: unknown): string | undefined {
  return err instanceof BerthError ? err.kind : undefined;
}

/** The behaviour every Store implementation must show; run once per backend. */
export function storeConformance(name: string, open: () => Promise<{ store: Store; cleanup: () => Promise<void> }>): void {
  const withStore = (title: string, body: (store: Store) => Promise<void>): void => {
    test(`${name}: ${title}`, async () => {
      const { store, cleanup } = await open();
      try {
        await body(store);
      } finally {
        await cleanup();
      }
    });
  };

  withStore('create then get returns the record at revision 1', async (store) => {
    const created = await store.create(alice, 'thing', { id: 'a1', name: 'one', value: { n: 1 } });
    assert.equal(created.revision, 1);
    assert.deepEqual(await store.get(alice, 'thing', 'a1'), { id: 'a1', name: 'one', revision: 1, value: { n: 1 } });
  });

  withStore('records of another tenant are invisible', async (store) => {
    await store.create(alice, 'thing', { id: 'a1', name: 'one', value: {} });
    await assert.rejects(store.get(bob, 'thing', 'a1'), (err) => kindOf(err) === 'NotFound');
    await assert.rejects(store.lookup(bob, 'thing', 'one'), (err) => kindOf(err) === 'NotFound');
    await assert.rejects(store.lookup(bob, 'thing', 'a'), (err) => kindOf(err) === 'NotFound');
    assert.deepEqual(await store.list(bob, 'thing'), []);
    await assert.rejects(store.delete(bob, 'thing', 'a1'), (err) => kindOf(err) === 'NotFound');
    // Names are unique per tenant only.
    await store.create(bob, 'thing', { id: 'b1', name: 'one', value: {} });
  });

  withStore('names and ids are unique within a tenant and kind', async (store) => {
    await store.create(alice, 'thing', { id: 'a1', name: 'one', value: {} });
    await assert.rejects(store.create(alice, 'thing', { id: 'a2', name: 'one', value: {} }), (err) => kindOf(err) === 'AlreadyExists');
    await assert.rejects(store.create(alice, 'thing', { id: 'a1', value: {} }), (err) => kindOf(err) === 'AlreadyExists');
    await store.create(alice, 'other', { id: 'a1', name: 'one', value: {} });
  });

  withStore('lookup resolves id, then name, then a unique prefix', async (store) => {
    await store.create(alice, 'thing', { id: 'abc123', name: 'web', value: 1 });
    await store.create(alice, 'thing', { id: 'abd456', name: 'abc123x', value: 2 });
    assert.equal((await store.lookup(alice, 'thing', 'abc123')).value, 1);
    assert.equal((await store.lookup(alice, 'thing', 'web')).value, 1);
    assert.equal((await store.lookup(alice, 'thing', 'abd')).value, 2);
    await assert.rejects(store.lookup(alice, 'thing', 'ab'), (err) => kindOf(err) === 'InvalidArgument');
    await assert.rejects(store.lookup(alice, 'thing', 'zzz'), (err) => kindOf(err) === 'NotFound');
  });

  withStore('update bumps the revision and refuses a stale expected revision', async (store) => {
    await store.create(alice, 'thing', { id: 'a1', name: 'one', value: { n: 1 } });
    const updated = await store.update(alice, 'thing', 'a1', { value: { n: 2 }, expectedRevision: 1 });
    assert.equal(updated.revision, 2);
    await assert.rejects(store.update(alice, 'thing', 'a1', { value: { n: 3 }, expectedRevision: 1 }), (err) => kindOf(err) === 'Conflict');
    assert.deepEqual((await store.get(alice, 'thing', 'a1')).value, { n: 2 });
  });

  withStore('rename through update keeps names unique', async (store) => {
    await store.create(alice, 'thing', { id: 'a1', name: 'one', value: {} });
    await store.create(alice, 'thing', { id: 'a2', name: 'two', value: {} });
    await assert.rejects(store.update(alice, 'thing', 'a2', { value: {}, name: 'one' }), (err) => kindOf(err) === 'AlreadyExists');
    await store.update(alice, 'thing', 'a2', { value: {}, name: 'three' });
    assert.equal((await store.lookup(alice, 'thing', 'three')).id, 'a2');
  });

  withStore('delete removes; a stale revision is a conflict; a missing id is NotFound', async (store) => {
    await store.create(alice, 'thing', { id: 'a1', value: {} });
    await store.update(alice, 'thing', 'a1', { value: { x: 1 } });
    await assert.rejects(store.delete(alice, 'thing', 'a1', 1), (err) => kindOf(err) === 'Conflict');
    await store.delete(alice, 'thing', 'a1', 2);
    await assert.rejects(store.delete(alice, 'thing', 'a1'), (err) => kindOf(err) === 'NotFound');
  });

  withStore('listAllTenants sees every tenant', async (store) => {
    await store.create(alice, 'thing', { id: 'a1', value: {} });
    await store.create(bob, 'thing', { id: 'b1', value: {} });
    const all = await store.listAllTenants('thing');
    assert.deepEqual(all.map((r) => `${r.tenant}/${r.id}`).sort(), ['alice/a1', 'bob/b1']);
  });

  withStore('name reuse: a deleted or renamed-away name is free again', async (store) => {
    await store.create(alice, 'thing', { id: 'a1', name: 'web', value: 1 });
    await store.delete(alice, 'thing', 'a1');
    await store.create(alice, 'thing', { id: 'a2', name: 'web', value: 2 });
    assert.equal((await store.lookup(alice, 'thing', 'web')).id, 'a2');
    await store.update(alice, 'thing', 'a2', { value: 2, name: 'api' });
    await store.create(alice, 'thing', { id: 'a3', name: 'web', value: 3 });
    assert.equal((await store.lookup(alice, 'thing', 'web')).id, 'a3');
    assert.equal((await store.lookup(alice, 'thing', 'api')).id, 'a2');
    // Clearing a name frees it too, and the record is no longer found by it.
    await store.update(alice, 'thing', 'a3', { value: 3, name: null });
    await assert.rejects(store.lookup(alice, 'thing', 'web'), (err) => kindOf(err) === 'NotFound');
    await store.create(alice, 'thing', { id: 'a4', name: 'web', value: 4 });
  });

  withStore('an update keeps the name unless told otherwise; a failed create leaves nothing', async (store) => {
    await store.create(alice, 'thing', { id: 'a1', name: 'one', value: 1 });
    const updated = await store.update(alice, 'thing', 'a1', { value: 2 });
    assert.equal(updated.name, 'one');
    await assert.rejects(store.create(alice, 'thing', { id: 'a2', name: 'one', value: 9 }), (err) => kindOf(err) === 'AlreadyExists');
    await assert.rejects(store.get(alice, 'thing', 'a2'), (err) => kindOf(err) === 'NotFound');
    await assert.rejects(store.create(alice, 'thing', { id: 'a1', name: 'fresh', value: 9 }), (err) => kindOf(err) === 'AlreadyExists');
    await assert.rejects(store.lookup(alice, 'thing', 'fresh'), (err) => kindOf(err) === 'NotFound');
    await assert.rejects(store.update(alice, 'thing', 'nope', { value: 1 }), (err) => kindOf(err) === 'NotFound');
  });

  withStore('odd characters in names, ids and tenants stay in their own segment', async (store) => {
    const slashy: RequestContext = { tenant: 'a/b', requestId: 't' };
    await store.create(slashy, 'thing', { id: 'x/y', name: 'n/m ü', value: { s: 'ok' } });
    assert.equal((await store.lookup(slashy, 'thing', 'n/m ü')).id, 'x/y');
    assert.deepEqual((await store.get(slashy, 'thing', 'x/y')).value, { s: 'ok' });
    await assert.rejects(store.get({ tenant: 'a', requestId: 't' }, 'thing', 'b/x/y'), (err) => kindOf(err) === 'NotFound');
    assert.deepEqual(await store.list({ tenant: 'a', requestId: 't' }, 'thing'), []);
    assert.deepEqual((await store.listAllTenants('thing')).map((r) => [r.tenant, r.id]), [['a/b', 'x/y']]);
  });

  withStore('concurrent creates of one name: exactly one wins', async (store) => {
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => store.create(alice, 'thing', { id: `c${i}`, name: 'contested', value: i })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    for (const r of results) if (r.status === 'rejected') assert.equal(kindOf(r.reason), 'AlreadyExists');
    assert.equal((await store.list(alice, 'thing')).length, 1);
  });

  withStore('rename race: many records renamed to one name, exactly one gets it', async (store) => {
    for (let i = 0; i < 10; i++) await store.create(alice, 'thing', { id: `r${i}`, name: `old${i}`, value: i });
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => store.update(alice, 'thing', `r${i}`, { value: i, name: 'target' })),
    );
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [`r${i}`] : []));
    assert.equal(winners.length, 1);
    for (const r of results) if (r.status === 'rejected') assert.equal(kindOf(r.reason), 'AlreadyExists');
    assert.equal((await store.lookup(alice, 'thing', 'target')).id, winners[0]);
    // The losers kept their old names; the winner's old name is free.
    const names = (await store.list(alice, 'thing')).map((r) => r.name).sort();
    assert.equal(names.filter((n) => n === 'target').length, 1);
    assert.equal(new Set(names).size, 10);
    const freed = `old${winners[0]!.slice(1)}`;
    assert.ok(!names.includes(freed));
    await store.create(alice, 'thing', { id: 'new', name: freed, value: 0 });
  });

  withStore('concurrent writers: no update is lost, compare-and-swap retries converge', async (store) => {
    await store.create(alice, 'thing', { id: 'blind', value: 0 });
    await Promise.all(Array.from({ length: 15 }, (_, i) => store.update(alice, 'thing', 'blind', { value: i })));
    assert.equal((await store.get(alice, 'thing', 'blind')).revision, 16);

    await store.create(alice, 'thing', { id: 'counter', value: { n: 0 } });
    const increment = async (): Promise<void> => {
      for (;;) {
        const current = await store.get<{ n: number }>(alice, 'thing', 'counter');
        try {
          await store.update(alice, 'thing', 'counter', { value: { n: current.value.n + 1 }, expectedRevision: current.revision });
          return;
        } catch (err) {
          if (kindOf(err) !== 'Conflict') throw err;
        }
      }
    };
    const workers = 6;
    const perWorker = 5;
    await Promise.all(Array.from({ length: workers }, async () => {
      for (let i = 0; i < perWorker; i++) await increment();
    }));
    const final = await store.get<{ n: number }>(alice, 'thing', 'counter');
    assert.equal(final.value.n, workers * perWorker);
    assert.equal(final.revision, workers * perWorker + 1);
  });

  withStore('concurrent deletes: one succeeds, the rest are NotFound', async (store) => {
    await store.create(alice, 'thing', { id: 'd1', name: 'gone', value: 0 });
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => store.delete(alice, 'thing', 'd1')));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) if (r.status === 'rejected') assert.equal(kindOf(r.reason), 'NotFound');
    await store.create(alice, 'thing', { id: 'd2', name: 'gone', value: 1 });
  });

  withStore('list returns every record of the tenant, beyond one page', async (store) => {
    const count = 1234;
    const ids = Array.from({ length: count }, (_, i) => i.toString(16).padStart(8, '0'));
    for (let i = 0; i < ids.length; i += 50) {
      await Promise.all(ids.slice(i, i + 50).map((id) => store.create(alice, 'thing', { id, name: `n${id}`, value: { id } })));
    }
    await store.create(bob, 'thing', { id: 'ffffffff', value: {} });
    const listed = await store.list<{ id: string }>(alice, 'thing');
    assert.equal(listed.length, count);
    assert.deepEqual(listed.map((r) => r.value.id).sort(), ids);
    assert.equal((await store.listAllTenants('thing')).length, count + 1);
  });

  withStore('watch reports creates, updates and deletes in order, per kind', async (store) => {
    if (!store.watch) return;
    const seen: StoreChange<{ n: number }>[] = [];
    const watch = await store.watch<{ n: number }>('thing', (change) => seen.push(change));
    try {
      await store.create(alice, 'thing', { id: 'w1', name: 'one', value: { n: 1 } });
      await store.create(alice, 'other', { id: 'o1', value: { n: 0 } });
      await store.update(alice, 'thing', 'w1', { value: { n: 2 } });
      await store.create(bob, 'thing', { id: 'w2', value: { n: 3 } });
      await store.delete(alice, 'thing', 'w1');
      const deadline = Date.now() + 5000;
      while (seen.length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(
        seen.map((c) => [c.tenant, c.id, c.record?.revision ?? null, c.record?.value.n ?? null]),
        [
          ['alice', 'w1', 1, 1],
          ['alice', 'w1', 2, 2],
          ['bob', 'w2', 1, 3],
          ['alice', 'w1', null, null],
        ],
      );
      assert.equal(seen[0]!.record?.name, 'one');
    } finally {
      await watch.close();
    }
    const before = seen.length;
    await store.create(alice, 'thing', { id: 'after', value: { n: 9 } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(seen.length, before, 'a closed watch reports nothing');
  });
}
