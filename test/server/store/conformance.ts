import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestContext } from '../../../src/common/context.js';
import { BerthError } from '../../../src/common/errors.js';
import type { Store } from '../../../src/server/store/store.js';

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
}
