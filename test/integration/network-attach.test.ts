/**
 * Attaching containers to networks (the native helper over rtnetlink, docs/networking.md),
 * through the docker CLI: a tenant's running container, whose network namespace its user
 * namespace owns, is hot-plugged into a second network, reaches a container there and is
 * found there by its alias, and unplugged again; an attach that fails (the network's bridge removed behind
 * Berth's back) leaves no veth, namespace file or endpoint behind, at start and at connect;
 * and a restart repairs the bridge so that the same attach then works.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { docker, dockerOk } from '../support/docker-cli.js';
import { networkLeftovers } from '../support/cleanup.js';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

const run = promisify(execFile);

describe('network attach', () => {
  let t: TenantBerth;
  let acme: NodeJS.ProcessEnv;

  before(async () => {
    t = await startTenantBerth();
    acme = await t.createTenant('acme');
    const tar = await busyboxImageTar();
    await dockerOk(acme, ['load', '-i', tar]);
    await dockerOk(t.berth.env, ['load', '-i', tar]);
  });
  after(async () => {
    await t?.stop();
  });

  const veths = async (): Promise<string[]> => (await networkLeftovers(t.berth.dataRoot)).veths.sort();
  const netnsFiles = async (): Promise<string[]> => (await readdir(join(t.berth.execRoot, 'netns')).catch(() => [] as string[])).sort();

  test("a tenant's running container is plugged into a second network, reaches a container there, is found there by its alias, and is unplugged", async () => {
    await dockerOk(acme, ['network', 'create', 'front']);
    await dockerOk(acme, ['network', 'create', 'back']);
    await dockerOk(acme, ['run', '-d', '--name', 'store', '--network', 'back', '--network-alias', 'db', BUSYBOX_IMAGE, 'sh', '-c', 'while true; do echo store-says-hi | nc -l -p 80; done']);
    await dockerOk(acme, ['run', '-d', '--name', 'app', '--network', 'front', BUSYBOX_IMAGE, 'sleep', '600']);
    const hostEnds = await veths();

    const storeIp = (await dockerOk(acme, ['inspect', '--format', '{{(index .NetworkSettings.Networks "back").IPAddress}}', 'store'])).trim();
    const unreachable = await docker(acme, ['exec', 'app', 'sh', '-c', `nc -w 2 ${storeIp} 80 </dev/null; echo done`]);
    assert.doesNotMatch(unreachable.stdout, /store-says-hi/, 'control: not reachable before the connect');

    await dockerOk(acme, ['network', 'connect', '--alias', 'app-back', 'back', 'app']);
    const ip = (await dockerOk(acme, ['inspect', '--format', '{{(index .NetworkSettings.Networks "back").IPAddress}} {{(index .NetworkSettings.Networks "back").MacAddress}}', 'app'])).trim().split(' ');
    const inside = await dockerOk(acme, ['exec', 'app', 'sh', '-c', 'ip -o -4 addr show dev eth1; cat /sys/class/net/eth1/address']);
    assert.match(inside, new RegExp(`inet ${ip[0]!.replace(/\./g, '\\.')}/`), 'eth1 has the address inspect reports');
    assert.match(inside, new RegExp(`^${ip[1]}$`, 'm'), 'and the MAC');
    const routes = await dockerOk(acme, ['exec', 'app', 'ip', 'route', 'show', 'default']);
    assert.match(routes, /dev eth0/, 'the default route stays on the first network');
    // By address: app's resolver is front's embedded DNS, which knows front's names only (a gap
    // of the embedded DNS, not of attach: dockerd resolves every network's names).
    assert.match((await dockerOk(acme, ['exec', 'app', 'sh', '-c', `nc -w 3 ${storeIp} 80 </dev/null`])).trim(), /store-says-hi/);
    assert.equal((await veths()).length, hostEnds.length + 1, 'one more host end');
    // The other side resolves the new alias too.
    assert.match(await dockerOk(acme, ['exec', 'store', 'nslookup', 'app-back']), new RegExp(ip[0]!.replace(/\./g, '\\.')));

    await dockerOk(acme, ['network', 'disconnect', 'back', 'app']);
    assert.doesNotMatch(await dockerOk(acme, ['exec', 'app', 'ls', '/sys/class/net']), /eth1/);
    assert.deepEqual(await veths(), hostEnds, 'the host end went with the disconnect');
    await dockerOk(acme, ['rm', '-f', 'app', 'store']);
    await dockerOk(acme, ['network', 'rm', 'front', 'back']);
  });

  test('an attach that fails leaves no veth, namespace file or endpoint; a restart repairs the bridge and the attach works', async () => {
    const env = t.berth.env;
    await dockerOk(env, ['network', 'create', 'broken']);
    await dockerOk(env, ['run', '-d', '--name', 'victim', BUSYBOX_IMAGE, 'sleep', '600']);
    const netId = (await dockerOk(env, ['network', 'inspect', '--format', '{{.Id}}', 'broken'])).trim();
    const { instanceId } = await networkLeftovers(t.berth.dataRoot);
    const bridge = `br-${instanceId}${netId.slice(0, 6)}`;
    const [hostEnds, files] = [await veths(), await netnsFiles()];
    await run('ip', ['link', 'del', bridge]);

    const connect = await docker(env, ['network', 'connect', 'broken', 'victim']);
    assert.notEqual(connect.code, 0, 'connect to a network without its bridge fails');
    assert.deepEqual(await veths(), hostEnds, 'no veth left by the failed connect');
    const networks = await dockerOk(env, ['inspect', '--format', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}', 'victim']);
    assert.doesNotMatch(networks, /broken/, 'no endpoint left by the failed connect');
    assert.doesNotMatch(await dockerOk(env, ['exec', 'victim', 'ls', '/sys/class/net']), /eth1/);

    const start = await docker(env, ['run', '--rm', '--network', 'broken', BUSYBOX_IMAGE, 'true']);
    assert.notEqual(start.code, 0, 'a start on a network without its bridge fails');
    assert.deepEqual(await veths(), hostEnds, 'no veth left by the failed start');
    assert.deepEqual(await netnsFiles(), files, 'no namespace file left by the failed start');

    await t.berth.restart();
    await dockerOk(env, ['network', 'connect', 'broken', 'victim']);
    assert.match(await dockerOk(env, ['exec', 'victim', 'ip', '-o', '-4', 'addr']), /eth1/);
    assert.match(await dockerOk(env, ['run', '--rm', '--network', 'broken', BUSYBOX_IMAGE, 'ip', '-o', '-4', 'addr']), /eth0/);
    await dockerOk(env, ['rm', '-f', 'victim']);
    await dockerOk(env, ['network', 'rm', 'broken']);
  });
});
