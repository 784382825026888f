/**
 * A SQLite installation moves to etcd with `berth store migrate`, and `berth up --store etcd://`
 * then serves the same containers, volumes, networks and images to the docker CLI: names stay
 * unique, freed names can be reused, state survives a SIGKILL of Berth. Migration is
 * idempotent, refuses a target that holds something else, and --force makes it a copy.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { operatorContext } from '../../src/common/context.js';
import { EtcdStore } from '../../src/server/store/etcd/etcd-store.js';
import { BERTH_ENTRY, startBerth, type BerthInstance } from '../support/berth-harness.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { EtcdCluster } from '../support/etcd-harness.js';
import { busyboxImageTar } from '../support/test-images.js';

const IMAGE = 'berth-test/busybox';

function berthCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BERTH_ENTRY, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('berth on etcd, after berth store migrate', () => {
  let cluster: EtcdCluster | undefined;
  let berth: BerthInstance | undefined;
  // Berth's arguments; the etcd store is added before the restart that moves Berth onto it.
  const upArgs: string[] = [];

  before(async () => {
    const [c, b, tar] = await Promise.all([EtcdCluster.start(1), startBerth({ extraArgs: upArgs }), busyboxImageTar()]);
    cluster = c;
    berth = b;
    await dockerOk(berth.env, ['load', '-i', tar]);
  });

  after(async () => {
    await berth?.stop();
    await cluster?.stop();
  });

  test('records move with ids and names; the docker CLI works on the etcd store', async (t) => {
    const b = berth!;
    const url = cluster!.url();
    try {
      const webId = (await dockerOk(b.env, ['create', '--name', 'web', IMAGE, 'sleep', '1000'])).trim();
      await dockerOk(b.env, ['volume', 'create', 'vol1']);
      const netId = (await dockerOk(b.env, ['network', 'create', 'net1'])).trim();
      const imageId = (await dockerOk(b.env, ['image', 'inspect', '--format', '{{.Id}}', IMAGE])).trim();
      await b.kill();

      const first = await berthCli(['store', 'migrate', '--from', b.dataRoot, '--to', url]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /verified/);
      assert.match(first.stdout, /container default: 1/);
      const copied = Number(/(\d+) copied/.exec(first.stdout)?.[1]);
      assert.ok(copied > 3, first.stdout);
      const again = await berthCli(['store', 'migrate', '--from', b.dataRoot, '--to', url]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, new RegExp(`0 copied, ${copied} already there`));

      upArgs.push('--store', url);
      await b.restart();
      assert.equal((await dockerOk(b.env, ['inspect', '--format', '{{.Id}} {{.Name}}', 'web'])).trim(), `${webId} /web`);
      assert.equal((await dockerOk(b.env, ['inspect', '--format', '{{.Id}}', webId.slice(0, 12)])).trim(), webId);
      assert.match(await dockerOk(b.env, ['volume', 'ls', '--format', '{{.Name}}']), /^vol1$/m);
      assert.equal((await dockerOk(b.env, ['network', 'inspect', '--format', '{{.Id}}', 'net1'])).trim(), netId);
      assert.equal((await dockerOk(b.env, ['image', 'inspect', '--format', '{{.Id}}', IMAGE])).trim(), imageId);

      // The records are in etcd, under the default prefix.
      const reader = new EtcdStore({ endpoints: cluster!.endpoints() });
      try {
        assert.equal((await reader.get(operatorContext(), 'container', webId)).name, 'web');
      } finally {
        await reader.close();
      }

      // Names stay unique, and a freed name is free again.
      const taken = await docker(b.env, ['create', '--name', 'web', IMAGE]);
      assert.notEqual(taken.code, 0);
      assert.match(taken.stderr, /already in use|Conflict/i);
      await dockerOk(b.env, ['rename', 'web', 'web2']);
      const reuse = (await dockerOk(b.env, ['create', '--name', 'web', IMAGE, 'true'])).trim();
      await dockerOk(b.env, ['rm', reuse]);
      assert.equal((await dockerOk(b.env, ['run', '--rm', '--name', 'echo', IMAGE, 'echo', 'hello from etcd'])).trim(), 'hello from etcd');
      await dockerOk(b.env, ['start', 'web2']);

      // Acknowledged state survives a SIGKILL of Berth.
      await dockerOk(b.env, ['volume', 'create', 'vol2']);
      await b.kill();
      await b.restart();
      assert.equal((await dockerOk(b.env, ['inspect', '--format', '{{.Name}} {{.State.Running}}', webId])).trim(), '/web2 true');
      assert.match(await dockerOk(b.env, ['volume', 'ls', '--format', '{{.Name}}']), /^vol2$/m);
      await dockerOk(b.env, ['rm', '-f', 'web2']);
      await b.kill();

      // The target now differs from the SQLite source: refused, then copied over with --force.
      const refused = await berthCli(['store', 'migrate', '--from', b.dataRoot, '--to', url]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /--force/);
      const forced = await berthCli(['store', 'migrate', '--from', b.dataRoot, '--to', url, '--force']);
      assert.equal(forced.code, 0, forced.stderr);
      assert.match(forced.stdout, /[1-9]\d* removed/);
      await b.restart();
      assert.equal((await dockerOk(b.env, ['inspect', '--format', '{{.Name}}', webId])).trim(), '/web');
      assert.doesNotMatch(await dockerOk(b.env, ['volume', 'ls', '--format', '{{.Name}}']), /^vol2$/m);
    } catch (err) {
      t.diagnostic(`berth output (tail):\n${b.logs().slice(-4000)}`);
      throw err;
    }
  });

  test('bad store arguments are refused with a message', async () => {
    const noStore = await berthCli(['store', 'migrate', '--from', '/nonexistent-berth-root', '--to', cluster!.url()]);
    assert.equal(noStore.code, 1);
    assert.match(noStore.stderr, /no Berth store at/);
    const badUrl = await berthCli(['store', 'migrate', '--from', berth!.dataRoot, '--to', 'http://127.0.0.1:2379']);
    assert.equal(badUrl.code, 1);
    assert.match(badUrl.stderr, /is not etcd:\/\/host:port/);
    const badPort = await berthCli(['store', 'migrate', '--from', berth!.dataRoot, '--to', 'etcd://127.0.0.1:99999']);
    assert.equal(badPort.code, 1);
    assert.match(badPort.stderr, /is not host:port/);
    // berth up refuses a bad --store before it touches the host.
    const root = join(berth!.baseDir, 'never-created');
    const badUp = await berthCli(['up', '--store', 'etcd://nohost', '--data-root', root, '--exec-root', `${root}-exec`, '-H', `unix://${root}.sock`]);
    assert.notEqual(badUp.code, 0);
    assert.match(badUp.stderr, /"nohost" in store "etcd:\/\/nohost" is not host:port/);
    assert.equal(existsSync(root), false);
  });
});
