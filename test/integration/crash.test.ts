/**
 * Crash recovery: containers outlive a SIGKILLed Berth, and a Berth restarted on the same
 * roots sees the truth — running containers still running with their logs intact, exits that
 * happened while it was down recorded with their codes, and restart policies applied to them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { busyboxImageTar } from '../support/test-images.js';
import { sleep } from '../support/cleanup.js';

const IMAGE = 'berth-test/busybox';

async function inspect(berth: BerthInstance, name: string, format: string): Promise<string> {
  return (await dockerOk(berth.env, ['inspect', '--format', format, name])).trim();
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns whether it came true. */
async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return check();
}

describe('crash recovery', () => {
  let berth: BerthInstance | undefined;

  before(async () => {
    const [b, tar] = await Promise.all([startBerth(), busyboxImageTar()]);
    berth = b;
    await dockerOk(berth.env, ['load', '-i', tar]);
  });

  after(async () => {
    await berth?.stop();
  });

  test('containers survive SIGKILL of Berth and a restart sees what happened meanwhile', async (t) => {
    const b = berth!;
    try {
      await crashAndRecover(b);
    } catch (err) {
      t.diagnostic(`berth output (tail):\n${b.logs().slice(-4000)}`);
      throw err;
    }
  });
});

async function crashAndRecover(b: BerthInstance): Promise<void> {
    await dockerOk(b.env, [
      'run', '-d', '--name', 'crash-logger', IMAGE,
      'sh', '-c', 'i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done',
    ]);
    await dockerOk(b.env, ['run', '-d', '--name', 'crash-exit7', IMAGE, 'sh', '-c', 'sleep 2; exit 7']);
    // First life exits with 3 after 1 s (while Berth is down); the restarted life finds the
    // marker in its own rootfs and stays up, so "running after restart" is unambiguous.
    await dockerOk(b.env, [
      'run', '-d', '--name', 'crash-always', '--restart', 'always', IMAGE,
      'sh', '-c', 'if [ -f /marker ]; then exec sleep 600; fi; touch /marker; sleep 1; exit 3',
    ]);
    const loggerPid = await inspect(b, 'crash-logger', '{{.State.Pid}}');
    assert.notEqual(loggerPid, '0');
    await sleep(300);

    await b.kill();
    await sleep(3000);
    await b.restart();

    // The logging container kept running through the crash: same process, still up.
    assert.equal(await inspect(b, 'crash-logger', '{{.State.Status}} {{.State.Pid}}'), `running ${loggerPid}`);

    // Its log has every line, across the time Berth was down, and keeps growing.
    await sleep(500);
    const logs = await dockerOk(b.env, ['logs', 'crash-logger']);
    const lines = logs.split('\n').filter((l) => l !== '');
    assert.ok(lines.length >= 30, `expected at least 30 lines (3 s down at 10 lines/s), got ${lines.length}`);
    lines.forEach((line, i) => assert.equal(line, String(i), `log line ${i} is ${JSON.stringify(line)}: a gap or a duplicate`));

    // The container that exited while Berth was down carries its real exit code.
    assert.ok(
      await eventually(async () => (await inspect(b, 'crash-exit7', '{{.State.Status}}')) === 'exited', 5000),
      'crash-exit7 is not shown as exited',
    );
    assert.equal(await inspect(b, 'crash-exit7', '{{.State.Status}} {{.State.ExitCode}}'), 'exited 7');
    assert.equal((await dockerOk(b.env, ['wait', 'crash-exit7'])).trim(), '7');

    // The --restart always container that exited meanwhile was restarted by the new Berth.
    assert.ok(
      await eventually(async () => (await inspect(b, 'crash-always', '{{.State.Status}}')) === 'running', 10_000),
      `crash-always is not running again: ${await inspect(b, 'crash-always', '{{.State.Status}} {{.State.ExitCode}}')}`,
    );
    assert.ok(Number(await inspect(b, 'crash-always', '{{.RestartCount}}')) >= 1, 'RestartCount did not grow');

    // docker ps -a agrees with inspect.
    const ps = await dockerOk(b.env, ['ps', '-a', '--filter', 'name=crash-', '--format', '{{.Names}}|{{.Status}}']);
    const rows = ps.split('\n').filter((l) => l !== '').sort();
    assert.equal(rows.length, 3, ps);
    assert.match(rows[0]!, /^crash-always\|Up /);
    assert.match(rows[1]!, /^crash-exit7\|Exited \(7\) /);
    assert.match(rows[2]!, /^crash-logger\|Up /);

    const rm = await docker(b.env, ['rm', '-f', 'crash-logger', 'crash-exit7', 'crash-always']);
    assert.equal(rm.code, 0, rm.stderr);
}
