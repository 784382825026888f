/**
 * Container I/O through the real docker CLI against a Berth this file starts: attach (docker
 * run), logs, exec (exit codes, stdin, TTY), top, stats, diff, export and docker cp both ways.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { DOCKER_CLI, docker, dockerOk } from '../support/docker-cli.js';
import { sleep } from '../support/cleanup.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

let berth: BerthInstance;
let scratch: string;
const cli = (args: string[], input?: string, timeoutMs = 30_000) => docker(berth.env, args, { ...(input === undefined ? {} : { input }), timeoutMs });
const ok = (args: string[]) => dockerOk(berth.env, args).then((out) => out.trim());

/** Runs a shell pipeline with the CLI's environment (for `docker export | tar t` and friends). */
function sh(command: string, timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { env: { ...berth.env, DOCKER: DOCKER_CLI }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

describe('container I/O', () => {
  before(async () => {
    berth = await startBerth();
    scratch = await mkdtemp(join(tmpdir(), 'berth-io-it-'));
    await ok(['load', '-i', await busyboxImageTar()]);
    await ok(['run', '-d', '--name', 'io', BUSYBOX_IMAGE, 'sh', '-c', 'i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done']);
  });
  after(async () => {
    await berth?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  test('docker run prints the output of the container', async () => {
    const result = await cli(['run', '--rm', BUSYBOX_IMAGE, 'echo', 'hi']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'hi\n');
  });

  test('docker run keeps stdout and stderr apart and returns the exit code', async () => {
    const result = await cli(['run', '--name', 'split', BUSYBOX_IMAGE, 'sh', '-c', 'echo out; echo err >&2; exit 4']);
    assert.equal(result.code, 4, result.stderr);
    assert.equal(result.stdout, 'out\n');
    assert.equal(result.stderr, 'err\n');
    const logs = await cli(['logs', 'split']);
    assert.equal(logs.stdout, 'out\n');
    assert.equal(logs.stderr, 'err\n');
    await ok(['rm', 'split']);
  });

  test('docker run -i passes stdin and ends when stdin ends', async () => {
    const result = await cli(['run', '-i', '--rm', BUSYBOX_IMAGE, 'cat'], 'data\n', 15_000);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'data\n');
  });

  // The CLI half-closes at once when its stdin is empty, often before Berth's stdin pump runs.
  test('docker run -i and exec -i end when stdin is already empty (</dev/null)', async () => {
    const run = await cli(['run', '-i', '--rm', BUSYBOX_IMAGE, 'sh', '-c', 'cat; echo eof'], undefined, 15_000);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'eof\n');
    const exec = await cli(['exec', '-i', 'io', 'sh', '-c', 'cat; echo eof'], undefined, 15_000);
    assert.equal(exec.code, 0, exec.stderr);
    assert.equal(exec.stdout, 'eof\n');
  });

  test('docker logs: --tail, --timestamps, --since, and -f that ends with the container', async () => {
    await ok(['run', '--name', 'logged', BUSYBOX_IMAGE, 'sh', '-c', 'echo one; echo two; echo three >&2']);
    assert.equal((await cli(['logs', '--tail', '1', 'logged'])).stderr, 'three\n');
    assert.equal((await cli(['logs', '--tail', '2', 'logged'])).stdout, 'two\n');
    const stamped = (await cli(['logs', '-t', 'logged'])).stdout.trim().split('\n');
    assert.equal(stamped.length, 2);
    for (const line of stamped) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (one|two)$/);
    assert.equal((await cli(['logs', '--since', '2099-01-01T00:00:00Z', 'logged'])).stdout, '');
    assert.equal((await cli(['logs', '--until', '2000-01-01T00:00:00Z', 'logged'])).stdout, '');

    await ok(['run', '-d', '--name', 'follow', BUSYBOX_IMAGE, 'sh', '-c', 'for i in 1 2 3; do echo f$i; sleep 0.3; done']);
    const started = Date.now();
    const followed = await cli(['logs', '-f', 'follow'], undefined, 15_000);
    assert.equal(followed.code, 0, followed.stderr);
    assert.equal(followed.stdout, 'f1\nf2\nf3\n');
    assert.ok(Date.now() - started < 10_000);
    await ok(['rm', 'logged', 'follow']);
  });

  test('docker exec returns the exit code and passes stdin with -i', async () => {
    assert.equal((await cli(['exec', 'io', 'sh', '-c', 'exit 3'])).code, 3);
    const echoed = await cli(['exec', 'io', 'sh', '-c', 'echo out; echo err >&2']);
    assert.equal(echoed.stdout, 'out\n');
    assert.equal(echoed.stderr, 'err\n');
    const piped = await cli(['exec', '-i', 'io', 'sh', '-c', 'cat; echo done'], 'stdin-data\n');
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, 'stdin-data\ndone\n');
    const missing = await cli(['exec', 'io', 'no-such-binary']);
    assert.equal(missing.code, 127, missing.stdout + missing.stderr);
    const env = await cli(['exec', '-e', 'FOO=bar', '-w', '/tmp', 'io', 'sh', '-c', 'echo $FOO $(pwd)']);
    assert.equal(env.stdout, 'bar /tmp\n');
    const execIds = await ok(['inspect', '--format', '{{len .ExecIDs}}', 'io']);
    assert.ok(Number(execIds) >= 4, execIds);
  });

  // ConsoleSize from the CLI reaches the runtime before the process starts, so the first stty sees it.
  test('docker exec -t gets a terminal (run under script(1) for a pty)', async () => {
    const result = await sh(`script -qec 'stty rows 40 cols 100; "$DOCKER" exec -it io sh -c "tty; stty size; exit 5"' /dev/null`, 20_000);
    assert.equal(result.code, 5, result.stdout + result.stderr);
    assert.match(result.stdout, /\/dev\/pts\/\d+/);
    assert.match(result.stdout, /40 100/);
  });

  test('docker exec refuses a stopped or paused container with Docker messages', async () => {
    await ok(['create', '--name', 'idle', BUSYBOX_IMAGE, 'true']);
    const stopped = await cli(['exec', 'idle', 'true']);
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /Container [0-9a-f]{64} is not running/);
    await ok(['rm', 'idle']);
    await ok(['pause', 'io']);
    try {
      const paused = await cli(['exec', 'io', 'true']);
      assert.match(paused.stderr, /is paused, unpause the container before exec/);
    } finally {
      await ok(['unpause', 'io']);
    }
  });

  test('docker top, stats --no-stream and diff', async () => {
    const top = await ok(['top', 'io']);
    assert.match(top, /PID/);
    assert.match(top, /sh -c i=0/);
    const stats = await ok(['stats', '--no-stream', '--format', '{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}', 'io']);
    const match = /^io (\d+\.\d+)% ([\d.]+)(B|KiB|MiB) \/ ([\d.]+)(GiB|MiB) (\d+)$/.exec(stats);
    assert.ok(match, stats);
    assert.ok(Number(match[1]) < 200, stats);
    assert.ok(Number(match[2]) > 0, stats);
    assert.ok(Number(match[6]) >= 1, stats);
    await ok(['exec', 'io', 'sh', '-c', 'echo x > /tmp/added; rm /bin/ls']);
    const diff = (await ok(['diff', 'io'])).split('\n');
    assert.ok(diff.includes('A /tmp/added'), diff.join('\n'));
    assert.ok(diff.includes('D /bin/ls'), diff.join('\n'));
    const notRunning = await cli(['top', 'no-such']);
    assert.match(notRunning.stderr, /No such container: no-such/);
  });

  test('docker stats streams samples until interrupted', async () => {
    const child = spawn(DOCKER_CLI, ['stats', '--format', '{{.Name}} {{.CPUPerc}}', 'io'], { env: berth.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await sleep(3500);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('close', resolve));
    assert.match(out, /io \d+\.\d+%/);
  });

  test('docker export is a tar of the whole filesystem', async () => {
    const result = await sh('"$DOCKER" export io | tar t');
    assert.equal(result.code, 0, result.stderr);
    const names = result.stdout.split('\n');
    assert.ok(names.some((n) => /^(\.\/)?bin\/busybox$/.test(n)), names.slice(0, 20).join('\n'));
  });

  test('docker cp out of and into a container: files, directories and links', async () => {
    await ok(['exec', 'io', 'sh', '-c', 'mkdir -p /srv/dir/sub && echo a > /srv/dir/a && echo b > /srv/dir/sub/b && ln -s /etc/passwd /srv/dir/abs && ln -s ../../../../../.. /srv/climb']);
    const out = join(scratch, 'out');
    await mkdir(out);
    await ok(['cp', 'io:/srv/dir', join(out, 'dir')]);
    assert.equal(await readFile(join(out, 'dir/a'), 'utf8'), 'a\n');
    assert.equal(await readFile(join(out, 'dir/sub/b'), 'utf8'), 'b\n');
    assert.equal(await readlink(join(out, 'dir/abs')), '/etc/passwd');
    await ok(['cp', 'io:/srv/dir/.', join(out, 'contents')]);
    assert.equal(await readFile(join(out, 'contents/a'), 'utf8'), 'a\n');
    // -L follows the link inside the container, to the container's /etc/passwd.
    await ok(['cp', '-L', 'io:/srv/dir/abs', join(out, 'passwd')]);
    assert.match(await readFile(join(out, 'passwd'), 'utf8'), /^root:/);
    // A link that climbs stays in the container: /srv/climb/etc/hostname is the container's.
    await ok(['cp', 'io:/srv/climb/etc/hostname', join(out, 'hostname')]);
    const hostname = (await readFile(join(out, 'hostname'), 'utf8')).trim();
    assert.equal(hostname, await ok(['exec', 'io', 'hostname']));
    const missing = await cli(['cp', 'io:/no/such', join(out, 'x')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /Could not find the file \/no\/such in container io/);

    const src = join(scratch, 'src');
    await mkdir(join(src, 'tree/deep'), { recursive: true });
    await writeFile(join(src, 'tree/deep/file'), 'deep\n');
    await writeFile(join(src, 'single'), 'single\n');
    await symlink('/etc/shadow', join(src, 'tree/link'));
    await ok(['cp', join(src, 'tree'), 'io:/srv/']);
    await ok(['cp', join(src, 'single'), 'io:/srv/renamed']);
    assert.equal(await ok(['exec', 'io', 'cat', '/srv/tree/deep/file', '/srv/renamed']), 'deep\nsingle');
    assert.equal(await ok(['exec', 'io', 'readlink', '/srv/tree/link']), '/etc/shadow');
    // Copying through the climbing link writes inside the container, not on the host.
    await ok(['cp', join(src, 'single'), 'io:/srv/climb/tmp/through-link']);
    assert.equal(await ok(['exec', 'io', 'cat', '/tmp/through-link']), 'single');
  });

  test('docker cp works on a stopped container', async () => {
    await ok(['run', '--name', 'done', BUSYBOX_IMAGE, 'sh', '-c', 'echo saved > /saved']);
    const out = join(scratch, 'stopped');
    await mkdir(out);
    await ok(['cp', 'done:/saved', join(out, 'saved')]);
    assert.equal(await readFile(join(out, 'saved'), 'utf8'), 'saved\n');
    await writeFile(join(out, 'in'), 'in\n');
    await ok(['cp', join(out, 'in'), 'done:/in']);
    await ok(['start', 'done']);
    await ok(['wait', 'done']);
    const diff = await ok(['diff', 'done']);
    assert.match(diff, /A \/in/);
    await ok(['rm', 'done']);
  });
});
