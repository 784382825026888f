import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isKind } from '../../../src/common/errors.js';
import { DEFAULT_CAPABILITIES } from '../../../src/agent/runtime/capabilities.js';
import type { Mount, Spec } from '../../../src/agent/runtime/oci-types.js';
import { buildOciSpec, DEFAULT_PATH, tmpfsMount, type SpecHostContext } from '../../../src/agent/runtime/spec.js';
import type { ContainerSpecInput } from '../../../src/agent/runtime/types.js';

function baseInput(): ContainerSpecInput {
  return {
    id: 'c1',
    rootfs: '/var/lib/berth/c1/rootfs',
    readonlyRootfs: false,
    hostname: 'c1host',
    process: { args: ['sh', '-c', 'echo hi'], env: [], cwd: '/', user: '', tty: false, openStdin: false, init: false },
    capAdd: [],
    capDrop: [],
    tmpfs: {},
    binds: [],
    resources: {},
    logPath: '/var/lib/berth/c1/log',
  };
}

function baseHost(): SpecHostContext {
  return { cgroupsPath: '/berth/c1', user: { uid: 0, gid: 0, additionalGids: [], home: '/root' } };
}

const mount = (spec: Spec, dest: string): Mount | undefined => spec.mounts.find((m) => m.destination === dest);

interface Case {
  name: string;
  input?: (i: ContainerSpecInput) => void;
  host?: (h: SpecHostContext) => void;
  check: (s: Spec) => void;
}

