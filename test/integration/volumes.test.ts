/**
 * Volumes and mounts through the docker CLI against a real Berth: named and anonymous
 * volumes, copy-up of an image's VOLUME content, -v/--mount/--volumes-from, read-only mounts,
 * tmpfs, binds of host directories, local-driver options, `rm -v`, in-use refusal, prune,
 * bad input that leaves nothing behind, and a SIGKILL of Berth with volumes in use.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { busyboxImageTar, SEEDED_IMAGE, seededVolumeImageTar } from '../support/test-images.js';
import { mountsUnder, sleep } from '../support/cleanup.js';
import { apiPost } from '../support/api-request.js';

const IMAGE = 'berth-test/busybox';

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return check();
}

describe('volumes and mounts', { concurrency: 1 }, () => {
  let berth: BerthInstance;
  let scratch: string;
  const env = (): NodeJS.ProcessEnv => berth.env;
  const ok = (args: string[], input?: string): Promise<string> => dockerOk(env(), args, input === undefined ? {} : { input });
  const volumeNames = async (): Promise<string[]> => (await ok(['volume', 'ls', '-q'])).split('\n').filter((l) => l !== '').sort();
  const containerCount = async (): Promise<number> => (await ok(['ps', '-aq'])).split('\n').filter((l) => l !== '').length;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'berth-vol-test-'));
    const [b, tar, seeded] = await Promise.all([startBerth(), busyboxImageTar(), seededVolumeImageTar()]);
    berth = b;
    await dockerOk(berth.env, ['load', '-i', tar]);
    await dockerOk(berth.env, ['load', '-i', seeded]);
  });

  after(async () => {
    await berth?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  test('a named volume keeps data across container removal and is shared with a second container', async () => {
    assert.equal(await ok(['volume', 'create', '--label', 'app=web', 'vt-data']), 'vt-data\n');
    await ok(['run', '--name', 'vt-writer', '-v', 'vt-data:/data', IMAGE, 'sh', '-c', 'echo kept > /data/file']);
    await ok(['rm', '-v', 'vt-writer']); // -v never removes a named volume
    assert.equal(await ok(['run', '--rm', '-v', 'vt-data:/srv', IMAGE, 'cat', '/srv/file']), 'kept\n');
    const info = JSON.parse(await ok(['volume', 'inspect', 'vt-data'])) as Record<string, unknown>[];
    assert.equal(info[0]!.Name, 'vt-data');
    assert.equal(info[0]!.Driver, 'local');
    assert.deepEqual(info[0]!.Labels, { app: 'web' });
    assert.equal(info[0]!.Mountpoint, join(berth.dataRoot, 'volumes', 'vt-data', '_data'));
    assert.equal(await readFile(join(berth.dataRoot, 'volumes', 'vt-data', '_data', 'file'), 'utf8'), 'kept\n');
    // -v with a name that does not exist yet creates it.
    await ok(['run', '--rm', '-v', 'vt-auto:/x', IMAGE, 'true']);
    assert.ok((await volumeNames()).includes('vt-auto'));
    await ok(['volume', 'rm', 'vt-data', 'vt-auto']);
  });

  test("an image's VOLUME becomes an anonymous volume seeded with the image's content; rm -v removes it", async () => {
    await ok(['create', '--name', 'vt-seed', SEEDED_IMAGE, 'sh', '-c', 'ls -lnd /data /data/seed /data/sub; cat /data/seed; echo mine >> /data/seed']);
    const name = (await ok(['inspect', '-f', '{{range .Mounts}}{{.Name}}{{end}}', 'vt-seed'])).trim();
    assert.match(name, /^[0-9a-f]{64}$/);
    const labels = JSON.parse(await ok(['volume', 'inspect', '-f', '{{json .Labels}}', name])) as Record<string, string>;
    assert.deepEqual(labels, { 'com.docker.volume.anonymous': '' });
    await ok(['start', '-a', 'vt-seed']);
    const out = await ok(['logs', 'vt-seed']);
    assert.match(out, /^drwxrwx---\s+\d+ 1000\s+1000 .* \/data$/m, out);
    assert.match(out, /^-rw-r-----\s+\d+ 1000\s+1000 .* \/data\/seed$/m, out);
    assert.match(out, /^drwxr-x---\s+\d+ 1001\s+1001 .* \/data\/sub$/m, out);
    assert.match(out, /^seeded by the image$/m);
    // A second start finds the volume non-empty: no second copy-up over the container's change.
    await ok(['start', '-a', 'vt-seed']);
    assert.match(await ok(['logs', 'vt-seed']), /seeded by the image\nmine\n/);
    await ok(['rm', '-v', 'vt-seed']);
    assert.ok(!(await volumeNames()).includes(name), 'rm -v removes the anonymous volume');
    // Without -v the anonymous volume stays, as under dockerd; run --rm removes it.
    await ok(['create', '--name', 'vt-keep', SEEDED_IMAGE]);
    const kept = (await ok(['inspect', '-f', '{{range .Mounts}}{{.Name}}{{end}}', 'vt-keep'])).trim();
    await ok(['rm', 'vt-keep']);
    assert.ok((await volumeNames()).includes(kept));
    await ok(['volume', 'rm', kept]);
    const before = await volumeNames();
    await ok(['run', '--rm', '-v', '/scratch', SEEDED_IMAGE, 'true']);
    assert.ok(await eventually(async () => JSON.stringify(await volumeNames()) === JSON.stringify(before), 5000), 'run --rm removes its anonymous volumes');
  });

  test('a volume in use cannot be removed, and prune keeps volumes in use', async () => {
    await ok(['volume', 'create', 'vt-busy']);
    await ok(['create', '--name', 'vt-user', '-v', 'vt-busy:/d', '-v', '/anon', IMAGE, 'true']);
    const id = (await ok(['inspect', '-f', '{{.Id}}', 'vt-user'])).trim();
    const refused = await docker(env(), ['volume', 'rm', 'vt-busy']);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr.trim(), `Error response from daemon: remove vt-busy: volume is in use - [${id}]`);
    const forced = await docker(env(), ['volume', 'rm', '-f', 'vt-busy']);
    assert.equal(forced.code, 1, 'force does not remove a volume in use');
    const anon = (await ok(['inspect', '-f', '{{range .Mounts}}{{if eq .Destination "/anon"}}{{.Name}}{{end}}{{end}}', 'vt-user'])).trim();
    await ok(['volume', 'create', 'vt-unused']);
    await ok(['run', '--name', 'vt-left', '-v', '/left', IMAGE, 'true']);
    const left = (await ok(['inspect', '-f', '{{range .Mounts}}{{.Name}}{{end}}', 'vt-left'])).trim();
    await ok(['rm', 'vt-left']);
    // API 1.47 prune removes unused anonymous volumes only; --all takes unused named ones too.
    const pruned = await ok(['volume', 'prune', '-f']);
    assert.ok(pruned.includes(left) && !pruned.includes(anon) && !pruned.includes('vt-busy') && !pruned.includes('vt-unused'), pruned);
    const all = await ok(['volume', 'prune', '-af']);
    assert.ok(all.includes('vt-unused') && !all.includes('vt-busy') && !all.includes(anon), all);
    assert.ok((await volumeNames()).includes('vt-busy'));
    await ok(['rm', '-v', 'vt-user']);
    assert.ok(!(await volumeNames()).includes(anon));
    await ok(['volume', 'rm', 'vt-busy']);
  });

  test('volume ls filters by name, label, driver and dangling', async () => {
    await ok(['volume', 'create', '--label', 'tier=db', '--label', 'env=test', 'vt-f-db']);
    await ok(['volume', 'create', '--label', 'tier=web', 'vt-f-web']);
    await ok(['create', '--name', 'vt-f-user', '-v', 'vt-f-web:/w', IMAGE]);
    const ls = async (...filters: string[]): Promise<string[]> =>
      (await ok(['volume', 'ls', '-q', ...filters.flatMap((f) => ['--filter', f])])).split('\n').filter((l) => l.startsWith('vt-f-')).sort();
    assert.deepEqual(await ls('name=vt-f-'), ['vt-f-db', 'vt-f-web']);
    assert.deepEqual(await ls('name=f-d'), ['vt-f-db']);
    assert.deepEqual(await ls('label=tier'), ['vt-f-db', 'vt-f-web']);
    assert.deepEqual(await ls('label=tier=db', 'label=env=test'), ['vt-f-db']);
    assert.deepEqual(await ls('driver=local', 'name=vt-f-'), ['vt-f-db', 'vt-f-web']);
    assert.deepEqual(await ls('dangling=true'), ['vt-f-db']);
    assert.deepEqual(await ls('dangling=false'), ['vt-f-web']);
    const bad = await docker(env(), ['volume', 'ls', '--filter', 'colour=red']);
    assert.equal(bad.stderr.trim(), "Error response from daemon: invalid filter 'colour'");
    await ok(['rm', 'vt-f-user']);
    await ok(['volume', 'rm', 'vt-f-db', 'vt-f-web']);
  });

  test('--mount tmpfs with size and mode, read-only mounts refuse writes', async () => {
    const tmpfsLine = await ok(['run', '--rm', '--mount', 'type=tmpfs,destination=/t,tmpfs-size=2m,tmpfs-mode=1770', IMAGE, 'sh', '-c', 'grep " /t " /proc/mounts; stat -c %a /t']);
    assert.match(tmpfsLine, /^tmpfs \/t tmpfs rw,nosuid,nodev,noexec,relatime,size=2048k,mode=1770 0 0\n1770\n$/);
    await ok(['volume', 'create', 'vt-ro']);
    for (const flags of [['-v', 'vt-ro:/ro:ro'], ['--mount', 'type=volume,source=vt-ro,target=/ro,readonly']]) {
      const r = await docker(env(), ['run', '--rm', ...flags, IMAGE, 'touch', '/ro/x']);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, 'touch: /ro/x: Read-only file system\n');
    }
    await ok(['volume', 'rm', 'vt-ro']);
  });

  test('--volumes-from shares the mounts of another container, read-only with :ro', async () => {
    await ok(['run', '--name', 'vt-src', '-v', 'vt-shared:/shared', '-v', '/anon', IMAGE, 'sh', '-c', 'echo from-src > /shared/f; echo a > /anon/f']);
    assert.equal(await ok(['run', '--rm', '--volumes-from', 'vt-src', IMAGE, 'sh', '-c', 'cat /shared/f /anon/f; echo more > /shared/g']), 'from-src\na\n');
    const ro = await docker(env(), ['run', '--rm', '--volumes-from', 'vt-src:ro', IMAGE, 'sh', '-c', 'cat /shared/g; touch /anon/x']);
    assert.equal(ro.stdout, 'more\n');
    assert.equal(ro.stderr, 'touch: /anon/x: Read-only file system\n');
    const mounts = JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', 'vt-src'])) as { Name: string }[];
    await ok(['rm', '-v', 'vt-src']);
    const names = await volumeNames();
    assert.ok(names.includes('vt-shared'));
    assert.equal(names.filter((n) => mounts.some((m) => m.Name === n)).length, 1, 'the anonymous one went with rm -v');
    await ok(['volume', 'rm', 'vt-shared']);
  });

  test('bind mounts of host directories, and -v making a missing host directory', async () => {
    await writeFile(join(scratch, 'hello.txt'), 'from the host\n');
    assert.equal(await ok(['run', '--rm', '-v', `${scratch}:/host`, IMAGE, 'sh', '-c', 'cat /host/hello.txt; echo back > /host/back.txt']), 'from the host\n');
    assert.equal(await readFile(join(scratch, 'back.txt'), 'utf8'), 'back\n');
    const ro = await docker(env(), ['run', '--rm', '--mount', `type=bind,source=${scratch},target=/host,readonly`, IMAGE, 'touch', '/host/x']);
    assert.equal(ro.stderr, 'touch: /host/x: Read-only file system\n');
    const made = join(scratch, 'made', 'deeper');
    await ok(['run', '--rm', '-v', `${made}:/m`, IMAGE, 'true']);
    assert.ok((await stat(made)).isDirectory());
    const inspect = JSON.parse(await ok(['create', '--name', 'vt-bind', '-v', `${scratch}:/host:ro`, IMAGE]).then(() => ok(['inspect', '-f', '{{json .Mounts}}', 'vt-bind'])));
    assert.deepEqual(inspect, [{ Type: 'bind', Source: scratch, Destination: '/host', Mode: 'ro', RW: false, Propagation: 'rprivate' }]);
    await ok(['rm', 'vt-bind']);
  });

  test("local driver options: a tmpfs volume with a size is mounted while used, and o=bind binds a host path", async () => {
    await ok(['volume', 'create', '--driver', 'local', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=1m,uid=1000', 'vt-tmpfs']);
    const data = join(berth.dataRoot, 'volumes', 'vt-tmpfs', '_data');
    assert.deepEqual(await mountsUnder(data), []);
    const out = await ok(['run', '--rm', '-v', 'vt-tmpfs:/t', IMAGE, 'sh', '-c', 'grep " /t " /proc/mounts; stat -c %u /t']);
    assert.match(out, /^tmpfs \/t tmpfs rw,nosuid,nodev,relatime,size=1024k,uid=1000 0 0\n1000\n$/);
    assert.ok(await eventually(async () => (await mountsUnder(data)).length === 0, 5000), 'unmounted once no running container uses it');
    const full = await docker(env(), ['run', '--rm', '-v', 'vt-tmpfs:/t', IMAGE, 'dd', 'if=/dev/zero', 'of=/t/big', 'bs=1k', 'count=2048']);
    assert.notEqual(full.code, 0, 'the size limit holds');
    await writeFile(join(scratch, 'bound.txt'), 'bound\n');
    await ok(['volume', 'create', '--opt', 'type=none', '--opt', 'o=bind', '--opt', `device=${scratch}`, 'vt-bindvol']);
    assert.equal(await ok(['run', '--rm', '-v', 'vt-bindvol:/b', IMAGE, 'cat', '/b/bound.txt']), 'bound\n');
    const refused = await docker(env(), ['volume', 'create', '--opt', 'type=ext4', '--opt', 'device=/dev/null', 'vt-ext4']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /local volumes of type "ext4" are not supported/);
    await ok(['volume', 'rm', 'vt-tmpfs', 'vt-bindvol']);
    assert.ok(!(await volumeNames()).some((n) => n.startsWith('vt-')), String(await volumeNames()));
  });

  test('bad mount input gives dockerd\'s errors and leaves no container and no volume behind', async () => {
    const containers = await containerCount();
    const volumes = await volumeNames();
    const cases: [string[], string][] = [
      [['-v', 'vt-bad1:/d', '-v', 'vt-bad2:/d'], 'Duplicate mount point: /d'],
      [['--tmpfs', '/d', '-v', 'vt-bad1:/d'], 'Duplicate mount point: /d'],
      [['-v', 'vt-bad1:/d', '--mount', 'type=volume,source=vt-bad2,target=/d'], 'Duplicate mount point: /d'],
      [['-v', '/x:/y:bogus'], 'invalid mode: bogus'],
      [['-v', 'vt-bad1:relative'], "invalid volume specification: 'vt-bad1:relative': invalid mount config for type \"volume\": invalid mount path: 'relative' mount path must be absolute"],
      [['-v', 'vt-bad1:/'], "invalid volume specification: 'vt-bad1:/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'"],
      [['-v', 'a b:/x'], 'create a b: "a b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'],
      [['--mount', 'type=bind,source=/nonexistent-berth-path,target=/x'], 'invalid mount config for type "bind": bind source path does not exist: /nonexistent-berth-path'],
      [['--mount', 'type=tmpfs,source=x,target=/x'], 'invalid mount config for type "tmpfs": field Source must not be specified'],
      [['--volumes-from', 'vt-nosuch'], 'No such container: vt-nosuch'],
      [['--volumes-from', 'vt-nosuch:shared'], 'invalid mode: shared'],
    ];
    for (const [flags, message] of cases) {
      const r = await docker(env(), ['create', ...flags, IMAGE, 'true']);
      assert.equal(r.code, 1, `${flags.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim(), `Error response from daemon: ${message}`, flags.join(' '));
    }
    // What the docker CLI checks itself, sent straight to the API.
    const missingTarget = await apiPost(berth.socket, '/containers/create', { Image: IMAGE, HostConfig: { Mounts: [{ Type: 'volume', Source: 'vt-bad1' }] } });
    assert.equal(missingTarget.status, 400);
    assert.equal(JSON.parse(missingTarget.body).message, 'invalid mount config for type "volume": field Target must not be empty');
    const unknownType = await apiPost(berth.socket, '/containers/create', { Image: IMAGE, HostConfig: { Mounts: [{ Type: 'npipe', Target: '/x' }] } });
    assert.equal(unknownType.status, 400);
    assert.equal(JSON.parse(unknownType.body).message, 'invalid mount config for type "npipe": mount type unknown');
    assert.equal(await containerCount(), containers);
    assert.deepEqual(await volumeNames(), volumes);
  });

  test('inspect, ps and system df report mounts and volumes', async () => {
    await ok(['volume', 'create', 'vt-df']);
    await ok(['run', '-d', '--name', 'vt-report', '-v', 'vt-df:/named', '--mount', 'type=tmpfs,target=/tm', IMAGE, 'sh', '-c', 'head -c 3000 /dev/zero > /named/blob; sleep 60']);
    const mounts = (JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', 'vt-report'])) as { Destination: string }[]).sort((a, b) => a.Destination.localeCompare(b.Destination));
    assert.deepEqual(mounts, [
      { Type: 'volume', Name: 'vt-df', Source: join(berth.dataRoot, 'volumes', 'vt-df', '_data'), Destination: '/named', Driver: 'local', Mode: 'z', RW: true, Propagation: '' },
      { Type: 'tmpfs', Source: '', Destination: '/tm', Mode: '', RW: true, Propagation: '' },
    ]);
    assert.equal((await ok(['ps', '--filter', 'volume=vt-df', '--format', '{{.Names}}'])).trim(), 'vt-report');
    assert.equal((await ok(['ps', '--filter', 'volume=/named', '--format', '{{.Names}}'])).trim(), 'vt-report');
    assert.equal((await ok(['ps', '--filter', 'volume=nothing', '--format', '{{.Names}}'])).trim(), '');
    assert.ok(await eventually(async () => (await ok(['system', 'df', '-v', '--format', '{{json .Volumes}}'])).includes('"Size":"3kB"') || (await ok(['system', 'df', '-v'])).includes('vt-df'), 5000));
    const df = await ok(['system', 'df', '-v']);
    assert.match(df, /vt-df\s+1\s+3(\.0)?kB/, df);
    await ok(['rm', '-f', 'vt-report']);
    await ok(['volume', 'rm', 'vt-df']);
  });

  test('SIGKILL of Berth with volumes in use: after restart mounts and volumes match the records', async () => {
    await ok(['volume', 'create', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=4m', 'vt-crash-tmp']);
    await ok(['volume', 'create', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', 'vt-crash-idle']);
    await ok(['run', '-d', '--name', 'vt-crash', '-v', 'vt-crash-tmp:/t', '-v', 'vt-crash-named:/n', SEEDED_IMAGE, 'sh', '-c', 'echo before > /t/f; touch /tmp/healthy; sleep 300']);
    assert.ok(await eventually(async () => (await ok(['inspect', '-f', '{{.State.Health.Status}}', 'vt-crash'])).trim() === 'healthy', 5000));
    await ok(['run', '--name', 'vt-crash-idle-user', '-v', 'vt-crash-idle:/i', IMAGE, 'true']);
    // This one ends while Berth is down: its volume must be released by the restarted Berth.
    await ok(['volume', 'create', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', 'vt-crash-dying']);
    await ok(['run', '-d', '--name', 'vt-crash-dies', '-v', 'vt-crash-dying:/d', IMAGE, 'sleep', '1']);
    const dyingData = join(berth.dataRoot, 'volumes', 'vt-crash-dying', '_data');
    assert.equal((await mountsUnder(dyingData)).length, 1);
    const tmpData = join(berth.dataRoot, 'volumes', 'vt-crash-tmp', '_data');
    const idleData = join(berth.dataRoot, 'volumes', 'vt-crash-idle', '_data');
    assert.equal((await mountsUnder(tmpData)).length, 1);
    await berth.kill();
    // Simulate what a crash can leave: an option volume mounted with no running user, and a
    // volume directory whose record was never written.
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    await promisify(execFile)('mount', ['-t', 'tmpfs', 'tmpfs', idleData]);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(berth.dataRoot, 'volumes', 'vt-orphan', '_data'), { recursive: true });
    await sleep(1500);
    await berth.restart();
    assert.equal((await ok(['inspect', '-f', '{{.State.Running}}', 'vt-crash'])).trim(), 'true');
    assert.equal(await ok(['exec', 'vt-crash', 'cat', '/t/f']), 'before\n', 'the running container keeps its tmpfs volume');
    assert.equal((await mountsUnder(tmpData)).length, 1, 'the volume of a running container stays mounted');
    assert.equal((await mountsUnder(idleData)).length, 0, 'an option volume nobody runs with is unmounted');
    await assert.rejects(stat(join(berth.dataRoot, 'volumes', 'vt-orphan')), 'a volume directory without a record is removed');
    assert.equal((await ok(['inspect', '-f', '{{.State.Status}}', 'vt-crash-dies'])).trim(), 'exited');
    assert.ok(await eventually(async () => (await mountsUnder(dyingData)).length === 0, 5000), 'the volume of a container that ended meanwhile is unmounted');
    const names = await volumeNames();
    for (const n of ['vt-crash-tmp', 'vt-crash-idle', 'vt-crash-named']) assert.ok(names.includes(n), n);
    assert.equal(await ok(['exec', 'vt-crash', 'ls', '/data']), 'seed\nsub\n');
    // Health checks go on: the image's check turns unhealthy once its file is gone.
    await ok(['exec', 'vt-crash', 'rm', '/tmp/healthy']);
    assert.ok(await eventually(async () => (await ok(['inspect', '-f', '{{.State.Health.Status}}', 'vt-crash'])).trim() === 'unhealthy', 5000));
    await ok(['rm', '-f', '-v', 'vt-crash', 'vt-crash-idle-user', 'vt-crash-dies']);
    await ok(['volume', 'rm', 'vt-crash-tmp', 'vt-crash-idle', 'vt-crash-named', 'vt-crash-dying']);
    assert.equal(await containerCount(), 0);
    assert.deepEqual(await mountsUnder(berth.dataRoot), [], 'with every container gone, nothing is mounted under the data root');
  });
});
