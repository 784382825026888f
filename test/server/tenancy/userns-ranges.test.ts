/**
 * Tenants' user-namespace ID ranges: allocation (pure) and the TenantService's durable part
 * (a real SQLite store): new tenants get disjoint ranges, tenants stored before ranges existed
 * get theirs on load, ranges survive a reopen and are never handed out twice.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { operatorContext } from '../../../src/common/context.js';
import { SqliteStore } from '../../../src/server/store/sqlite/sqlite-store.js';
import type { CertificateAuthority } from '../../../src/server/tenancy/pki.js';
import { TenantService, type TenantRecord } from '../../../src/server/tenancy/tenant-service.js';
import { nextIdRange } from '../../../src/server/tenancy/userns-ranges.js';
import { toHostId, toImageId } from '../../../src/agent/userns/id-range.js';
import { capabilityForLayer } from '../../../src/agent/userns/file-caps.js';

test('nextIdRange: aligned, above the base and every range taken', () => {
  assert.deepEqual(nextIdRange(1 << 20, []), { base: 1 << 20, count: 65536 });
  assert.deepEqual(nextIdRange(1 << 20, [{ base: 1 << 20, count: 65536 }]), { base: (1 << 20) + 65536, count: 65536 });
  // An odd base is rounded up to a slot boundary.
  assert.deepEqual(nextIdRange(100_000, []), { base: 131072, count: 65536 });
  // Gaps are not reused: allocation only moves up.
  assert.deepEqual(nextIdRange(1 << 20, [{ base: (1 << 20) + 3 * 65536, count: 65536 }]), { base: (1 << 20) + 4 * 65536, count: 65536 });
  assert.throws(() => nextIdRange(2 ** 32 - 65536, []), /no user-namespace ID range left/);
});

test('toHostId / toImageId shift within the range and refuse or hide what is outside', () => {
  const range = { base: 1 << 20, count: 65536 };
  assert.equal(toHostId(range, 0), 1 << 20);
  assert.equal(toHostId(range, 65535), (1 << 20) + 65535);
  assert.throws(() => toHostId(range, 65536), /cannot be mapped/);
  assert.equal(toImageId(range, (1 << 20) + 33), 33);
  assert.equal(toImageId(range, 0), 65534, 'host root is nobody inside');
  assert.equal(toHostId(undefined, 7), 7);
  assert.equal(toImageId(undefined, 7), 7);
});

test('TenantService: ranges are durable, disjoint, given to old tenants on load, never reused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-userns-ranges-'));
  const ca = { caPem: '' } as unknown as CertificateAuthority;
  const open = (): { store: SqliteStore; service: TenantService } => {
    const store = new SqliteStore(join(dir, 'berth.db'));
    return { store, service: new TenantService({ store, ca, ownsContainers: async () => false, usernsBase: 1 << 24 }) };
  };
  try {
    let { store, service } = open();
    await service.load();
    // A tenant stored by an older Berth, without a range.
    await store.create<TenantRecord>(operatorContext('test'), 'tenant', {
      id: 'elder',
      name: 'elder',
      value: { name: 'elder', state: 'active', createdAt: '2020-01-01T00:00:00.000Z' },
    });
    await service.load();
    const elder = service.usernsOf('elder');
    assert.deepEqual(elder, { base: 1 << 24, count: 65536 });
    await service.create('acme');
    await service.create('umbrella');
    const acme = service.usernsOf('acme')!;
    const umbrella = service.usernsOf('umbrella')!;
    assert.equal(acme.base, (1 << 24) + 65536);
    assert.equal(umbrella.base, (1 << 24) + 2 * 65536);
    assert.equal(service.usernsOf('default'), undefined, 'the operator has no range');
    assert.deepEqual(service.inspect('acme').UsernsRange, { Base: acme.base, Size: 65536 });
    await service.remove('umbrella');
    await store.close();

    ({ store, service } = open());
    await service.load();
    assert.deepEqual(service.usernsOf('acme'), acme, 'durable');
    assert.deepEqual(service.usernsOf('elder'), elder);
    await service.create('successor');
    assert.equal(service.usernsOf('successor')!.base, umbrella.base + 65536, "the removed tenant's range is not reused");
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('capabilityForLayer: v3 capabilities of the range root become v2; others keep v3 with the owner shifted', () => {
  const range = { base: 1 << 20, count: 65536 };
  const v3 = (rootid: number): string => {
    const b = Buffer.alloc(24);
    b.writeUInt32LE(0x03000001, 0); // revision 3, effective
    b.writeUInt32LE(1 << 13, 4); // cap_net_raw permitted
    b.writeUInt32LE(rootid, 20);
    return b.toString('latin1');
  };
  const asV2 = Buffer.from(capabilityForLayer(v3(range.base), range), 'latin1');
  assert.equal(asV2.length, 20);
  assert.equal(asV2.readUInt32LE(0), 0x02000001);
  assert.equal(asV2.readUInt32LE(4), 1 << 13);
  const other = Buffer.from(capabilityForLayer(v3(range.base + 1000), range), 'latin1');
  assert.equal(other.length, 24);
  assert.equal(other.readUInt32LE(20), 1000);
  // Without a range (the operator's container) or for a v2 value, nothing changes.
  assert.equal(capabilityForLayer(v3(5), undefined), v3(5));
  const v2 = asV2.toString('latin1');
  assert.equal(capabilityForLayer(v2, range), v2);
});
