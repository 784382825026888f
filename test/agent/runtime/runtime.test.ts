/**
 * Integration tests of RuncRuntime with real runc and conmon on a busybox rootfs. Every test
 * deletes its containers in `finally`; `after` sweeps whatever a failing test left behind.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildExecProcess, mergeEnv } from '../../../src/agent/runtime/exec-spec.js';
import { readLogs } from '../../../src/agent/runtime/logs.js';
import { RuncRuntime } from '../../../src/agent/runtime/runtime.js';
import { parseSignal } from '../../../src/agent/runtime/signals.js';
import { decodeAttachPacket, stdinPackets } from '../../../src/agent/runtime/stdio.js';
import { parsePs } from '../../../src/agent/runtime/top.js';
import { isKind } from '../../../src/common/errors.js';
import {
  collect,
  destroyFixture,
  makeFixture,
  quietLogger,
  specInput,
  waitForOutput,
  type Fixture,
} from './runtime-fixture.js';

const execFileAsync = promisify(execFile);

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

describe('runtime helpers', () => {
  test('attach packets: first byte names the stream; stdin is cut under 32 KiB', () => {
    assert.deepEqual(decodeAttachPacket(Buffer.from([2, 104, 105])), { stream: 'stdout', data: Buffer.from('hi') });
    assert.deepEqual(decodeAttachPacket(Buffer.from([3, 33])), { stream: 'stderr', data: Buffer.from('!') });
    assert.equal(decodeAttachPacket(Buffer.from([1, 1])), undefined);
    assert.equal(decodeAttachPacket(Buffer.alloc(0)), undefined);
    const packets = stdinPackets(Buffer.alloc(70_000));
    assert.deepEqual(packets.map((p) => p.length), [32767, 32767, 4466]);
  });

  test('exec process: env overlay, HOME of the exec user, cwd default, privileged', () => {
    assert.deepEqual(mergeEnv(['A=1', 'B=2'], ['B=3', 'C=4']), ['A=1', 'B=3', 'C=4']);
    const base = {
      user: { uid: 0, gid: 0 },
      args: ['sleep', '60'],
      env: ['PATH=/bin', 'HOME=/root'],
      cwd: '/srv',
      capabilities: { bounding: ['CAP_CHOWN'] },
      noNewPrivileges: true,
    };
    const asNobody = buildExecProcess(base, { args: ['id'], env: ['X=1'], tty: true, stdin: false }, { uid: 65534, gid: 65534, additionalGids: [], home: '/home' });
    assert.deepEqual(asNobody.user, { uid: 65534, gid: 65534, additionalGids: [] });
    assert.deepEqual(asNobody.env, ['PATH=/bin', 'HOME=/home', 'X=1']);
    assert.equal(asNobody.cwd, '/srv');
    assert.equal(asNobody.terminal, true);
    assert.deepEqual(asNobody.capabilities, { bounding: ['CAP_CHOWN'] });
    const privileged = buildExecProcess(base, { args: ['id'], env: [], cwd: '/tmp', tty: false, stdin: false, privileged: true }, undefined);
    assert.equal(privileged.cwd, '/tmp');
    assert.deepEqual(privileged.user, { uid: 0, gid: 0 });
    assert.equal(privileged.noNewPrivileges, false);
    assert.ok(privileged.capabilities?.effective?.includes('CAP_SYS_ADMIN'));
  });

  test('signals by name, short name and number', () => {
    assert.equal(parseSignal('SIGTERM'), 15);
    assert.equal(parseSignal('term'), 15);
    assert.equal(parseSignal('15'), 15);
    assert.equal(parseSignal('KILL'), 9);
    assert.equal(parseSignal('SIGRTMIN+3'), 37);
    assert.throws(() => parseSignal('SIGNOPE'), /Invalid signal: SIGNOPE/);
    assert.throws(() => parseSignal('0'), /Invalid signal/);
  });

  test('ps output is filtered to the container and the command keeps its spaces', () => {
    const out = 'UID PID PPID C STIME TTY TIME CMD\nroot 10 1 0 10:00 ? 00:00:00 sleep 30\nroot 11 1 0 10:00 ? 00:00:00 other\n';
    const top = parsePs(out, new Set([10]));
    assert.deepEqual(top.Titles, ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
    assert.deepEqual(top.Processes, [['root', '10', '1', '0', '10:00', '?', '00:00:00', 'sleep 30']]);
  });
});

describe('RuncRuntime (runc + conmon)', () => {
  let fx: Fixture;
  let rt: RuncRuntime;

  before(async () => {
    fx = await makeFixture();
    rt = new RuncRuntime({ execRoot: fx.execRoot, logger: quietLogger });
  });

  after(async () => {
    await destroyFixture(fx);
  });

  test('echo: exit code, logs with stdout and stderr kept apart; create+start timing', async () => {
    const timings: number[] = [];
    for (let i = 0; i < 5; i++) {
      const spec = specInput(fx, ['sh', '-c', 'echo out; echo err >&2; exit 3']);
      try {
        const t0 = performance.now();
        await rt.create(spec);
        await rt.start(spec.id);
        timings.push(performance.now() - t0);
        const exit = await rt.waitExit(spec.id);
        assert.equal(exit.exitCode, 3);
        assert.equal(exit.oomKilled, false);
        assert.match(exit.finishedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
        const state = await rt.state(spec.id);
        assert.equal(state.status, 'stopped');
        const only = async (stdout: boolean, stderr: boolean): Promise<string> => {
          const got = await collect(readLogs(spec.logPath, { follow: false, stdout, stderr, timestamps: false }));
          return got.stdout + got.stderr;
        };
        assert.equal(await only(true, false), 'out\n');
        assert.equal(await only(false, true), 'err\n');
        assert.equal(await only(true, true), 'out\nerr\n');
      } finally {
        await rt.delete(spec.id);
      }
    }
    timings.sort((a, b) => a - b);
    console.log(`create+start ms (5 runs, sorted): ${timings.map((t) => t.toFixed(1)).join(', ')}`);
  });

  test('attach between create and start receives all output', async () => {
    const spec = specInput(fx, ['sh', '-c', 'echo hello; echo oops >&2']);
    try {
      await rt.create(spec);
      const session = await rt.attach(spec.id, { stdin: false });
      assert.equal(session.stdin, undefined);
      const output = collect(session.output);
      await rt.start(spec.id);
      assert.deepEqual(await output, { stdout: 'hello\n', stderr: 'oops\n' });
      assert.equal((await rt.waitExit(spec.id)).exitCode, 0);
      session.close();
    } finally {
      await rt.delete(spec.id);
    }
  });

  test('stdin piped to cat reaches EOF (stdin once)', async () => {
    const spec = specInput(fx, ['cat'], { openStdin: true, stdinOnce: true });
    try {
      await rt.create(spec);
      const session = await rt.attach(spec.id, { stdin: true });
      assert.ok(session.stdin);
      const output = collect(session.output);
      session.stdin.end('hi\nthere\n');
      await rt.start(spec.id);
      assert.deepEqual(await output, { stdout: 'hi\nthere\n', stderr: '' });
      assert.equal((await rt.waitExit(spec.id)).exitCode, 0);
    } finally {
      await rt.delete(spec.id);
    }
  });

  test('a TTY container sees resizes', async () => {
    const spec = specInput(fx, ['sh', '-c', 'read x; stty size; read y; stty size'], { tty: true, openStdin: true, stdinOnce: true });
    try {
      await rt.create(spec);
      const session = await rt.attach(spec.id, { stdin: true });
      await rt.start(spec.id);
      await rt.resize(spec.id, { height: 40, width: 100 });
      const first = waitForOutput(session.output, (t) => t.includes('40 100'));
      session.stdin!.write('a\n');
      await first;
      await rt.resize(spec.id, { height: 25, width: 81 });
      const second = waitForOutput(session.output, (t) => t.includes('25 81'));
      session.stdin!.write('b\n');
      await second;
      assert.equal((await rt.waitExit(spec.id)).exitCode, 0);
      const logged = await collect(readLogs(spec.logPath, { follow: false, stdout: true, stderr: true, timestamps: false }));
      assert.match(logged.stdout, /40 100\r\n/);
      session.close();
    } finally {
      await rt.delete(spec.id);
    }
  });

  test('exec: output, exit code, stdin, env, user, tty, missing binary', async () => {
    const spec = specInput(fx, ['sleep', '60'], { env: ['FROM_CONTAINER=1'] });
    try {
      await rt.create(spec);
      await rt.start(spec.id);

      const p1 = await rt.exec(spec.id, { args: ['sh', '-c', 'echo execout; echo execerr >&2; echo $FROM_CONTAINER$EXTRA; id -u; exit 7'], env: ['EXTRA=2'], tty: false, stdin: false, user: 'nobody' });
      assert.ok(p1.pid > 0);
      const out1 = await collect(p1.stdio.output);
      assert.equal(await p1.exited, 7);
      assert.deepEqual(out1, { stdout: 'execout\n12\n65534\n', stderr: 'execerr\n' });

      const p2 = await rt.exec(spec.id, { args: ['cat'], env: [], tty: false, stdin: true });
      const out2 = collect(p2.stdio.output);
      p2.stdio.stdin!.end('piped\n');
      assert.equal((await out2).stdout, 'piped\n');
      assert.equal(await p2.exited, 0);

      const p3 = await rt.exec(spec.id, { args: ['sh', '-c', 'read x; stty size'], env: [], tty: true, stdin: true });
      await p3.resize({ height: 33, width: 77 });
      const out3 = waitForOutput(p3.stdio.output, (t) => t.includes('33 77'));
      p3.stdio.stdin!.write('go\n');
      await out3;
      assert.equal(await p3.exited, 0);

      await assert.rejects(rt.exec(spec.id, { args: ['nosuchcmd'], env: [], tty: false, stdin: false }), (err: unknown) => {
        assert.ok(isKind(err, 'InvalidArgument'));
        assert.match((err as Error).message, /exec: "nosuchcmd": executable file not found in \$PATH/);
        return true;
      });
      // Exec sessions clean up after themselves.
      const sessions = await readdir(join(fx.execRoot, 'containers', spec.id, 'exec')).catch(() => []);
      assert.deepEqual(sessions, []);

      const top = await rt.top(spec.id);
      assert.ok(top.Titles.includes('PID'));
      assert.ok(top.Processes.some((row) => row.at(-1) === 'sleep 60'), JSON.stringify(top));
      const stats = await rt.stats(spec.id);
      assert.ok(stats.pids.current >= 1);
    } finally {
      await rt.delete(spec.id);
    }
  });

  test('kill with SIGKILL gives 137; pause, resume, update, list', async () => {
    const spec = specInput(fx, ['sleep', '60']);
    try {
      await rt.create(spec);
      assert.equal((await rt.state(spec.id)).status, 'created');
      await rt.start(spec.id);
      const running = await rt.state(spec.id);
      assert.equal(running.status, 'running');
      assert.ok(running.pid > 0);
      assert.ok((await rt.list()).some((c) => c.id === spec.id && c.status === 'running'));

      await rt.pause(spec.id);
      assert.equal((await rt.state(spec.id)).status, 'paused');
      await rt.resume(spec.id);
      assert.equal((await rt.state(spec.id)).status, 'running');

      await rt.update(spec.id, { memory: 64 * 1024 * 1024, pidsLimit: 50 });
      const stats = await rt.stats(spec.id);
      assert.equal(stats.memory.limit, 64 * 1024 * 1024);
      assert.equal(stats.pids.limit, 50);

      const waiting = rt.waitExit(spec.id);
      await rt.kill(spec.id, 'SIGKILL');
      const exit = await waiting;
      assert.equal(exit.exitCode, 137);
      assert.equal((await rt.state(spec.id)).status, 'stopped');
      await assert.rejects(rt.kill(spec.id, 'TERM'), (err: unknown) => isKind(err, 'Conflict'));
      await assert.rejects(rt.kill(spec.id, 'NOPE'), (err: unknown) => isKind(err, 'InvalidArgument'));
    } finally {
      await rt.delete(spec.id);
    }
    // delete is idempotent and leaves nothing
    await rt.delete(spec.id);
    await assert.rejects(rt.state(spec.id), (err: unknown) => isKind(err, 'NotFound'));
  });

  test('kill with TERM, 15 and a number on a shell that traps nothing', async () => {
    const spec = specInput(fx, ['sleep', '60'], { init: false });
    try {
      await rt.create(spec);
      await rt.start(spec.id);
      await rt.kill(spec.id, '15');
      // PID 1 ignores SIGTERM without a handler: it keeps running.
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await rt.state(spec.id)).status, 'running');
      await rt.kill(spec.id, 'KILL');
      assert.equal((await rt.waitExit(spec.id)).exitCode, 137);
    } finally {
      await rt.delete(spec.id);
    }
  });

  test('a failed create says why and leaves no runc state, bundle, monitor or cgroup', async () => {
    const spec = specInput(fx, ['nosuchcmd']);
    await assert.rejects(rt.create(spec), (err: unknown) => {
      assert.ok(isKind(err, 'InvalidArgument'), String(err));
      assert.match(
        (err as Error).message,
        /^failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nosuchcmd": executable file not found in \$PATH: unknown$/,
      );
      return true;
    });
    assert.equal(await exists(join(fx.execRoot, 'containers', spec.id)), false);
    assert.ok(!(await rt.list()).some((c) => c.id === spec.id));
    for (const ctrl of ['memory', 'pids', 'cpu', 'unified']) {
      assert.equal(await exists(join('/sys/fs/cgroup', ctrl, 'berth', spec.id)), false, ctrl);
    }
    const { stdout } = await execFileAsync('ps', ['-eo', 'args']);
    assert.ok(!stdout.includes(spec.id), 'no process mentions the container');
    await assert.rejects(rt.waitExit(spec.id), (err: unknown) => isKind(err, 'NotFound'));
  });

  test('an OOM kill is reported as oomKilled', async () => {
    const limit = 16 * 1024 * 1024;
    const spec = specInput(fx, ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived']);
    spec.resources = { memory: limit, memorySwap: limit };
    try {
      await rt.create(spec);
      await rt.start(spec.id);
      const exit = await rt.waitExit(spec.id);
      assert.equal(exit.oomKilled, true);
      assert.notEqual(exit.exitCode, 0);
    } finally {
      await rt.delete(spec.id);
    }
  });

  test('exec in a paused container is refused; a TTY exec starts with its console size', async () => {
    const spec = specInput(fx, ['sleep', '60']);
    try {
      await rt.create(spec);
      await rt.start(spec.id);
      const p = await rt.exec(spec.id, { args: ['stty', 'size'], env: [], tty: true, stdin: false, consoleSize: { height: 21, width: 72 } });
      assert.equal((await collect(p.stdio.output)).stdout, '21 72\r\n');
      assert.equal(await p.exited, 0);
      await rt.pause(spec.id);
      await assert.rejects(rt.exec(spec.id, { args: ['true'], env: [], tty: false, stdin: false }), /is paused, unpause the container before exec/);
    } finally {
      await rt.delete(spec.id); // a paused container is deleted too
    }
    assert.equal(await exists(join(fx.execRoot, 'containers', spec.id)), false);
  });

  test('follow logs until the container exits', async () => {
    const spec = specInput(fx, ['sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.1; done; printf tail']);
    try {
      await rt.create(spec);
      const exited = rt.waitExit(spec.id);
      const logs = collect(readLogs(spec.logPath, { follow: true, stdout: true, stderr: true, timestamps: true, exited }));
      await rt.start(spec.id);
      assert.equal((await logs).stdout, 'line1\nline2\nline3\ntail');
    } finally {
      await rt.delete(spec.id);
    }
  });

  test('a container outlives the process that created it', async () => {
    const spec = specInput(fx, ['sh', '-c', 'echo before; read x; echo after $x; exit 3'], { openStdin: true, stdinOnce: false });
    const child = fileURLToPath(new URL('./create-detached.js', import.meta.url));
    try {
      const { stdout } = await execFileAsync(process.execPath, [child, fx.execRoot, JSON.stringify(spec)]);
      assert.equal(stdout, 'started\n');
      const fresh = new RuncRuntime({ execRoot: fx.execRoot, logger: quietLogger });
      assert.equal((await fresh.state(spec.id)).status, 'running');
      const session = await fresh.attach(spec.id, { stdin: true });
      const output = collect(session.output);
      session.stdin!.write('again\n');
      const exit = await fresh.waitExit(spec.id);
      assert.equal(exit.exitCode, 3);
      assert.equal((await output).stdout, 'after again\n');
      const logged = await collect(readLogs(spec.logPath, { follow: false, stdout: true, stderr: true, timestamps: false }));
      assert.equal(logged.stdout, 'before\nafter again\n');
      await fresh.delete(spec.id);
    } finally {
      await rt.delete(spec.id);
    }
  });
});
