import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SqliteStore } from '../../../src/server/store/sqlite/sqlite-store.js';
import { JoinTokens, parseJoinToken } from '../../../src/server/cluster/join-tokens.js';
import { isKind } from '../../../src/common/errors.js';

const FINGERPRINT = 'a'.repeat(64);

describe('join tokens', () => {
  let dir: string;
  let store: SqliteStore;
  let tokens: JoinTokens;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-jt-'));
    store = new SqliteStore(join(dir, 'berth.db'));
    tokens = new JoinTokens(store, FINGERPRINT);
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a token names the CA and its id; only the hash of the secret is stored', async () => {
    const { id, token } = await tokens.create('rack 4');
    const parsed = parseJoinToken(token);
    assert.equal(parsed.caFingerprint, FINGERPRINT);
    assert.equal(parsed.id, id);
    const stored = JSON.stringify(await store.list({ tenant: 'default', requestId: 't' }, 'join-token'));
    assert.ok(!stored.includes(parsed.secret));
    assert.equal(await tokens.redeem(token), id);
    assert.equal((await tokens.list()).find((t) => t.ID === id)?.Uses, 1);
  });

  const refusals: { name: string; token: (good: string) => string; message: RegExp }[] = [
    { name: 'malformed', token: () => 'BERTHJT-1-nope', message: /malformed join token/ },
    { name: 'other CA', token: (good) => good.replace(FINGERPRINT, 'b'.repeat(64)), message: /another control plane/ },
    { name: 'wrong secret', token: (good) => `${good.slice(0, -64)}${'0'.repeat(64)}`, message: /secret does not match/ },
    { name: 'unknown id', token: (good) => good.replace(parseJoinToken(good).id, 'f'.repeat(16)), message: /no such token/ },
  ];
  for (const c of refusals) {
    test(`refused: ${c.name}`, async () => {
      const { token } = await tokens.create();
      await assert.rejects(tokens.redeem(c.token(token)), (err) => isKind(err, 'Unauthenticated') && c.message.test(err.message));
    });
  }

  test('a revoked token is refused and stays listed as revoked; revoking twice is fine', async () => {
    const { id, token } = await tokens.create();
    await tokens.revoke(id);
    const again = await tokens.revoke(id);
    assert.ok(again.RevokedAt);
    await assert.rejects(tokens.redeem(token), /it was revoked/);
    await assert.rejects(tokens.revoke('0123456789abcdef'), (err) => isKind(err, 'NotFound'));
  });
});
