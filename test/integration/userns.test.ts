/**
 * User-namespace ID ranges (issue 5, "Isolation on the host"), through tenants' docker CLIs
 * over mutual TLS: root in a tenant's container is the first uid of the tenant's range on the
 * host, different for every tenant; the operator's containers stay host root. Files a
 * tenant's root makes in volumes are the shifted uid's on the host, while what leaves the
 * container as an image (commit, build) or an archive (cp) carries the ids the image sees.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tar from 'tar-stream';
import { DOCKER_CLI, docker, dockerOk } from '../support/docker-cli.js';
import { readTar, saveArchiveLayers } from '../support/tar-files.js';
import { freePort, startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar, seededVolumeImageTar } from '../support/test-images.js';

/** Uid, gid lines of /proc/PID/status: [real, effective, saved, fs]. */
async function hostIds(pid: number): Promise<{ uid: number[]; gid: number[] }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number[] => (new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)?.[1] ?? '').trim().split(/\s+/).map(Number);
  return { uid: field('Uid'), gid: field('Gid') };
}

/**
 * The host pid of a process that has pid `nsPid` in the pid namespace of the container whose
 * init is host pid `initPid` (NSpid's last field is the innermost).
 */
async function hostPidOf(initPid: number, nsPid: number): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  const initNs = await import('node:fs/promises').then((fs) => fs.readlink(`/proc/${initPid}/ns/pid`));
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ns = await import('node:fs/promises').then((fs) => fs.readlink(`/proc/${entry}/ns/pid`));
      if (ns !== initNs) continue;
      const status = await readFile(`/proc/${entry}/status`, 'utf8');
      const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
      if (nspid && Number(nspid[nspid.length - 1]) === nsPid) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no process ${nsPid} in the pid namespace of ${initPid}`);
}

/** Runs the docker CLI with its stdout going to `file` (binary output, e.g. a tar). */
async function dockerToFile(env: NodeJS.ProcessEnv, args: string[], file: string): Promise<void> {
  const child = spawn(DOCKER_CLI, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const written = new Promise<void>((resolve, reject) => child.stdout.pipe(createWriteStream(file)).on('finish', resolve).on('error', reject));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  await written;
  assert.equal(code, 0, `docker ${args.join(' ')}: ${stderr}`);
}

/** Members of a tar file (names, owners). */
async function tarMembers(file: string): Promise<{ name: string; uid: number; gid: number; type: string }[]> {
  return (await readTar(file, () => false)).map(({ header: h }) => ({ name: h.name, uid: h.uid ?? -1, gid: h.gid ?? -1, type: h.type ?? '' }));
}

/** The security.capability PAX record of `name` in any layer of a `docker save` tarball. */
async function capabilityOf(saveTar: string, name: string): Promise<Buffer | undefined> {
  let found: Buffer | undefined;
  for (const { header } of (await saveArchiveLayers(saveTar)).flat()) {
    const value = (header.pax as Record<string, string> | undefined)?.['SCHILY.xattr.security.capability'];
    if (header.name === name && value !== undefined) found = Buffer.from(value, 'latin1');
  }
  return found;
}

/** Every member of every layer of a `docker save` tarball: name, uid, gid, by layer. */
async function layerMembers(saveTar: string): Promise<{ name: string; uid: number; gid: number }[][]> {
  return (await saveArchiveLayers(saveTar)).map((members) => members.map(({ header: h }) => ({ name: h.name, uid: h.uid ?? -1, gid: h.gid ?? -1 })));
}

describe('user-namespace ID ranges of tenants', () => {
  let t: TenantBerth;
  let acme: NodeJS.ProcessEnv;
  let umbrella: NodeJS.ProcessEnv;
  let acmeBase: number;
  let umbrellaBase: number;
  let work: string;

  const rangeOf = async (name: string): Promise<{ Base: number; Size: number }> =>
    (JSON.parse(await t.berthOk(['tenant', 'inspect', name])) as { UsernsRange: { Base: number; Size: number } }).UsernsRange;

  before(async () => {
    t = await startTenantBerth();
    work = await mkdtemp(join(tmpdir(), 'berth-userns-'));
    acme = await t.createTenant('acme');
    umbrella = await t.createTenant('umbrella');
    const image = await busyboxImageTar();
    for (const env of [acme, umbrella, t.berth.env]) await dockerOk(env, ['load', '-i', image]);
    await dockerOk(acme, ['load', '-i', await seededVolumeImageTar()]);
    acmeBase = (await rangeOf('acme')).Base;
    umbrellaBase = (await rangeOf('umbrella')).Base;
  });
  after(async () => {
    await t?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('tenants get disjoint ranges of 65536 ids above the base', async () => {
    const a = await rangeOf('acme');
    const u = await rangeOf('umbrella');
    assert.equal(a.Size, 65536);
    assert.equal(u.Size, 65536);
    assert.ok(a.Base >= 2 ** 20, `acme's base ${a.Base} is above 2^20`);
    assert.ok(a.Base + a.Size <= u.Base || u.Base + u.Size <= a.Base, 'ranges do not overlap');
  });

  test('root in a tenant container is 0 inside and the tenant base uid on the host', async () => {
    const pids: Record<string, number> = {};
    for (const [who, env] of [['acme', acme], ['umbrella', umbrella], ['operator', t.berth.env]] as const) {
      const id = (await dockerOk(env, ['run', '-d', BUSYBOX_IMAGE, 'sleep', '60'])).trim();
      assert.equal(await dockerOk(env, ['exec', id, 'id', '-u']), '0\n', `${who}: id -u inside`);
      pids[who] = Number((await dockerOk(env, ['inspect', '-f', '{{.State.Pid}}', id])).trim());
      // An exec'd process is shifted as well.
      const execPid = Number((await dockerOk(env, ['exec', id, 'sh', '-c', 'echo $$; cat /proc/self/uid_map >&2'])).trim());
      assert.ok(execPid > 0);
    }
    const acmeIds = await hostIds(pids.acme!);
    const umbrellaIds = await hostIds(pids.umbrella!);
    const operatorIds = await hostIds(pids.operator!);
    assert.deepEqual(acmeIds.uid, [acmeBase, acmeBase, acmeBase, acmeBase]);
    assert.deepEqual(acmeIds.gid, [acmeBase, acmeBase, acmeBase, acmeBase]);
    assert.deepEqual(umbrellaIds.uid, [umbrellaBase, umbrellaBase, umbrellaBase, umbrellaBase]);
    assert.notEqual(acmeBase, umbrellaBase);
    // The operator's containers run as dockerd's do without --userns-remap.
    assert.deepEqual(operatorIds.uid, [0, 0, 0, 0]);
    for (const env of [acme, umbrella, t.berth.env]) {
      const ids = (await dockerOk(env, ['ps', '-q'])).trim().split('\n').filter(Boolean);
      await dockerOk(env, ['rm', '-f', ...ids]);
    }
  });

  test('files a tenant root makes in a volume are the shifted uid\'s on the host; copy-up keeps image owners shifted', async () => {
    await dockerOk(acme, ['run', '--rm', '-v', 'acme-data:/d', BUSYBOX_IMAGE, 'sh', '-c', 'echo hi > /d/by-root && mkdir /d/sub && chown 1234:2345 /d/sub']);
    const mountpoint = (await dockerOk(acme, ['volume', 'inspect', '-f', '{{.Mountpoint}}', 'acme-data'])).trim();
    const root = await lstat(mountpoint);
    assert.deepEqual([root.uid, root.gid], [acmeBase, acmeBase], 'the fresh volume is root\'s of the range');
    const file = await lstat(join(mountpoint, 'by-root'));
    assert.deepEqual([file.uid, file.gid], [acmeBase, acmeBase]);
    const sub = await lstat(join(mountpoint, 'sub'));
    assert.deepEqual([sub.uid, sub.gid], [acmeBase + 1234, acmeBase + 2345]);
    // Inside, the same files have the container's owners.
    assert.equal(await dockerOk(acme, ['run', '--rm', '-v', 'acme-data:/d', BUSYBOX_IMAGE, 'stat', '-c', '%u:%g', '/d/by-root', '/d/sub']), '0:0\n1234:2345\n');
    // An image's VOLUME content is copied up with its owners (1000:1000 in the image).
    await dockerOk(acme, ['run', '--rm', '-v', 'acme-seeded:/data', 'berth-test/seeded:latest', 'true']);
    const seeded = (await dockerOk(acme, ['volume', 'inspect', '-f', '{{.Mountpoint}}', 'acme-seeded'])).trim();
    const seed = await lstat(join(seeded, 'seed'));
    assert.equal(seed.uid, acmeBase + 1000);
    assert.equal(await dockerOk(acme, ['run', '--rm', '-v', 'acme-seeded:/data', BUSYBOX_IMAGE, 'stat', '-c', '%u', '/data/seed']), '1000\n');
    await dockerOk(acme, ['volume', 'rm', 'acme-data', 'acme-seeded']);
  });

  test('root in a tenant container cannot do what only host root could', async () => {
    await dockerOk(acme, ['volume', 'create', 'acme-probe']);
    const mountpoint = (await dockerOk(acme, ['volume', 'inspect', '-f', '{{.Mountpoint}}', 'acme-probe'])).trim();
    // A host-root-owned file the container sees (planted by the host in its volume).
    await writeFile(join(mountpoint, 'host-secret'), 'secret\n', { mode: 0o600 });
    await chown(join(mountpoint, 'host-secret'), 0, 0);
    await chmod(join(mountpoint, 'host-secret'), 0o600);
    const read = await docker(acme, ['run', '--rm', '-v', 'acme-probe:/d', BUSYBOX_IMAGE, 'sh', '-c', 'stat -c %u /d/host-secret; cat /d/host-secret']);
    assert.notEqual(read.code, 0);
    assert.match(read.stdout, /^65534\n/, 'host root shows as nobody inside');
    assert.match(read.stderr, /Permission denied/);
    const write = await docker(acme, ['run', '--rm', '-v', 'acme-probe:/d', BUSYBOX_IMAGE, 'sh', '-c', 'echo x >> /d/host-secret']);
    assert.notEqual(write.code, 0);
    assert.match(write.stderr, /Permission denied/);
    assert.equal(await readFile(join(mountpoint, 'host-secret'), 'utf8'), 'secret\n');
    // The operator's root (host root) can, as under dockerd.
    assert.equal(await dockerOk(t.berth.env, ['run', '--rm', '--mount', `type=bind,source=${mountpoint},target=/d`, BUSYBOX_IMAGE, 'cat', '/d/host-secret']), 'secret\n');
    // Capabilities are the container's own user namespace's: its root cannot chown a file to
    // an id outside the range, nor use the host's ids.
    const chownOut = await docker(acme, ['run', '--rm', BUSYBOX_IMAGE, 'sh', '-c', 'touch /f && chown 70000 /f']);
    assert.notEqual(chownOut.code, 0);
    assert.match(chownOut.stderr, /Invalid argument|Operation not permitted/);
    await dockerOk(acme, ['volume', 'rm', 'acme-probe']);
  });

  test('root in a tenant container binds port 80 and serves it through a published port', async () => {
    const port = await freePort();
    const id = (await dockerOk(acme, ['run', '-d', '-p', `127.0.0.1:${port}:80`, BUSYBOX_IMAGE, 'sh', '-c', 'while true; do echo hello-80 | nc -l -p 80; done'])).trim();
    try {
      let text = '';
      for (let i = 0; i < 50 && !text.includes('hello-80'); i++) {
        text = await new Promise<string>((resolve) => {
          const socket = connect(port, '127.0.0.1');
          let got = '';
          socket.on('data', (d: Buffer) => (got += d.toString()));
          socket.on('close', () => resolve(got));
          socket.on('error', () => resolve(''));
          socket.setTimeout(2000, () => socket.destroy());
        });
        if (!text.includes('hello-80')) await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(text, /hello-80/);
      // sysfs is the container's own network's.
      assert.match(await dockerOk(acme, ['exec', id, 'ls', '/sys/class/net']), /eth0/);
    } finally {
      await dockerOk(acme, ['rm', '-f', id]);
    }
  });

  test('docker cp in and out and export carry the container\'s owners; the host stores them shifted', async () => {
    const id = (await dockerOk(acme, ['run', '-d', BUSYBOX_IMAGE, 'sh', '-c', 'echo inside > /made-inside && chown 33:33 /made-inside && echo s > /private && chown 1000 /private && chmod 600 /private && sleep 60'])).trim();
    try {
      for (let i = 0; i < 50; i++) {
        if ((await docker(acme, ['exec', id, 'test', '-f', '/private'])).code === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // Out: the raw archive (`docker cp ... -` passes the API's tar through).
      const out = join(work, 'out.tar');
      await dockerToFile(acme, ['cp', `${id}:/made-inside`, '-'], out);
      const members = (await tarMembers(out)).map(({ name, uid, gid }) => ({ name, uid, gid }));
      assert.deepEqual(members, [{ name: 'made-inside', uid: 33, gid: 33 }]);
      // In: a file owned 0 and one owned 1000 in the tar land as those owners inside.
      const src = join(work, 'cp-src');
      await rm(src, { recursive: true, force: true });
      await mkdir(src);
      await writeFile(join(src, 'from-host'), 'x');
      await chown(join(src, 'from-host'), 1000, 1000);
      await dockerOk(acme, ['cp', join(src, 'from-host'), `${id}:/from-host`]);
      // -a: owned by the container's user (root), as dockerd's copyUIDGID does.
      await dockerOk(acme, ['cp', '-a', join(src, 'from-host'), `${id}:/from-host-a`]);
      assert.equal(await dockerOk(acme, ['exec', id, 'stat', '-c', '%u:%g', '/from-host', '/from-host-a']), '1000:1000\n0:0\n');
      const upperA = await lstat(join(t.berth.dataRoot, 'containers', id, 'upper', 'from-host-a'));
      assert.deepEqual([upperA.uid, upperA.gid], [acmeBase, acmeBase]);
      const upper = await lstat(join(t.berth.dataRoot, 'containers', id, 'upper', 'from-host'));
      assert.deepEqual([upper.uid, upper.gid], [acmeBase + 1000, acmeBase + 1000]);
      // An owner the range cannot hold is refused, and nothing of that entry is made.
      const big = tar.pack();
      big.entry({ name: 'too-big', mode: 0o644, uid: 70000, gid: 0 }, 'x');
      big.finalize();
      const chunks: Buffer[] = [];
      for await (const chunk of big as unknown as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
      const refused = await docker(acme, ['cp', '-', `${id}:/`], { input: Buffer.concat(chunks) });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /owner id 70000 cannot be mapped into the container's user namespace/);
      assert.notEqual((await docker(acme, ['exec', id, 'test', '-e', '/too-big'])).code, 0);
      // export: the container's owners as well.
      const exportTar = join(work, 'export.tar');
      await dockerOk(acme, ['export', '-o', exportTar, id]);
      const exported = new Map((await tarMembers(exportTar)).map((m) => [m.name, m.uid]));
      assert.equal(exported.get('made-inside'), 33);
      assert.equal(exported.get('private'), 1000, 'a file only its owner may read is exported too');
      assert.equal(exported.get('from-host'), 1000);
      assert.equal(exported.get('bin/busybox'), 0);
    } finally {
      await dockerOk(acme, ['rm', '-f', id]);
    }
  });

  test('a tenant\'s build and commit store layers with the image\'s owners (uid 0), not the host\'s', async () => {
    const context = join(work, 'build-context');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nRUN echo built > /built && mkdir /owned && chown 7:8 /owned\n`);
    await dockerOk(acme, ['build', '-t', 'acme-built', context], { timeoutMs: 120_000 });
    const built = join(work, 'built.tar');
    await dockerOk(acme, ['save', '-o', built, 'acme-built']);
    const builtMembers = (await layerMembers(built)).flat();
    assert.deepEqual(builtMembers.find((m) => m.name === 'built'), { name: 'built', uid: 0, gid: 0 });
    assert.deepEqual(builtMembers.find((m) => m.name === 'owned/'), { name: 'owned/', uid: 7, gid: 8 });
    assert.ok(builtMembers.every((m) => m.uid < 65536 && m.gid < 65536), 'no host uid in any layer');
    // The built image runs with those owners in another tenant's... own container of acme.
    assert.equal(await dockerOk(acme, ['run', '--rm', 'acme-built', 'stat', '-c', '%u:%g', '/built', '/owned']), '0:0\n7:8\n');

    const id = (await dockerOk(acme, ['run', '-d', BUSYBOX_IMAGE, 'sh', '-c', 'echo c > /committed && chown 5:6 /committed && sleep 60'])).trim();
    try {
      for (let i = 0; i < 50; i++) {
        if ((await docker(acme, ['exec', id, 'test', '-f', '/committed'])).code === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 200));
      await dockerOk(acme, ['commit', id, 'acme-committed']);
    } finally {
      await dockerOk(acme, ['rm', '-f', id]);
    }
    const committed = join(work, 'committed.tar');
    await dockerOk(acme, ['save', '-o', committed, 'acme-committed']);
    const committedMembers = (await layerMembers(committed)).flat();
    assert.deepEqual(committedMembers.find((m) => m.name === 'committed'), { name: 'committed', uid: 5, gid: 6 });
    assert.ok(committedMembers.every((m) => m.uid < 65536 && m.gid < 65536), 'no host uid in any layer');
    // Loaded by another tenant, the layer shows the same owners in its containers.
    await dockerOk(umbrella, ['load', '-i', committed]);
    assert.equal(await dockerOk(umbrella, ['run', '--rm', 'acme-committed', 'stat', '-c', '%u:%g', '/committed']), '5:6\n');
  });

  test('other run modes work in a tenant\'s user namespace', async () => {
    // No network: runc makes the network namespace inside the user namespace.
    assert.equal(await dockerOk(acme, ['run', '--rm', '--network', 'none', BUSYBOX_IMAGE, 'sh', '-c', 'id -u; ls /sys/class/net']), '0\nlo\n');
    // --init, --read-only, a tmpfs and /dev/shm owned by the container's root, another user.
    assert.equal(
      await dockerOk(acme, ['run', '--rm', '--init', '--read-only', '--tmpfs', '/scratch', BUSYBOX_IMAGE, 'sh', '-c', 'stat -c %u /scratch /dev/shm && touch /scratch/ok /dev/shm/ok && ! touch /nope 2>/dev/null && echo done']),
      '0\n0\ndone\n',
    );
    assert.equal(await dockerOk(acme, ['run', '--rm', '-u', '1000:1000', BUSYBOX_IMAGE, 'id']), 'uid=1000 gid=1000 groups=1000\n');
    // Sharing another container's network namespace (owned by that container's user namespace).
    const server = (await dockerOk(acme, ['run', '-d', BUSYBOX_IMAGE, 'sh', '-c', 'while true; do echo shared | nc -l -p 8080; done'])).trim();
    try {
      const pid = Number((await dockerOk(acme, ['inspect', '-f', '{{.State.Pid}}', server])).trim());
      const joined = await docker(acme, ['run', '--rm', '--network', `container:${server}`, BUSYBOX_IMAGE, 'sh', '-c', 'nc 127.0.0.1 8080 </dev/null']);
      assert.equal(joined.code, 0, joined.stderr);
      assert.equal(joined.stdout, 'shared\n');
      // exec as another user is shifted as well.
      const execUid = await dockerOk(acme, ['exec', '-u', '1000', server, 'sh', '-c', 'sleep 5 & echo $!']);
      const execIds = await hostIds(Number(execUid.trim()) > 0 ? await hostPidOf(pid, Number(execUid.trim())) : 0);
      assert.equal(execIds.uid[0], acmeBase + 1000);
    } finally {
      await dockerOk(acme, ['rm', '-f', server]);
    }
  });

  test('a SIGKILL of Berth keeps ranges and running tenant containers; a restart mounts them shifted again', async () => {
    const id = (await dockerOk(acme, ['run', '-d', '-v', 'acme-keep:/d', BUSYBOX_IMAGE, 'sh', '-c', 'echo kept > /d/f; touch /in-upper; sleep 300'])).trim();
    for (let i = 0; i < 50; i++) {
      if ((await docker(acme, ['exec', id, 'test', '-f', '/in-upper'])).code === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const pid = Number((await dockerOk(acme, ['inspect', '-f', '{{.State.Pid}}', id])).trim());
    await t.berth.kill();
    // A user namespace pinned for a container that is gone (a crash mid-remove): reconcile drops it.
    const orphan = join(t.berth.execRoot, 'netns', `${'e'.repeat(64)}.userns`);
    await writeFile(orphan, '');
    await new Promise<void>((resolve, reject) => spawn('mount', ['--bind', `/proc/${pid}/ns/user`, orphan], { stdio: 'ignore' }).on('close', (c) => (c === 0 ? resolve() : reject(new Error(`mount ${c}`)))));
    await t.berth.restart();
    assert.equal(await lstat(orphan).then(() => 'still there', () => 'gone'), 'gone');
    assert.ok(!(await readFile('/proc/self/mountinfo', 'utf8')).includes(orphan), 'unmounted');
    assert.equal((await rangeOf('acme')).Base, acmeBase, 'the range is durable');
    assert.equal((await rangeOf('umbrella')).Base, umbrellaBase);
    assert.equal((await hostIds(pid)).uid[0], acmeBase, 'the container ran on');
    assert.equal(await dockerOk(acme, ['exec', id, 'id', '-u']), '0\n');
    // Stopped, unmounted and started again: the overlay is made shifted from the stored range.
    await dockerOk(acme, ['stop', '-t', '1', id]);
    // As after a reboot: the overlay is gone and must be made again.
    const merged = join(t.berth.dataRoot, 'containers', id, 'merged');
    await new Promise<void>((resolve, reject) => spawn('umount', [merged], { stdio: 'ignore' }).on('close', (c) => (c === 0 ? resolve() : reject(new Error(`umount ${c}`)))));
    await dockerOk(acme, ['start', id]);
    const again = Number((await dockerOk(acme, ['inspect', '-f', '{{.State.Pid}}', id])).trim());
    assert.equal((await hostIds(again)).uid[0], acmeBase);
    assert.equal(await dockerOk(acme, ['exec', id, 'stat', '-c', '%u', '/in-upper', '/bin/busybox']), '0\n0\n');
    // A new tenant after the restart gets a fresh range above both.
    const newcomer = await t.createTenant('newcomer');
    const n = await rangeOf('newcomer');
    assert.ok(n.Base >= Math.max(acmeBase, umbrellaBase) + 65536);
    assert.ok(newcomer);
    await dockerOk(acme, ['rm', '-f', id]);
    await dockerOk(acme, ['volume', 'rm', 'acme-keep']);
  });

  test('a removed tenant\'s range is never handed out again', async () => {
    await t.createTenant('shortlived');
    const gone = await rangeOf('shortlived');
    await t.berthOk(['tenant', 'rm', 'shortlived']);
    await t.createTenant('successor');
    const next = await rangeOf('successor');
    assert.ok(next.Base >= gone.Base + gone.Size, `successor ${next.Base} is above the removed ${gone.Base}`);
  });

  test('a host namespace the operator allowed a tenant runs without a user namespace, as dockerd needs --userns=host', async () => {
    await t.berthOk(['tenant', 'policy', 'umbrella', '--allow', 'host-namespaces']);
    try {
      const id = (await dockerOk(umbrella, ['run', '-d', '--network', 'host', BUSYBOX_IMAGE, 'sleep', '60'])).trim();
      const pid = Number((await dockerOk(umbrella, ['inspect', '-f', '{{.State.Pid}}', id])).trim());
      assert.equal((await hostIds(pid)).uid[0], 0);
      await dockerOk(umbrella, ['rm', '-f', id]);
      // Without one, the same tenant's containers keep their range.
      const other = (await dockerOk(umbrella, ['run', '-d', BUSYBOX_IMAGE, 'sleep', '60'])).trim();
      const otherPid = Number((await dockerOk(umbrella, ['inspect', '-f', '{{.State.Pid}}', other])).trim());
      assert.equal((await hostIds(otherPid)).uid[0], umbrellaBase);
      await dockerOk(umbrella, ['rm', '-f', other]);
    } finally {
      await t.berthOk(['tenant', 'policy', 'umbrella', '--allow', 'none']);
    }
  });

  test('the same change committed by a tenant and by the operator is the same layer', async () => {
    // A tar with fixed owners and times, copied into a created (never started) container of each.
    const payload = join(work, 'payload.tar');
    const pack = tar.pack();
    pack.entry({ name: 'payload/', type: 'directory', mode: 0o750, uid: 12, gid: 34, mtime: new Date('2024-01-01T00:00:00Z') });
    pack.entry({ name: 'payload/file', mode: 0o640, uid: 0, gid: 0, mtime: new Date('2024-01-01T00:00:00Z') }, 'same bytes\n');
    pack.finalize();
    await new Promise<void>((resolve, reject) => (pack as unknown as NodeJS.ReadableStream).pipe(createWriteStream(payload)).on('finish', resolve).on('error', reject));
    const layers: string[] = [];
    for (const [who, env] of [['acme', acme], ['operator', t.berth.env]] as const) {
      const id = (await dockerOk(env, ['create', BUSYBOX_IMAGE, 'true'])).trim();
      try {
        await dockerOk(env, ['cp', '-', `${id}:/`], { input: await readFile(payload) });
        assert.equal(await dockerOk(env, ['diff', id]), 'A /payload\nA /payload/file\n', who);
        await dockerOk(env, ['commit', id, `same-change-${who}`]);
      } finally {
        await dockerOk(env, ['rm', '-f', id]);
      }
      const rootfs = JSON.parse(await dockerOk(env, ['image', 'inspect', '-f', '{{json .RootFS.Layers}}', `same-change-${who}`])) as string[];
      layers.push(rootfs[rootfs.length - 1]!);
    }
    assert.equal(layers[0], layers[1], 'the diff ids agree');
  });

  test('file capabilities set under a tenant\'s root are committed as root\'s of whoever runs the image (v2)', async () => {
    const id = (await dockerOk(acme, ['run', '-d', BUSYBOX_IMAGE, 'sh', '-c', 'cp /bin/busybox /capped && sleep 60'])).trim();
    try {
      for (let i = 0; i < 50; i++) {
        if ((await docker(acme, ['exec', id, 'test', '-f', '/capped'])).code === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // What the kernel stores when root of the range sets cap_net_raw+ep (busybox has no
      // setcap): revision 3 with the range's root as rootid.
      const v3 = Buffer.alloc(24);
      v3.writeUInt32LE(0x03000001, 0);
      v3.writeUInt32LE(1 << 13, 4);
      v3.writeUInt32LE(acmeBase, 20);
      const upperFile = join(t.berth.dataRoot, 'containers', id, 'upper', 'capped');
      await new Promise<void>((resolve, reject) =>
        spawn('setfattr', ['-n', 'security.capability', '-v', `0x${v3.toString('hex')}`, upperFile], { stdio: 'ignore' }).on('close', (c) => (c === 0 ? resolve() : reject(new Error(`setfattr ${c}`)))),
      );
      await dockerOk(acme, ['commit', id, 'acme-capped']);
    } finally {
      await dockerOk(acme, ['rm', '-f', id]);
    }
    const saved = join(work, 'capped.tar');
    await dockerOk(acme, ['save', '-o', saved, 'acme-capped']);
    const caps = await capabilityOf(saved, 'capped');
    assert.ok(caps, 'the layer carries the capability');
    assert.equal(caps.length, 20, 'version 2');
    assert.equal(caps.readUInt32LE(0), 0x02000001);
    assert.equal(caps.readUInt32LE(4), 1 << 13);
  });
});
