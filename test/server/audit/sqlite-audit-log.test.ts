import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { AuditIntent } from '../../../src/server/audit/audit-log.js';
import { SqliteAuditLog } from '../../../src/server/audit/sqlite-audit-log.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function freshLog(retention = { maxAgeDays: 0, maxEntries: 0 }): Promise<{ log: SqliteAuditLog; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-audit-'));
  dirs.push(dir);
  const path = join(dir, 'audit.db');
  return { log: new SqliteAuditLog(path, retention), path };
}

const intent = (tenant: string, time = new Date()): AuditIntent => ({
  time,
  tenant,
  credential: 'local-socket',
  method: 'POST',
  path: '/containers/create',
  requestId: 'r',
});

describe('SqliteAuditLog', () => {
  test('intent, result, unknown result, filters, newest first, and reopening', async () => {
    const { log, path } = await freshLog();
    const a = await log.begin(intent('acme'));
    await log.finish(a, { time: new Date(), status: 201, object: 'abc' });
    await log.finish(a, { time: new Date(), status: 500 }); // a second result is ignored: append-only
    const b = await log.begin(intent('umbrella'));
    await log.record({ ...intent(''), credential: 'certificate:AB' }, { time: new Date(), status: 401, error: 'revoked' });
    await log.close();

    const reopened = new SqliteAuditLog(path);
    const all = await reopened.query({});
    assert.deepEqual(all.map((e) => e.seq), [b + 1, b, a]);
    assert.equal(all[2]!.result?.status, 201);
    assert.equal(all[2]!.result?.object, 'abc');
    assert.equal(all[1]!.result, undefined, 'no result: unknown');
    assert.equal(all[0]!.result?.error, 'revoked');
    assert.deepEqual((await reopened.query({ tenant: 'acme' })).map((e) => e.seq), [a]);
    assert.equal((await reopened.query({ limit: 1 })).length, 1);
    assert.equal((await reopened.query({ since: new Date(Date.now() + 60_000) })).length, 0);
    await reopened.close();
  });

  test('retention drops the oldest entries by age and by count', async () => {
    const { log } = await freshLog({ maxAgeDays: 30, maxEntries: 3 });
    const now = new Date('2026-11-23T12:00:00Z');
    const old = await log.begin(intent('acme', new Date('2026-09-01T00:00:00Z')));
    await log.finish(old, { time: now, status: 204 });
    for (let i = 0; i < 4; i++) await log.begin(intent('acme', now));
    assert.equal(await log.prune(now), 2, 'the old one and one past the newest three');
    assert.equal((await log.query({ limit: 100 })).length, 3);
    assert.equal(await log.prune(now), 0);
    await log.close();
  });
});
