import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isKind } from '../../../src/common/errors.js';
import {
  applyQuotaChange,
  cpusOf,
  enforceQuotas,
  formatBytes,
  limitsAfterUpdate,
  parseQuotaChange,
  volumesOfCreate,
  type ContainerLimits,
} from '../../../src/server/tenancy/quotas.js';
import { QuotaService } from '../../../src/server/tenancy/quota-service.js';

const NONE: ContainerLimits = { Memory: 0, NanoCpus: 0, CpuQuota: 0, CpuPeriod: 0, CpusetCpus: '' };
const GiB = 1024 ** 3;

describe('quota rules', () => {
  for (const c of [
    { name: 'NanoCpus', limits: { ...NONE, NanoCpus: 1.5e9 }, want: 1.5 },
    { name: 'quota and period', limits: { ...NONE, CpuQuota: 50_000, CpuPeriod: 100_000 }, want: 0.5 },
    { name: 'quota with the default period', limits: { ...NONE, CpuQuota: 200_000 }, want: 2 },
    { name: 'cpuset', limits: { ...NONE, CpusetCpus: '0-2,5' }, want: 4 },
    { name: 'no limit: every host CPU', limits: NONE, want: 8 },
  ]) {
    test(`cpusOf: ${c.name}`, () => assert.equal(cpusOf(c.limits, 8), c.want));
  }

  test('limitsAfterUpdate keeps what a zero leaves and drops quota/period for NanoCpus', () => {
    const current = { ...NONE, Memory: GiB, CpuQuota: 50_000, CpuPeriod: 100_000 };
    assert.deepEqual(limitsAfterUpdate(current, { Memory: 0, NanoCpus: 2e9 }), { ...NONE, Memory: GiB, NanoCpus: 2e9 });
    assert.deepEqual(limitsAfterUpdate(current, { Memory: 2 * GiB }), { ...current, Memory: 2 * GiB });
  });

  test('enforceQuotas names the quota, the use and the ask', () => {
    const refusal = (() => {
      try {
        enforceQuotas({ memory: 4 * GiB }, [{ name: 'memory', use: 3 * GiB, ask: 2 * GiB, asker: 'this container' }]);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    assert.ok(isKind(refusal, 'Forbidden'));
    assert.equal(refusal.message, 'quota exceeded: memory 3 GiB of 4 GiB in use, this container asks 2 GiB');
    // Exactly at the quota passes; unset quotas never refuse; disk refuses once used up.
    enforceQuotas({ containers: 2 }, [{ name: 'containers', use: 1, ask: 1, asker: 'x' }]);
    enforceQuotas({}, [{ name: 'containers', use: 100, ask: 1, asker: 'x' }]);
    enforceQuotas({ cpus: 1.5 }, [{ name: 'cpus', use: 1.2, ask: 0.3, asker: 'x' }]);
    assert.throws(() => enforceQuotas({ disk: 10 }, [{ name: 'disk', use: 10, ask: 0, asker: 'this pull' }]), /quota exceeded: disk 10 B of 10 B in use, this pull would add more/);
  });

  test('quota changes: set, clear, refuse nonsense', () => {
    assert.deepEqual(applyQuotaChange({ containers: 3, memory: GiB }, { containers: null, cpus: 1.5 }), { memory: GiB, cpus: 1.5 });
    assert.throws(() => applyQuotaChange({}, { containers: 1.5 }), /whole number/);
    assert.throws(() => applyQuotaChange({}, { cpus: 0 }), /positive number of CPUs/);
    assert.deepEqual(parseQuotaChange({ Memory: 5, Images: null }), { memory: 5, images: null });
    assert.throws(() => parseQuotaChange({ Gpus: 1 }), /unknown quota "Gpus"/);
    assert.throws(() => parseQuotaChange({ Memory: '5g' }), /must be a number/);
  });

  test('volumesOfCreate finds named and anonymous volumes, not bind mounts', () => {
    const body = {
      Volumes: { '/anon': {} },
      HostConfig: {
        Binds: ['data:/data', '/host:/h', 'data:/again:ro'],
        Mounts: [{ Type: 'volume', Source: 'other', Target: '/o' }, { Type: 'volume', Target: '/a2' }, { Type: 'bind', Source: '/x', Target: '/x' }],
      },
    };
    assert.deepEqual(volumesOfCreate(body), { named: ['data', 'other'], anonymous: 2 });
  });

  test('formatBytes', () => {
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536 * 1024 ** 2), '1.5 GiB');
    assert.equal(formatBytes(4 * GiB), '4 GiB');
  });
});

describe('QuotaService', () => {
  test('concurrent guarded creates of one tenant are serialised; other tenants do not wait', async () => {
    const made: string[] = [];
    let inFlight = 0;
    const service = new QuotaService({
      hostCpus: 4,
      quotasOf: (tenant) => (tenant === 'acme' ? { containers: 3 } : undefined),
      defaultMemoryOf: () => GiB,
      sources: {
        containers: async (ctx) => made.filter((m) => m.startsWith(ctx.tenant)).map((id) => ({ ...NONE, Memory: GiB, id, name: id })),
        volumeNames: async () => [],
        networkCount: async () => 0,
        imageCount: async () => 0,
        hasImage: async () => false,
        diskBytes: async () => 0,
      },
    });
    const create = (tenant: string, i: number) =>
      service.guardContainerCreate({ tenant, requestId: String(i) }, {}, async () => {
        inFlight++;
        assert.ok(tenant !== 'acme' || inFlight === 1, 'one guarded create of a tenant at a time');
        await new Promise((r) => setTimeout(r, 5));
        made.push(`${tenant}-${i}`);
        inFlight--;
      });
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => create('acme', i)));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3);
    assert.equal(made.length, 3);
    // A tenant without quotas takes no lock and has no limit.
    await Promise.all(Array.from({ length: 5 }, (_, i) => create('free', i)));
    assert.equal(made.filter((m) => m.startsWith('free')).length, 5);
  });
});