const cases: Case[] = [
  {
    name: 'defaults: hardened process',
    check: (s) => {
      assert.equal(s.ociVersion, '1.0.2');
      assert.equal(s.process.noNewPrivileges, true);
      assert.equal(s.process.terminal, false);
      assert.deepEqual(s.process.user, { uid: 0, gid: 0 });
      assert.deepEqual(s.process.args, ['sh', '-c', 'echo hi']);
      assert.deepEqual(s.process.capabilities, {
        bounding: [...DEFAULT_CAPABILITIES],
        effective: [...DEFAULT_CAPABILITIES],
        permitted: [...DEFAULT_CAPABILITIES],
      });
      assert.deepEqual(s.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 }]);
      assert.equal(s.process.apparmorProfile, undefined);
      assert.equal(s.process.oomScoreAdj, 0);
      assert.deepEqual(s.root, { path: '/var/lib/berth/c1/rootfs', readonly: false });
      assert.equal(s.hostname, 'c1host');
      assert.equal(s.linux.cgroupsPath, '/berth/c1');
      assert.equal(s.linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
    },
  },
  {
    name: 'defaults: env gets PATH, HOSTNAME and HOME',
    check: (s) => assert.deepEqual(s.process.env, [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=c1host', 'HOME=/root']),
  },
  {
    name: 'env: given PATH/HOME kept, TERM with tty',
    input: (i) => {
      i.process.env = ['PATH=/opt/bin', 'HOME=/data', 'A=1'];
      i.process.tty = true;
    },
    check: (s) => {
      assert.deepEqual(s.process.env, ['HOSTNAME=c1host', 'TERM=xterm', 'PATH=/opt/bin', 'HOME=/data', 'A=1']);
      assert.equal(s.process.terminal, true);
    },
  },
  {
    name: 'defaults: masked and readonly paths',
    check: (s) => {
      assert.deepEqual(s.linux.maskedPaths, [
        '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
        '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
      ]);
      assert.deepEqual(s.linux.readonlyPaths, ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
    },
  },
  {
    name: 'defaults: standard mounts',
    check: (s) => {
      assert.deepEqual(s.mounts.map((m) => m.destination), ['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm']);
      assert.deepEqual(mount(s, '/dev/pts')?.options, ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']);
      assert.ok(mount(s, '/dev/shm')?.options?.includes('size=65536k'));
      assert.ok(mount(s, '/sys')?.options?.includes('ro'));
      assert.equal(mount(s, '/sys/fs/cgroup')?.type, 'cgroup');
      assert.ok(mount(s, '/sys/fs/cgroup')?.options?.includes('ro'));
    },
  },
  {
    name: 'defaults: namespaces with a new network namespace',
    check: (s) => assert.deepEqual(s.linux.namespaces, [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }]),
  },
  {
    name: 'network namespace path and cgroup namespace',
    input: (i) => {
      i.netnsPath = '/run/berth/netns/c1';
    },
    host: (h) => {
      h.cgroupNamespace = true;
    },
    check: (s) => {
      assert.deepEqual(s.linux.namespaces.at(4), { type: 'network', path: '/run/berth/netns/c1' });
      assert.deepEqual(s.linux.namespaces.at(5), { type: 'cgroup' });
    },
  },
  {
    name: 'defaults: device cgroup denies all, allows the pseudo-devices',
    check: (s) => {
      const rules = s.linux.resources?.devices ?? [];
      assert.deepEqual(rules[0], { allow: false, access: 'rwm' });
      const allowed = rules.filter((r) => r.allow && r.access === 'rwm').map((r) => `${r.type} ${r.major}:${r.minor ?? '*'}`);
      assert.deepEqual(allowed, ['c 1:3', 'c 1:5', 'c 1:7', 'c 1:8', 'c 1:9', 'c 5:0', 'c 5:1', 'c 5:2', 'c 136:*']);
      assert.deepEqual(s.linux.devices?.map((d) => d.path), ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty']);
    },
  },
  {
    name: 'defaults: no resource limits',
    check: (s) => assert.deepEqual(Object.keys(s.linux.resources ?? {}), ['devices']),
  },
  {
    name: 'resources mapped, zeros unset',
    input: (i) => {
      i.resources = {
        memory: 64 * 1024 * 1024, memorySwap: 128 * 1024 * 1024, memoryReservation: 0, cpuShares: 512,
        cpuQuota: 50000, cpuPeriod: 100000, cpusetCpus: '0', pidsLimit: 20, blkioWeight: 0,
      };
    },
    check: (s) => {
      const r = s.linux.resources;
      assert.deepEqual(r?.memory, { limit: 67108864, swap: 134217728 });
      assert.deepEqual(r?.cpu, { shares: 512, quota: 50000, period: 100000, cpus: '0' });
      assert.deepEqual(r?.pids, { limit: 20 });
      assert.equal(r?.blockIO, undefined);
    },
  },
  {
    name: 'unlimited swap and pids',
    input: (i) => {
      i.resources = { memory: 1 << 26, memorySwap: -1, pidsLimit: -1, blkioWeight: 300 };
    },
    check: (s) => {
      assert.deepEqual(s.linux.resources?.memory, { limit: 1 << 26, swap: -1 });
      assert.equal(s.linux.resources?.pids, undefined);
      assert.deepEqual(s.linux.resources?.blockIO, { weight: 300 });
    },
  },
  {
    name: 'capabilities adjusted; seccomp follows (SYS_ADMIN allows mount)',
    input: (i) => {
      i.capAdd = ['sys_admin'];
      i.capDrop = ['NET_RAW'];
    },
    check: (s) => {
      const caps = s.process.capabilities?.effective ?? [];
      assert.ok(caps.includes('CAP_SYS_ADMIN'));
      assert.ok(!caps.includes('CAP_NET_RAW'));
      assert.ok(s.linux.seccomp?.syscalls?.[0]?.names.includes('mount'));
    },
  },
  {
    name: 'non-root user: ids and bounding set only',
    host: (h) => {
      h.user = { uid: 1000, gid: 1000, additionalGids: [10, 29], home: '/home/app' };
    },
    check: (s) => {
      assert.deepEqual(s.process.user, { uid: 1000, gid: 1000, additionalGids: [10, 29] });
      assert.deepEqual(s.process.capabilities, { bounding: [...DEFAULT_CAPABILITIES] });
      assert.equal(s.process.env.at(-1), 'HOME=/home/app');
    },
  },
  {
    name: 'readonly rootfs and cwd',
    input: (i) => {
      i.readonlyRootfs = true;
      i.process.cwd = '/work';
    },
    check: (s) => {
      assert.equal(s.root.readonly, true);
      assert.equal(s.process.cwd, '/work');
    },
  },
  {
    name: '--init with an init binary',
    input: (i) => {
      i.process.init = true;
    },
    host: (h) => {
      h.initBinary = '/usr/bin/tini-static';
    },
    check: (s) => {
      assert.deepEqual(s.process.args, ['/sbin/docker-init', '--', 'sh', '-c', 'echo hi']);
      assert.deepEqual(mount(s, '/sbin/docker-init'), {
        destination: '/sbin/docker-init', type: 'bind', source: '/usr/bin/tini-static', options: ['rbind', 'ro', 'rprivate'],
      });
    },
  },
  {
    name: '--init without an init binary is ignored; init binary without --init unused',
    host: (h) => {
      h.initBinary = '/usr/bin/tini-static';
    },
    check: (s) => {
      assert.deepEqual(s.process.args, ['sh', '-c', 'echo hi']);
      assert.equal(mount(s, '/sbin/docker-init'), undefined);
    },
  },
  {
    name: 'tmpfs and binds, sorted parents first, after defaults',
    input: (i) => {
      i.tmpfs = { '/run/sub/deep': '', '/run': 'size=64m,exec' };
      i.binds = [{ source: '/host/hosts', destination: '/etc/hosts', readonly: true }];
    },
    check: (s) => {
      assert.deepEqual(s.mounts.slice(7).map((m) => m.destination), ['/run', '/etc/hosts', '/run/sub/deep']);
      assert.deepEqual(mount(s, '/run')?.options, ['nosuid', 'nodev', 'rprivate', 'size=64m', 'exec']);
      assert.deepEqual(mount(s, '/run/sub/deep')?.options, ['noexec', 'nosuid', 'nodev', 'rprivate']);
      assert.deepEqual(mount(s, '/etc/hosts'), { destination: '/etc/hosts', type: 'bind', source: '/host/hosts', options: ['rbind', 'ro', 'rprivate'] });
    },
  },
  {
    name: 'volume and bind mounts: nosuid,nodev, recursive read-only, propagation, parents first, a user mount replaces Berth\'s own',
    input: (i) => {
      i.binds = [{ source: '/c/hosts', destination: '/etc/hosts', readonly: false }, { source: '/c/hostname', destination: '/etc/hostname', readonly: false }];
      i.mounts = [
        { source: '/v/deep/_data', destination: '/data/deep', readonly: false, propagation: 'rprivate' },
        { source: '/v/top/_data', destination: '/data', readonly: true, propagation: 'rprivate' },
        { source: '/host/hosts', destination: '/etc/hosts', readonly: true, propagation: 'rslave' },
        { source: '/host/flat', destination: '/flat', readonly: true, propagation: '', nonRecursive: true },
      ];
    },
    check: (s) => {
      assert.deepEqual(s.mounts.slice(7).map((m) => m.destination), ['/data', '/flat', '/data/deep', '/etc/hosts', '/etc/hostname']);
      assert.deepEqual(mount(s, '/data'), { destination: '/data', type: 'bind', source: '/v/top/_data', options: ['rbind', 'rro', 'nosuid', 'nodev', 'rprivate'] });
      assert.deepEqual(mount(s, '/data/deep')?.options, ['rbind', 'rw', 'nosuid', 'nodev', 'rprivate']);
      assert.deepEqual(mount(s, '/flat')?.options, ['bind', 'ro', 'nosuid', 'nodev', 'rprivate']);
      const hosts = s.mounts.filter((m) => m.destination === '/etc/hosts');
      assert.deepEqual(hosts, [{ destination: '/etc/hosts', type: 'bind', source: '/host/hosts', options: ['rbind', 'rro', 'nosuid', 'nodev', 'rslave'] }]);
    },
  },
  {
    name: 'read-only mounts fall back to plain ro where recursive read-only is unavailable',
    input: (i) => {
      i.mounts = [{ source: '/v/_data', destination: '/data', readonly: true, propagation: 'rprivate' }];
    },
    host: (h) => {
      h.recursiveReadonly = false;
    },
    check: (s) => assert.deepEqual(mount(s, '/data')?.options, ['rbind', 'ro', 'nosuid', 'nodev', 'rprivate']),
  },
  {
    name: 'a user tmpfs at /dev/shm replaces the default one',
    input: (i) => {
      i.tmpfs = { '/dev/shm': 'size=1g' };
    },
    check: (s) => {
      const shm = s.mounts.filter((m) => m.destination === '/dev/shm');
      assert.equal(shm.length, 1);
      assert.deepEqual(shm[0]?.options, ['noexec', 'nosuid', 'nodev', 'rprivate', 'size=1g']);
    },
  },
  {
    name: 'sysctls and domainname',
    input: (i) => {
      i.domainname = 'example.org';
      i.sysctls = { 'net.ipv4.ip_forward': '1' };
    },
    check: (s) => assert.deepEqual(s.linux.sysctl, { 'kernel.domainname': 'example.org', 'net.ipv4.ip_forward': '1' }),
  },
];

describe('buildOciSpec', () => {
  for (const c of cases) {
    test(c.name, () => {
      const input = baseInput();
      const host = baseHost();
      c.input?.(input);
      c.host?.(host);
      c.check(buildOciSpec(input, host));
    });
  }

  test('is pure: same input, same JSON, input untouched', () => {
    const input = baseInput();
    const before = JSON.stringify(input);
    assert.equal(JSON.stringify(buildOciSpec(input, baseHost())), JSON.stringify(buildOciSpec(input, baseHost())));
    assert.equal(JSON.stringify(input), before);
  });

  const errors: { name: string; input: (i: ContainerSpecInput) => void; message: string }[] = [
    { name: 'bad capability', input: (i) => void (i.capAdd = ['NOPE']), message: 'unknown capability: "CAP_NOPE"' },
    { name: 'bad tmpfs option', input: (i) => void (i.tmpfs = { '/x': 'foo' }), message: 'Invalid tmpfs option ["foo"]' },
    { name: 'bad tmpfs data key', input: (i) => void (i.tmpfs = { '/x': 'color=red' }), message: 'Invalid tmpfs option ["color" "red"]' },
    {
      name: 'relative tmpfs path',
      input: (i) => void (i.tmpfs = { x: '' }),
      message: `invalid mount config for type "tmpfs": invalid mount path: 'x' mount path must be absolute`,
    },
  ];
  for (const e of errors) {
    test(`rejects: ${e.name}`, () => {
      const input = baseInput();
      e.input(input);
      assert.throws(() => buildOciSpec(input, baseHost()), (err: unknown) => isKind(err, 'InvalidArgument') && (err as Error).message === e.message);
    });
  }
});

describe('tmpfsMount', () => {
  const cases: { name: string; opts: string; want: string[] }[] = [
    { name: 'defaults', opts: '', want: ['noexec', 'nosuid', 'nodev', 'rprivate'] },
    { name: 'exec overrides noexec', opts: 'exec', want: ['nosuid', 'nodev', 'rprivate', 'exec'] },
    { name: 'later size wins', opts: 'size=1m,mode=1777,size=2m', want: ['noexec', 'nosuid', 'nodev', 'rprivate', 'mode=1777', 'size=2m'] },
    { name: 'ro and propagation', opts: 'ro,rshared', want: ['noexec', 'nosuid', 'nodev', 'ro', 'rshared'] },
  ];
  for (const c of cases) test(c.name, () => assert.deepEqual(tmpfsMount('/t', c.opts).options, c.want));
});
