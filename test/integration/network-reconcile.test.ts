/**
 * Network reconcile: Berth is SIGKILLed with networked containers running; while it is down a
 * container dies, the instance's firewall table and a network's bridge vanish, and a stray
 * veth and namespace file appear (as a crash mid-attach would leave them). After a restart
 * the host matches the records again — published ports and names work, the dead container's
 * namespace and veth are gone, the strays are removed, nothing is missing — and once every
 * container and network is removed, only the default bridge and the table remain.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { busyboxImageTar } from '../support/test-images.js';
import { networkLeftovers, sleep } from '../support/cleanup.js';

const run = promisify(execFile);
const IMAGE = 'berth-test/busybox';

function readLine(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(data);
    }, 2000);
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data);
      }
    });
    socket.on('error', () => {
      clearTimeout(timer);
      resolve('');
    });
  });
}

async function readEventually(port: number, expected: string): Promise<string> {
  let last = '';
  for (let i = 0; i < 30; i++) {
    last = await readLine(port);
    if (last.includes(expected)) return last;
    await sleep(150);
  }
  return last;
}

describe('network reconcile', () => {
  let berth: BerthInstance;

  before(async () => {
    const [b, tar] = await Promise.all([startBerth(), busyboxImageTar()]);
    berth = b;
    await dockerOk(berth.env, ['load', '-i', tar]);
  });

  after(async () => {
    await berth?.stop();
    const left = await networkLeftovers(berth.dataRoot);
    assert.deepEqual([left.bridges, left.veths, left.table], [[], [], false], 'the harness removed the instance\'s network');
  });

  test('after SIGKILL and a restart the host matches the records: nothing leaked, nothing missing', async (t) => {
    const env = berth.env;
    const port = 21000 + Math.floor(Math.random() * 20000);
    await dockerOk(env, ['network', 'create', 'r-net']);
    await dockerOk(env, ['run', '-d', '--name', 'r-server', '--network', 'r-net', '--network-alias', 'r-alias', '-p', `127.0.0.1:${port}:80`, IMAGE, 'sh', '-c', 'while true; do echo r-hello | nc -l -p 80; done']);
    await dockerOk(env, ['run', '-d', '--name', 'r-victim', '--network', 'r-net', IMAGE, 'sleep', '600']);
    await dockerOk(env, ['run', '-d', '--name', 'r-default', IMAGE, 'sleep', '600']);
    assert.match(await readEventually(port, 'r-hello'), /r-hello/);
    const before = await networkLeftovers(berth.dataRoot);
    assert.equal(before.bridges.length, 2);
    assert.equal(before.veths.length, 3);
    assert.ok(before.table);
    const victimPid = Number((await dockerOk(env, ['inspect', '--format', '{{.State.Pid}}', 'r-victim'])).trim());
    const victimId = (await dockerOk(env, ['inspect', '--format', '{{.Id}}', 'r-victim'])).trim();
    const netBridge = `br-${before.instanceId}${(await dockerOk(env, ['network', 'inspect', '--format', '{{.Id}}', 'r-net'])).trim().slice(0, 6)}`;
    assert.ok(before.bridges.includes(netBridge));

    await berth.kill();
    // Published ports keep working without Berth: the rules are the kernel's.
    assert.match(await readLine(port), /r-hello/, 'ports answer while Berth is down');
    process.kill(victimPid, 'SIGKILL');
    await run('nft', ['delete', 'table', 'ip', `berth_${before.instanceId}`]);
    await run('ip', ['link', 'del', netBridge]);
    const strayVeth = `vb${before.instanceId}zzzzzzz`;
    await run('ip', ['link', 'add', strayVeth, 'type', 'veth', 'peer', 'name', `vt${before.instanceId}stray`]);
    const netnsDir = join(berth.execRoot, 'netns');
    await mkdir(netnsDir, { recursive: true });
    const strayNs = 'f'.repeat(64);
    await writeFile(join(netnsDir, strayNs), '');

    try {
      await berth.restart();
      const after = await networkLeftovers(berth.dataRoot);
      assert.ok(after.table, 'the firewall table is back');
      assert.deepEqual(after.bridges.sort(), before.bridges.sort(), 'the lost bridge is back, nothing more');
      assert.equal(after.veths.length, 2, `veths: ${after.veths.join(', ')}`);
      assert.ok(!after.veths.includes(strayVeth), 'the stray veth is gone');
      const files = await readdir(netnsDir);
      assert.ok(!files.includes(victimId), 'the dead container\'s namespace file is gone');
      assert.ok(!files.includes(strayNs), 'the stray namespace file is gone');
      assert.equal((await dockerOk(env, ['inspect', '--format', '{{.State.Running}}', 'r-victim'])).trim(), 'false');
      assert.equal(await dockerOk(env, ['network', 'inspect', '--format', '{{len .Containers}}', 'r-net']), '1\n');

      assert.match(await readEventually(port, 'r-hello'), /r-hello/, 'the published port answers');
      // The server's nc loop is briefly deaf between two connections: retry each name a little.
      const byName = await docker(env, [
        'run', '--rm', '--network', 'r-net', IMAGE, 'sh', '-c',
        'for n in r-alias r-server; do for i in 1 2 3 4 5 6; do nc -w 3 $n 80 </dev/null | grep -q r-hello && { echo ok-$n; break; }; sleep 0.3; done; done',
      ]);
      assert.equal(byName.stdout, 'ok-r-alias\nok-r-server\n', byName.stderr);
      assert.equal(await dockerOk(env, ['port', 'r-server']), `80/tcp -> 127.0.0.1:${port}\n`);
      // The dead container starts again with networking.
      await dockerOk(env, ['start', 'r-victim']);
      const ping = await docker(env, ['exec', 'r-victim', 'ping', '-c', '1', '-W', '2', 'r-server']);
      assert.equal(ping.code, 0, ping.stdout + ping.stderr);

      await dockerOk(env, ['rm', '-f', 'r-server', 'r-victim', 'r-default']);
      await dockerOk(env, ['network', 'rm', 'r-net']);
      const end = await networkLeftovers(berth.dataRoot);
      assert.deepEqual(end.veths, []);
      assert.equal(end.bridges.length, 1, 'only the default bridge remains');
      assert.deepEqual(await readdir(netnsDir), []);
      const rules = (await run('nft', ['list', 'table', 'ip', `berth_${before.instanceId}`])).stdout;
      assert.doesNotMatch(rules, /dnat to/, 'no port rule remains');
      assert.equal(await readLine(port), '', 'the port is closed');
    } catch (err) {
      t.diagnostic(`berth output (tail):\n${berth.logs().slice(-3000)}`);
      throw err;
    }
  });
});
