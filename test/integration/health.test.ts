/**
 * Health checks run by Berth, through the docker CLI: --health-* flags and an image's
 * HEALTHCHECK, transitions starting → healthy → unhealthy with `health_status` events, the
 * State.Health log, `ps` status and `--filter health=`, probe timeouts, checks stopping with
 * their container and resuming after Berth is SIGKILLed and restarted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { busyboxImageTar, SEEDED_IMAGE, seededVolumeImageTar } from '../support/test-images.js';
import { sleep } from '../support/cleanup.js';
import { apiPost } from '../support/api-request.js';

const IMAGE = 'berth-test/busybox';

interface Health {
  Status: string;
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return check();
}

describe('health checks', { concurrency: 1 }, () => {
  let berth: BerthInstance;
  const ok = (args: string[]): Promise<string> => dockerOk(berth.env, args);
  const health = async (name: string): Promise<Health | null> => JSON.parse(await ok(['inspect', '-f', '{{json .State.Health}}', name])) as Health | null;
  const status = async (name: string): Promise<string | undefined> => (await health(name))?.Status;

  before(async () => {
    const [b, tar, seeded] = await Promise.all([startBerth(), busyboxImageTar(), seededVolumeImageTar()]);
    berth = b;
    await dockerOk(berth.env, ['load', '-i', tar]);
    await dockerOk(berth.env, ['load', '-i', seeded]);
  });

  after(async () => {
    await berth?.stop();
  });

  test('--health-cmd: starting, then healthy, then unhealthy, with events, ps status and filters', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    await ok([
      'run', '-d', '--name', 'ht-flags', '--health-cmd', 'cat /tmp/ok', '--health-interval', '300ms', '--health-retries', '2',
      '--health-timeout', '2s', IMAGE, 'sh', '-c', 'sleep 1.5; echo fine > /tmp/ok; sleep 2; rm /tmp/ok; sleep 300',
    ]);
    assert.equal(await status('ht-flags'), 'starting');
    assert.match(await ok(['ps', '--filter', 'name=ht-flags', '--format', '{{.Status}}']), /^Up .* \(health: starting\)\n$/);
    assert.equal((await ok(['ps', '-q', '--filter', 'health=starting', '--filter', 'name=ht-flags'])).trim().length, 12);
    // Failing probes before the file exists: retries 2 makes it unhealthy, then the file makes it healthy.
    assert.ok(await eventually(async () => (await status('ht-flags')) === 'healthy', 8000), 'becomes healthy');
    const healthy = (await health('ht-flags'))!;
    assert.equal(healthy.FailingStreak, 0);
    assert.equal(healthy.Log.at(-1)!.ExitCode, 0);
    assert.equal(healthy.Log.at(-1)!.Output, 'fine\n');
    assert.ok(healthy.Log.length <= 5);
    assert.match(await ok(['ps', '--filter', 'name=ht-flags', '--format', '{{.Status}}']), /^Up .* \(healthy\)\n$/);
    assert.equal((await ok(['ps', '--filter', 'health=healthy', '--format', '{{.Names}}'])).trim(), 'ht-flags');
    assert.ok(await eventually(async () => (await status('ht-flags')) === 'unhealthy', 8000), 'becomes unhealthy');
    const unhealthy = (await health('ht-flags'))!;
    assert.ok(unhealthy.FailingStreak >= 2, JSON.stringify(unhealthy));
    assert.equal(unhealthy.Log.length, 5, 'the last five results are kept');
    assert.equal(unhealthy.Log.at(-1)!.ExitCode, 1);
    assert.match(unhealthy.Log.at(-1)!.Output, /can't open '\/tmp\/ok'/);
    assert.match(await ok(['ps', '--filter', 'name=ht-flags', '--format', '{{.Status}}']), /^Up .* \(unhealthy\)\n$/);
    assert.equal((await ok(['ps', '--filter', 'health=unhealthy', '--format', '{{.Names}}'])).trim(), 'ht-flags');
    assert.equal((await ok(['ps', '--filter', 'health=none', '--filter', 'name=ht-flags', '--format', '{{.Names}}'])).trim(), '');
    const events = await ok([
      'events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000) + 1),
      '--filter', 'container=ht-flags', '--filter', 'event=health_status', '--format', '{{.Action}} {{.Actor.Attributes.name}}',
    ]);
    const actions = events.split('\n').filter((l) => l !== '');
    assert.ok(actions.includes('health_status: healthy ht-flags'), events);
    assert.equal(actions.at(-1), 'health_status: unhealthy ht-flags', events);
    const bad = await docker(berth.env, ['ps', '--filter', 'health=great']);
    assert.equal(bad.stderr.trim(), 'Error response from daemon: Unrecognised filter value for health: great');
    await ok(['rm', '-f', 'ht-flags']);
  });

  test("an image's HEALTHCHECK runs; --no-healthcheck and flags override it", async () => {
    await ok(['run', '-d', '--name', 'ht-image', SEEDED_IMAGE, 'sh', '-c', 'touch /tmp/healthy; sleep 300']);
    const config = JSON.parse(await ok(['inspect', '-f', '{{json .Config.Healthcheck}}', 'ht-image'])) as Record<string, unknown>;
    assert.deepEqual(config, { Test: ['CMD-SHELL', 'test -f /tmp/healthy'], Interval: 500_000_000, Retries: 2 });
    assert.ok(await eventually(async () => (await status('ht-image')) === 'healthy', 5000));

    await ok(['run', '-d', '--name', 'ht-none', '--no-healthcheck', SEEDED_IMAGE, 'sleep', '300']);
    assert.equal(await health('ht-none'), null);
    assert.doesNotMatch(await ok(['ps', '--filter', 'name=ht-none', '--format', '{{.Status}}']), /health/);
    assert.equal((await ok(['ps', '--filter', 'health=none', '--filter', 'name=ht-none', '--format', '{{.Names}}'])).trim(), 'ht-none');

    // Only the interval is given: the image's test and retries stay (dockerd's field-wise merge).
    await ok(['run', '-d', '--name', 'ht-merge', '--health-interval', '200ms', SEEDED_IMAGE, 'sleep', '300']);
    const merged = JSON.parse(await ok(['inspect', '-f', '{{json .Config.Healthcheck}}', 'ht-merge'])) as Record<string, unknown>;
    assert.deepEqual(merged, { Test: ['CMD-SHELL', 'test -f /tmp/healthy'], Interval: 200_000_000, Retries: 2 });
    assert.ok(await eventually(async () => (await status('ht-merge')) === 'unhealthy', 5000));
    await ok(['rm', '-f', 'ht-image', 'ht-none', 'ht-merge']);
  });

  test('a probe that outlives its timeout fails with exit code -1 and dockerd\'s message', async () => {
    await ok(['run', '-d', '--name', 'ht-slow', '--health-cmd', 'sleep 5', '--health-interval', '300ms', '--health-timeout', '200ms', '--health-retries', '1', IMAGE, 'sleep', '300']);
    assert.ok(await eventually(async () => (await status('ht-slow')) === 'unhealthy', 5000));
    const last = (await health('ht-slow'))!.Log.at(-1)!;
    assert.equal(last.ExitCode, -1);
    assert.equal(last.Output, 'Health check exceeded timeout (200ms)');
    // The timed-out probes were killed: no pile of sleeping probes in the container.
    const ps = await ok(['exec', 'ht-slow', 'ps', '-o', 'args']);
    assert.ok(ps.split('\n').filter((l) => l.startsWith('sleep 5')).length <= 1, ps);
    await ok(['rm', '-f', 'ht-slow']);
  });

  test('invalid health options are refused as dockerd refuses them', async () => {
    // The docker CLI checks some of these itself; the API must refuse them too.
    const cases: [Record<string, unknown>, string][] = [
      [{ Test: ['CMD', 'true'], Retries: -1 }, 'Retries in Healthcheck cannot be negative'],
      [{ Test: ['CMD', 'true'], Interval: 500_000 }, 'Interval in Healthcheck cannot be less than 1ms'],
      [{ Test: ['CMD', 'true'], Timeout: 10 }, 'Timeout in Healthcheck cannot be less than 1ms'],
      [{ Test: ['CMD', 'true'], StartPeriod: 10 }, 'StartPeriod in Healthcheck cannot be less than 1ms'],
    ];
    const before = await ok(['ps', '-aq']);
    for (const [check, message] of cases) {
      const r = await apiPost(berth.socket, '/containers/create', { Image: IMAGE, Healthcheck: check });
      assert.equal(r.status, 400, r.body);
      assert.equal(JSON.parse(r.body).message, message);
    }
    assert.equal(await ok(['ps', '-aq']), before, 'nothing was created');
  });

  test('checks stop with their container and resume after Berth is SIGKILLed', async () => {
    await ok(['run', '-d', '--name', 'ht-stop', '--health-cmd', 'true', '--health-interval', '200ms', IMAGE, 'sleep', '300']);
    assert.ok(await eventually(async () => (await status('ht-stop')) === 'healthy', 5000));
    await ok(['stop', '-t', '0', 'ht-stop']);
    const atStop = (await health('ht-stop'))!;
    await sleep(800);
    assert.deepEqual((await health('ht-stop'))!.Log, atStop.Log, 'no probe runs while the container is stopped');
    await ok(['start', 'ht-stop']);
    assert.equal(await status('ht-stop'), 'starting', 'a start begins again at starting');
    assert.ok(await eventually(async () => (await status('ht-stop')) === 'healthy', 5000));

    await ok(['run', '-d', '--name', 'ht-crash', '--health-cmd', 'test ! -f /tmp/bad', '--health-interval', '200ms', '--health-retries', '1', IMAGE, 'sleep', '300']);
    assert.ok(await eventually(async () => (await status('ht-crash')) === 'healthy', 5000));
    await berth.kill();
    await berth.restart();
    const probesBefore = (await health('ht-crash'))!.Log.at(-1)!.Start;
    assert.ok(await eventually(async () => (await health('ht-crash'))!.Log.at(-1)!.Start !== probesBefore, 5000), 'probes resume after the restart');
    await ok(['exec', 'ht-crash', 'touch', '/tmp/bad']);
    assert.ok(await eventually(async () => (await status('ht-crash')) === 'unhealthy', 5000), 'and still change the status');
    await ok(['rm', '-f', 'ht-stop', 'ht-crash']);
  });
});
