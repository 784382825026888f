import assert from 'node:assert/strict';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  cgroupMode,
  detectOomKill,
  listCgroupPids,
  parseBlkioV1,
  parseCgroupMounts,
  parseIoStatV2,
  parseKeyValues,
  parseProcStat,
  readCgroupStats,
  removeCgroup,
} from '../../../src/agent/runtime/cgroups.js';

const HYBRID = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
`;
const V1 = HYBRID.split('\n').filter((l) => !l.includes('cgroup2')).join('\n');
const V2 = `25 20 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
26 20 0:5 / /proc rw - proc proc rw
`;

describe('parseCgroupMounts', () => {
  const cases: { name: string; text: string; mode: string; memory?: string; unified?: string }[] = [
    { name: 'hybrid', text: HYBRID, mode: 'hybrid', memory: '/sys/fs/cgroup/memory', unified: '/sys/fs/cgroup/unified' },
    { name: 'v1', text: V1, mode: 'v1', memory: '/sys/fs/cgroup/memory' },
    { name: 'pure v2', text: V2, mode: 'v2', unified: '/sys/fs/cgroup' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const h = parseCgroupMounts(c.text);
      assert.equal(h.mode, c.mode);
      assert.equal(h.v1.get('memory'), c.memory);
      assert.equal(h.unified, c.unified);
    });
  }
  test('co-mounted controllers share a mount point', () => {
    const h = parseCgroupMounts(HYBRID);
    assert.equal(h.v1.get('cpu'), '/sys/fs/cgroup/cpu,cpuacct');
    assert.equal(h.v1.get('cpuacct'), '/sys/fs/cgroup/cpu,cpuacct');
    assert.equal(h.v1.get('name=systemd'), '/sys/fs/cgroup/systemd');
    assert.equal(h.v1.has('xattr'), true); // a mount option, harmless: no container cgroup is read through it
  });
});

describe('parsers', () => {
  const cases: { name: string; run: () => unknown; want: unknown }[] = [
    {
      name: 'proc stat: total ticks of the first 7 fields in ns, online cpus',
      run: () => parseProcStat('cpu  100 0 50 1000 10 0 0 5 0 0\ncpu0 50 0 25 500 5 0 0 0 0 0\ncpu1 50 0 25 500 5 0 0 0 0 0\nintr 1\n'),
      want: { systemUsageNs: 1160 * 1e7, onlineCpus: 2 },
    },
    {
      name: 'blkio v1 skips Total',
      run: () => parseBlkioV1('8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n'),
      want: [
        { major: 8, minor: 0, op: 'Read', value: 4096 },
        { major: 8, minor: 0, op: 'Write', value: 0 },
        { major: 8, minor: 0, op: 'Total', value: 4096 },
      ],
    },
    {
      name: 'io.stat v2',
      run: () => parseIoStatV2('259:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n'),
      want: [
        { major: 259, minor: 0, op: 'read', value: 1024 },
        { major: 259, minor: 0, op: 'write', value: 2048 },
      ],
    },
    { name: 'key values', run: () => parseKeyValues('oom_kill_disable 0\nunder_oom 0\noom_kill 3\n'), want: { oom_kill_disable: 0, under_oom: 0, oom_kill: 3 } },
    { name: 'key values of nothing', run: () => parseKeyValues(undefined), want: {} },
  ];
  for (const c of cases) test(c.name, () => assert.deepEqual(c.run(), c.want));
});

describe('on this host', () => {
  test('an empty cgroup: stats, pids, oom, removal twice', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root');
      return;
    }
    const mode = cgroupMode();
    const cgroupsPath = `/berth-cgtest-${process.pid}/c`;
    // Make the cgroup as runc's cgroupfs driver would: in every hierarchy.
    const roots =
      mode === 'v2'
        ? ['/sys/fs/cgroup']
        : ['memory', 'cpu', 'cpuacct', 'pids', 'blkio'].map((c) => `/sys/fs/cgroup/${c}`).concat(mode === 'hybrid' ? ['/sys/fs/cgroup/unified'] : []);
    try {
      for (const root of roots) await mkdir(path.join(root, cgroupsPath), { recursive: true });
      const stats = await readCgroupStats(cgroupsPath);
      assert.equal(stats.memory.usage, 0);
      assert.ok(stats.memory.limit > 0);
      assert.equal(stats.pids.current, 0);
      assert.equal(stats.pids.limit, undefined);
      assert.ok(stats.cpu.systemUsageNs > 0);
      assert.ok(stats.cpu.onlineCpus >= 1);
      assert.deepEqual(await listCgroupPids(cgroupsPath), []);
      assert.equal(await detectOomKill(cgroupsPath), false);
    } finally {
      await removeCgroup(cgroupsPath);
      await removeCgroup(cgroupsPath); // idempotent
      await removeCgroup(`/berth-cgtest-${process.pid}`);
    }
    for (const root of roots) await assert.rejects(stat(path.join(root, `/berth-cgtest-${process.pid}`)), /ENOENT/);
    await assert.rejects(readCgroupStats(cgroupsPath), /does not exist/);
  });

  test('removeCgroup refuses the root and climbing paths', async () => {
    for (const p of ['/', '', '/berth/../..']) await assert.rejects(removeCgroup(p), /refusing/);
  });
});
