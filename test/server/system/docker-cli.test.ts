/**
 * The system endpoints through the real docker CLI 28 against a Berth this file starts:
 * `docker version`, `docker info`, `docker system df` print cleanly with sane values, and
 * `docker events --since/--until` with filters replays exactly the expected events, also
 * across a restart of Berth (the journal).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startBerth, type BerthInstance } from '../../support/berth-harness.js';
import { docker, dockerOk } from '../../support/docker-cli.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../../support/test-images.js';

let berth: BerthInstance;
const ok = (args: string[]) => dockerOk(berth.env, args).then((out) => out.trim());

/** A time the CLI accepts for --since/--until: unix seconds with nanoseconds. */
const unixNow = (): string => (Date.now() / 1000).toFixed(3);

interface CliEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  status?: string;
  id?: string;
  from?: string;
  time: number;
  timeNano: number;
}

async function events(args: string[]): Promise<CliEvent[]> {
  const out = await ok(['events', '--format', '{{json .}}', ...args]);
  return out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as CliEvent);
}

describe('system endpoints through the docker CLI', () => {
  let since: string;
  let createdId: string;

  before(async () => {
    berth = await startBerth();
    since = unixNow();
    await ok(['load', '-i', await busyboxImageTar()]);
    createdId = await ok(['create', '--name', 'ev-a', '--label', 'tier=front', BUSYBOX_IMAGE, 'true']);
    await ok(['create', '--name', 'ev-b', '--label', 'tier=back', BUSYBOX_IMAGE, 'true']);
  });
  after(async () => {
    await berth?.stop();
  });

  test('docker version names Berth, its API range and runc', async () => {
    const result = await docker(berth.env, ['version']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /^Server: Berth$/m);
    assert.match(result.stdout, /^ Engine:$/m);
    assert.match(result.stdout, /API version:\s+1\.47 \(minimum version 1\.24\)/);
    assert.match(result.stdout, /Go version:\s+node v\d+/);
    assert.match(result.stdout, /OS\/Arch:\s+linux\/\w+/);
    assert.match(result.stdout, /^ runc:\n  Version:\s+\S+/m);
    const server = JSON.parse(await ok(['version', '--format', '{{json .Server}}'])) as { Version: string };
    assert.match(server.Version, /^\d+\.\d+\.\d+/);
  });

  test('docker info prints cleanly with this host and this Berth', async () => {
    const result = await docker(berth.env, ['info']);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /ERROR/);
    const out = result.stdout;
    assert.match(out, /^ Containers: 2$/m);
    assert.match(out, /^  Stopped: 2$/m);
    assert.match(out, /^ Images: 1$/m);
    assert.match(out, /^ Storage Driver: overlayfs$/m);
    assert.match(out, /^ Cgroup Driver: cgroupfs$/m);
    assert.match(out, /^ Cgroup Version: [12]$/m);
    assert.match(out, /^ Swarm: inactive$/m);
    assert.match(out, /^ Default Runtime: runc$/m);
    assert.match(out, /^  seccomp\n   Profile: builtin$/m);
    assert.match(out, /^ OSType: linux$/m);
    assert.ok(out.includes(`Docker Root Dir: ${berth.dataRoot}`), out);
    const id1 = await ok(['info', '--format', '{{.ID}}']);
    assert.match(id1, /^[0-9a-f-]{36}$/);
    const cpus = Number(await ok(['info', '--format', '{{.NCPU}}']));
    assert.ok(cpus >= 1);
  });

  test('docker system df counts the loaded image and the created containers', async () => {
    const result = await docker(berth.env, ['system', 'df']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Images\s+1\s+1\s+/m); // one image, used by the containers
    assert.match(result.stdout, /^Containers\s+2\s+0\s+/m); // two, none running
    assert.match(result.stdout, /^Local Volumes\s+0\s+0\s+/m);
    assert.match(result.stdout, /^Build Cache\s+0\s+0\s+/m);
    const verbose = await docker(berth.env, ['system', 'df', '-v']);
    assert.equal(verbose.code, 0, verbose.stderr);
    assert.ok(verbose.stdout.includes('ev-a'), verbose.stdout);
  });

  test('docker events --since --until replays the filtered history and exits', async () => {
    const until = unixNow();
    const byName = await events(['--since', since, '--until', until, '--filter', 'container=ev-a']);
    assert.deepEqual(byName.map((e) => [e.Type, e.Action, e.Actor.Attributes.name]), [['container', 'create', 'ev-a']]);
    const [created] = byName;
    assert.equal(created?.Actor.ID, createdId);
    assert.equal(created?.id, createdId);
    assert.equal(created?.status, 'create');
    assert.equal(created?.from, created?.Actor.Attributes.image);

    const byLabel = await events(['--since', since, '--until', until, '--filter', 'label=tier=back', '--filter', 'event=create']);
    assert.deepEqual(byLabel.map((e) => e.Actor.Attributes.name), ['ev-b']);

    const both = await events(['--since', since, '--until', until, '--filter', 'type=container']);
    assert.deepEqual(both.map((e) => e.Actor.Attributes.name), ['ev-a', 'ev-b']);

    // A duration for --since; the CLI rounds durations to whole seconds, so --until stays exact.
    const relative = await events(['--since', '10m', '--until', until, '--filter', 'type=container', '--filter', 'container=ev-b']);
    assert.deepEqual(relative.map((e) => e.Action), ['create']);
  });

  test('docker events streams a live event, then ends at --until', async () => {
    const until = ((Date.now() + 4000) / 1000).toFixed(3);
    const started = Date.now();
    const pending = events(['--since', unixNow(), '--until', until, '--filter', 'container=ev-live']);
    await new Promise((r) => setTimeout(r, 500));
    await ok(['create', '--name', 'ev-live', BUSYBOX_IMAGE, 'true']);
    const got = await pending;
    assert.deepEqual(got.map((e) => [e.Action, e.Actor.Attributes.name]), [['create', 'ev-live']]);
    assert.ok(Date.now() - started < 15_000);
    await ok(['rm', 'ev-live']);
  });

  test('bad input gets a clear error', async () => {
    const badFilter = await docker(berth.env, ['events', '--since', '1', '--until', '2', '--filter', 'colour=red']);
    assert.notEqual(badFilter.code, 0);
    assert.match(badFilter.stderr, /invalid filter 'colour'/);
    const badDf = await fetchDf(berth.socket, 'widget');
    assert.deepEqual(badDf, { status: 400, body: { message: 'unknown object type: widget' } });
  });

  test('history survives a restart of Berth', async () => {
    const until = unixNow();
    const idBefore = await ok(['info', '--format', '{{.ID}}']);
    await berth.restart();
    const replayed = await events(['--since', since, '--until', until, '--filter', 'container=ev-a']);
    assert.deepEqual(replayed.map((e) => e.Action), ['create']);
    assert.equal(await ok(['info', '--format', '{{.ID}}']), idBefore, 'the engine id is stable per data root');
  });
});

/** GET /system/df?type=<type> on the unix socket, as a raw client would. */
async function fetchDf(socket: string, type: string): Promise<{ status: number; body: unknown }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path: `/v1.47/system/df?type=${type}` }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
    req.on('error', reject);
    req.end();
  });
}
