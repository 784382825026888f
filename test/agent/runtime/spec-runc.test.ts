/**
 * Proof that a spec from buildOciSpec runs under the real runc with its hardening in force:
 * a busybox rootfs, two containers (a non-root user, then root with adjusted capabilities and
 * limits), checked from inside (/proc/self/status, mount, /proc/kcore, fork) and from the host
 * (cgroup files through cgroups.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { capabilityMask, DEFAULT_CAPABILITIES, effectiveCapabilities } from '../../../src/agent/runtime/capabilities.js';
import { listCgroupPids, readCgroupStats, removeCgroup } from '../../../src/agent/runtime/cgroups.js';
import { buildOciSpec, MASKED_PATHS } from '../../../src/agent/runtime/spec.js';
import type { ContainerSpecInput } from '../../../src/agent/runtime/types.js';
import { resolveUser } from '../../../src/agent/runtime/user.js';

const run = promisify(execFile);
/** Debian's tini package (in scripts/install.sh). */
const INIT_BINARY = '/usr/bin/tini-static';

const APPLETS = ['sh', 'cat', 'id', 'grep', 'mount', 'wc', 'sleep', 'ls', 'head', 'seq', 'stat', 'unshare'];

async function makeBusyboxRootfs(rootfs: string): Promise<void> {
  for (const dir of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'mnt']) await mkdir(path.join(rootfs, dir), { recursive: true });
  await copyFile('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  for (const applet of APPLETS) await symlink('busybox', path.join(rootfs, 'bin', applet));
  await writeFile(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  await writeFile(path.join(rootfs, 'etc', 'group'), 'root:x:0:\nwheel:x:10:app\napp:x:1000:\n');
}

async function ownNofileHardLimit(): Promise<number> {
  const limits = await readFile('/proc/self/limits', 'utf8');
  const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(limits)?.[1];
  return hard === undefined || hard === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(hard);
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `runc run` with stdio on pipes. Each time the container prints a line naming a key of
 * `pauses` (the script then waits in `read`), that host-side step runs and a line written to
 * the container's stdin lets the script go on.
 */
function runcRun(runcRoot: string, bundle: string, id: string, pauses: Record<string, () => Promise<void>> = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('runc', ['--root', runcRoot, 'run', '-b', bundle, id], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const handled = new Set<string>();
    let stepError: unknown;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      for (const [marker, step] of Object.entries(pauses)) {
        if (handled.has(marker) || !stdout.includes(`${marker}\n`)) continue;
        handled.add(marker);
        step()
          .catch((err: unknown) => {
            stepError ??= err;
          })
          .finally(() => child.stdin.write('go\n'));
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined); // the container may exit before reading
    child.on('error', reject);
    child.on('close', (code) => (stepError ? reject(stepError) : resolve({ code, stdout, stderr })));
  });
}

function baseInput(id: string, rootfs: string, user: string, script: string): ContainerSpecInput {
  return {
    id,
    rootfs,
    readonlyRootfs: false,
    hostname: id.slice(0, 12),
    process: { args: ['sh', '-c', script], env: [], cwd: '/', user, tty: false, openStdin: true, init: false },
    capAdd: [],
    capDrop: [],
    tmpfs: {},
    binds: [],
    resources: {},
    logPath: '/dev/null',
  };
}

const statusField = (out: string, field: string): string | undefined => new RegExp(`^${field}:\\s*(\\S+)`, 'm').exec(out)?.[1];

test('a built spec runs under runc with its hardening in force', { timeout: 60_000 }, async (t) => {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'berth-spec-runc-'));
  const runcRoot = path.join(tmp, 'runc');
  const rootfs = path.join(tmp, 'rootfs');
  const cgroupParent = `/berth-spectest-${process.pid}`;
  const ids: string[] = [];
  try {
    await makeBusyboxRootfs(rootfs);

    const write = async (
      input: ContainerSpecInput,
      limits?: ContainerSpecInput['resources'],
      initBinary?: string,
    ): Promise<{ bundle: string; cgroupsPath: string }> => {
      const bundle = path.join(tmp, `bundle-${input.id}`);
      await mkdir(bundle);
      const cgroupsPath = `${cgroupParent}/${input.id}`;
      if (limits) input.resources = limits;
      const spec = buildOciSpec(input, { cgroupsPath, user: await resolveUser(rootfs, input.process.user), initBinary });
      // This sandbox lacks CAP_SYS_RESOURCE and caps its own RLIMIT_NOFILE below Docker's
      // 1048576; runc cannot raise a limit above its own, so the test lowers it as the runtime does.
      const hard = await ownNofileHardLimit();
      for (const l of spec.process.rlimits ?? []) if (l.type === 'RLIMIT_NOFILE' && l.hard > hard) l.hard = l.soft = hard;
      await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
      ids.push(input.id);
      return { bundle, cgroupsPath };
    };

    await t.test('non-root user with --init: resolved ids, no effective capabilities, default bounding set, tini as PID 1', async () => {
      const input = baseInput(
        `spectest-user-${process.pid}`,
        rootfs,
        'app',
        'id; cat /proc/self/status; echo HOME=$HOME; echo "pid1=$(head -c 17 /proc/1/cmdline)"',
      );
      input.process.init = true;
      const { bundle } = await write(input, undefined, INIT_BINARY);
      const r = await runcRun(runcRoot, bundle, input.id);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /^uid=1000\(app\) gid=1000\(app\) groups=10\(wheel\)/m);
      assert.equal(statusField(r.stdout, 'CapEff'), '0000000000000000');
      assert.equal(statusField(r.stdout, 'CapBnd'), capabilityMask(DEFAULT_CAPABILITIES));
      assert.equal(statusField(r.stdout, 'NoNewPrivs'), '1');
      assert.equal(statusField(r.stdout, 'Seccomp'), '2');
      assert.match(r.stdout, /^HOME=\/home\/app$/m);
      assert.match(r.stdout, /^pid1=\/sbin\/docker-init$/m, '--init runs tini as PID 1');
    });

    await t.test('root: exact capabilities, mount and user namespaces refused, /proc paths masked, memory and pids limits', async () => {
      const script = [
        'grep -E "^Cap(Eff|Bnd)" /proc/self/status',
        'mount -t tmpfs none /mnt 2>&1; echo "mount-exit=$?"',
        // A user namespace needs no capability on this host: only seccomp can refuse it.
        'unshare -U true 2>&1; echo "unshare-exit=$?"',
        // A masked file is /dev/null (char 1:3), a masked directory an empty read-only tmpfs.
        `for p in ${MASKED_PATHS.join(' ')}; do`,
        '  if [ -d $p ]; then echo "masked $p entries=$(ls -A $p | wc -l)"; elif [ -e $p ]; then echo "masked $p dev=$(stat -c %t:%T $p)"; fi',
        'done',
        'echo READY; read line',
        // 20 background sleeps against a limit of 10 pids. A failed fork ends a non-interactive
        // busybox sh, so the loop runs in a child shell; its sleeps outlive it.
        `sh -c 'for i in $(seq 20); do sleep 30 & done' 2>&1`,
        'echo FORKED; read line',
      ].join('\n');
      const input = baseInput(`spectest-root-${process.pid}`, rootfs, '', script);
      input.capAdd = ['net_admin'];
      input.capDrop = ['CAP_NET_RAW', 'mknod'];
      const memory = 64 * 1024 * 1024;
      const { bundle, cgroupsPath } = await write(input, { memory, pidsLimit: 10 });

      let statsAtReady: Awaited<ReturnType<typeof readCgroupStats>> | undefined;
      let pidsAtReady: number[] = [];
      let pidsAfterFork: number | undefined;
      const r = await runcRun(runcRoot, bundle, input.id, {
        READY: async () => {
          statsAtReady = await readCgroupStats(cgroupsPath);
          pidsAtReady = await listCgroupPids(cgroupsPath);
        },
        FORKED: async () => {
          pidsAfterFork = (await readCgroupStats(cgroupsPath)).pids.current;
        },
      });

      assert.equal(r.code, 0, r.stderr + r.stdout);
      const want = effectiveCapabilities(['net_admin'], ['CAP_NET_RAW', 'mknod']);
      assert.equal(statusField(r.stdout, 'CapEff'), capabilityMask(want));
      assert.equal(statusField(r.stdout, 'CapBnd'), capabilityMask(want));
      assert.match(r.stdout, /mount: permission denied/);
      assert.match(r.stdout, /^mount-exit=[1-9]/m);
      assert.match(r.stdout, /unshare\(0x10000000\): Operation not permitted/);
      assert.match(r.stdout, /^unshare-exit=[1-9]/m);
      // Not every kernel has every path (this one may lack /proc/kcore): expect those the host has.
      const present = [];
      for (const p of MASKED_PATHS) {
        const st = await stat(p).catch(() => undefined);
        if (st) present.push(`masked ${p} ${st.isDirectory() ? 'entries=0' : 'dev=1:3'}`);
      }
      assert.ok(present.length >= 2, 'the host has masked paths to check');
      assert.deepEqual(r.stdout.split('\n').filter((l) => l.startsWith('masked ')), present);

      assert.ok(statsAtReady, 'host read the cgroup while the container ran');
      assert.equal(statsAtReady.memory.limit, memory);
      assert.equal(statsAtReady.pids.limit, 10);
      assert.ok(statsAtReady.pids.current >= 1);
      assert.ok(statsAtReady.memory.usage > 0);
      assert.ok(pidsAtReady.length >= 1);

      assert.match(r.stdout + r.stderr, /can.t fork/);
      assert.match(r.stdout, /FORKED/);
      // The child shell forked until pids.current hit 10, then died: the main shell and the
      // sleeps it started remain.
      assert.ok(pidsAfterFork !== undefined && pidsAfterFork >= 9 && pidsAfterFork <= 10, `pids.current ${pidsAfterFork}`);
    });
  } finally {
    for (const id of ids) {
      await run('runc', ['--root', runcRoot, 'kill', id, 'KILL']).catch(() => undefined);
      await run('runc', ['--root', runcRoot, 'delete', '--force', id]).catch(() => undefined);
      await removeCgroup(`${cgroupParent}/${id}`).catch(() => undefined);
    }
    await removeCgroup(cgroupParent).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
  }
});
