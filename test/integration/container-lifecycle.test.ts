/**
 * Container lifecycle through the real docker CLI against a Berth this file starts:
 * create/start/stop/kill/restart/pause/rm/rename/update/wait, ps and inspect, restart
 * policies, resource limits in the cgroup, and the bad paths (each leaves nothing behind).
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { mountsUnder, sleep } from '../support/cleanup.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

let berth: BerthInstance;
const cli = (args: string[], input?: string) => docker(berth.env, args, input === undefined ? {} : { input });
const ok = (args: string[]) => dockerOk(berth.env, args).then((out) => out.trim());

async function inspect(ref: string, format: string): Promise<string> {
  return ok(['inspect', '--format', format, ref]);
}

async function until(predicate: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await sleep(100);
  }
  throw new Error('condition not met in time');
}

async function containerDirs(): Promise<string[]> {
  return (await readdir(`${berth.dataRoot}/containers`).catch(() => [])).filter((d) => /^[0-9a-f]{64}$/.test(d));
}

describe('container lifecycle', () => {
  before(async () => {
    berth = await startBerth();
    await ok(['load', '-i', await busyboxImageTar()]);
  });
  after(async () => {
    await berth?.stop();
  });

  test('run a container to completion and read its exit code', async () => {
    const result = await cli(['run', '--name', 'exit3', BUSYBOX_IMAGE, 'sh', '-c', 'exit 3']);
    assert.equal(result.code, 3, result.stderr);
    assert.equal(await inspect('exit3', '{{.State.Status}} {{.State.ExitCode}}'), 'exited 3');
    assert.match(await ok(['ps', '-a', '--filter', 'name=exit3', '--format', '{{.Status}}']), /^Exited \(3\) /);
    await ok(['rm', 'exit3']);
  });

  test('detached container: stop, start, restart, pause, unpause, kill', async () => {
    // --init: a bare `sleep` as PID 1 would ignore SIGTERM (as under dockerd); tini forwards it.
    const id = await ok(['run', '-d', '--init', '--name', 'sleeper', '--stop-timeout', '2', BUSYBOX_IMAGE, 'sleep', '1000']);
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(await ok(['ps', '-q', '--no-trunc', '--filter', 'name=sleeper']), id);
    assert.match(await ok(['ps', '--format', '{{.Names}} {{.Status}}']), /sleeper Up/);

    await ok(['pause', 'sleeper']);
    assert.equal(await inspect('sleeper', '{{.State.Status}} {{.State.Paused}}'), 'paused true');
    const pausedAgain = await cli(['pause', 'sleeper']);
    assert.notEqual(pausedAgain.code, 0);
    assert.match(pausedAgain.stderr, /is already paused/);
    await ok(['unpause', 'sleeper']);
    assert.equal(await inspect('sleeper', '{{.State.Status}}'), 'running');

    const stopStarted = Date.now();
    await ok(['stop', 'sleeper']);
    assert.ok(Date.now() - stopStarted < 5000);
    assert.equal(await inspect('sleeper', '{{.State.Status}} {{.State.ExitCode}}'), 'exited 143');

    await ok(['start', 'sleeper']);
    const firstPid = await inspect('sleeper', '{{.State.Pid}}');
    assert.notEqual(firstPid, '0');
    await ok(['restart', '-t', '1', 'sleeper']);
    assert.notEqual(await inspect('sleeper', '{{.State.Pid}}'), firstPid);

    await ok(['kill', 'sleeper']);
    assert.equal(await inspect('sleeper', '{{.State.Status}} {{.State.ExitCode}}'), 'exited 137');
    const killStopped = await cli(['kill', 'sleeper']);
    assert.notEqual(killStopped.code, 0);
    assert.match(killStopped.stderr, /is not running/);
    await ok(['rm', 'sleeper']);
  });

  test('a process that ignores SIGTERM is killed after the stop timeout', async () => {
    await ok(['run', '-d', '--name', 'stubborn', BUSYBOX_IMAGE, 'sh', '-c', "trap '' TERM; while true; do sleep 1; done"]);
    const started = Date.now();
    await ok(['stop', '-t', '1', 'stubborn']);
    const took = Date.now() - started;
    assert.ok(took >= 900 && took < 6000, `stop took ${took} ms`);
    assert.equal(await inspect('stubborn', '{{.State.ExitCode}}'), '137');
    await ok(['rm', 'stubborn']);
  });

  test('wait returns the exit code; rm refuses a running container unless forced', async () => {
    await ok(['run', '-d', '--name', 'waiter', BUSYBOX_IMAGE, 'sh', '-c', 'sleep 1; exit 5']);
    assert.equal(await ok(['wait', 'waiter']), '5');
    await ok(['run', '-d', '--name', 'busy', BUSYBOX_IMAGE, 'sleep', '1000']);
    const refused = await cli(['rm', 'busy']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /stop the container before removing or force remove/);
    await ok(['rm', '-f', 'busy', 'waiter']);
    assert.equal((await cli(['inspect', 'busy'])).code, 1);
  });

  test('rename, name conflicts and invalid names', async () => {
    await ok(['create', '--name', 'first', BUSYBOX_IMAGE, 'true']);
    const dup = await cli(['create', '--name', 'first', BUSYBOX_IMAGE, 'true']);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /Conflict\. The container name "\/first" is already in use by container "[0-9a-f]{64}"/);
    const bad = await cli(['create', '--name', 'no/slashes', BUSYBOX_IMAGE, 'true']);
    assert.match(bad.stderr, /Invalid container name \(no\/slashes\)/);
    await ok(['rename', 'first', 'second']);
    assert.equal(await inspect('second', '{{.Name}}'), '/second');
    await ok(['create', '--name', 'first', BUSYBOX_IMAGE, 'true']);
    const taken = await cli(['rename', 'first', 'second']);
    assert.match(taken.stderr, /is already in use/);
    await ok(['rm', 'first', 'second']);
  });

  test('unknown ids and images answer like dockerd and leave nothing behind', async () => {
    const dirsBefore = await containerDirs();
    for (const args of [['start', 'nosuch'], ['stop', 'nosuch'], ['rm', 'nosuch'], ['inspect', '--type', 'container', 'nosuch']]) {
      const result = await cli(args);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /No such container: nosuch/i, args.join(' '));
    }
    const missingCmd = await cli(['run', '--name', 'nocmd', BUSYBOX_IMAGE, 'definitely-not-a-command']);
    assert.equal(missingCmd.code, 127, missingCmd.stderr);
    assert.match(missingCmd.stderr, /definitely-not-a-command/);
    assert.equal(await inspect('nocmd', '{{.State.Status}} {{.State.ExitCode}}'), 'created 127');
    await ok(['rm', 'nocmd']);
    const badMemory = await cli(['run', '-m', '1k', BUSYBOX_IMAGE, 'true']);
    assert.match(badMemory.stderr, /Minimum memory limit allowed is 6MB/);
    const ports = await cli(['run', '-p', '127.0.0.1:1:80/sctp', BUSYBOX_IMAGE, 'true']);
    assert.match(ports.stderr, /publishing sctp ports is not supported/);
    assert.deepEqual(await containerDirs(), dirsBefore);
    assert.equal(await ok(['ps', '-aq']), '');
  });

  test('resource limits reach the cgroup and update changes them live', async () => {
    const id = await ok(['run', '-d', '--name', 'limited', '-m', '64m', '--cpus', '0.5', '--pids-limit', '50', BUSYBOX_IMAGE, 'sleep', '1000']);
    assert.equal(await inspect('limited', '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}'), '67108864 500000000 50');
    const memoryLimit = async (): Promise<string> =>
      (await readFile(`/sys/fs/cgroup/memory/berth/${id}/memory.limit_in_bytes`, 'utf8').catch(() =>
        readFile(`/sys/fs/cgroup/berth/${id}/memory.max`, 'utf8'),
      )).trim();
    assert.equal(await memoryLimit(), String(64 * 1024 * 1024));
    await ok(['update', '-m', '128m', '--memory-swap', '256m', 'limited']);
    assert.equal(await memoryLimit(), String(128 * 1024 * 1024));
    assert.equal(await inspect('limited', '{{.HostConfig.Memory}}'), String(128 * 1024 * 1024));
    // The pids limit holds: a fork bomb cannot pass it.
    const forks = await cli(['exec', 'limited', 'sh', '-c', 'for i in $(seq 1 80); do sleep 30 & done; wait']);
    assert.notEqual(forks.code, 0);
    await ok(['rm', '-f', 'limited']);
  });

  test('restart policies: on-failure retries, always restarts, manual stop holds', async () => {
    await ok(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', BUSYBOX_IMAGE, 'sh', '-c', 'exit 1']);
    await until(async () => (await inspect('flaky', '{{.RestartCount}} {{.State.Status}}')) === '2 exited');
    await ok(['run', '-d', '--name', 'phoenix', '--restart', 'always', BUSYBOX_IMAGE, 'sh', '-c', 'sleep 0.3']);
    await until(async () => Number(await inspect('phoenix', '{{.RestartCount}}')) >= 2);
    await ok(['stop', 'phoenix']);
    const count = await inspect('phoenix', '{{.RestartCount}}');
    await sleep(1000);
    assert.equal(await inspect('phoenix', '{{.RestartCount}} {{.State.Status}}'), `${count} exited`);
    await ok(['rm', '-f', 'flaky', 'phoenix']);
  });

  test('--rm removes the container and its layer; --read-only, --tmpfs, -u, -w, -h, -e, --init', async () => {
    const out = await ok([
      'run', '--rm', '--read-only', '--tmpfs', '/scratch', '-u', 'nobody', '-w', '/tmp', '-h', 'box', '-e', 'GREETING=hi', '--init',
      BUSYBOX_IMAGE, 'sh', '-c', 'echo $GREETING $(id -un) $(pwd) $(hostname); touch /scratch/ok && echo tmpfs-ok; touch /ro 2>/dev/null || echo ro-ok; cat /proc/1/cmdline | tr "\\0" " "',
    ]);
    const lines = out.split('\n');
    assert.equal(lines[0], 'hi nobody /tmp box');
    assert.equal(lines[1], 'tmpfs-ok');
    assert.equal(lines[2], 'ro-ok');
    assert.match(lines[3] ?? '', /^\/sbin\/docker-init -- sh/);
    assert.equal(await ok(['ps', '-aq']), '');
    assert.deepEqual(await containerDirs(), []);
    assert.deepEqual((await mountsUnder(`${berth.dataRoot}/containers`)), []);
  });

  test('an OOM kill is recorded: exit 137 and OOMKilled', async () => {
    // 8 MiB of memory (and no swap on top): a shell string of 64 MiB cannot fit.
    const result = await cli(['run', '--name', 'hog', '-m', '8m', '--memory-swap', '8m', BUSYBOX_IMAGE, 'sh', '-c', 'x=$(head -c 67108864 /dev/zero | tr "\\0" x); echo survived']);
    assert.equal(result.code, 137, result.stdout + result.stderr);
    assert.equal(await inspect('hog', '{{.State.OOMKilled}} {{.State.ExitCode}}'), 'true 137');
    await ok(['rm', 'hog']);
  });

  test('docker attach follows a running container to its end', async () => {
    await ok(['run', '-d', '--name', 'late', BUSYBOX_IMAGE, 'sh', '-c', 'sleep 1; echo late-line; exit 9']);
    const attached = await cli(['attach', '--no-stdin', 'late']);
    assert.equal(attached.code, 9, attached.stderr);
    assert.equal(attached.stdout, 'late-line\n');
    await ok(['rm', 'late']);
  });

  test('docker run -it gets a terminal of the client size', async () => {
    const { spawn } = await import('node:child_process');
    const script = `stty rows 33 cols 77; ${'/usr/local/bin/docker'} run -it --rm ${BUSYBOX_IMAGE} sh -c 'tty; stty size; exit 6'`;
    const child = spawn('script', ['-qec', script, '/dev/null'], { env: berth.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 6, output);
    assert.match(output, /\/dev\/pts\/\d+/);
    assert.match(output, /33 77/);
  });

  test('ps formats, filters and limits', async () => {
    await ok(['create', '--name', 'p1', '--label', 'tier=web', BUSYBOX_IMAGE, 'true']);
    await ok(['create', '--name', 'p2', BUSYBOX_IMAGE, 'true']);
    assert.equal(await ok(['ps', '-a', '--filter', 'label=tier=web', '--format', '{{.Names}}']), 'p1');
    assert.equal(await ok(['ps', '-a', '-n', '1', '--format', '{{.Names}}']), 'p2');
    assert.equal(await ok(['ps', '-a', '--filter', 'status=created', '--format', '{{.Names}} {{.Image}} {{.Command}}']), 'p2 berth-test/busybox:latest "true"\np1 berth-test/busybox:latest "true"');
    await ok(['container', 'prune', '-f']);
    assert.equal(await ok(['ps', '-aq']), '');
  });
});
