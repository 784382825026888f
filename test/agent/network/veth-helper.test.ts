import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { runTool } from '../../../src/agent/network/command.js';
import { NetnsDirectory } from '../../../src/agent/network/netns.js';
import { deleteLink, detachVeth, type VethAttachment } from '../../../src/agent/network/links.js';
import { deleteHostLinks, plugVeths } from '../../../src/agent/network/veth-helper.js';
import { helperAvailable } from '../../../src/agent/userns/helper.js';

/**
 * The native helper's net-* commands against the real kernel: a bridge and namespaces of this
 * test only (random names), looked at with `ip -j` the way an operator would.
 */

interface IpAddr {
  ifname: string;
  address: string;
  flags: string[];
  master?: string;
  mtu: number;
  operstate: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

const tag = randomBytes(3).toString('hex');
const bridge = `bvt${tag}`;
const hostEnd = (n: number): string => `vvt${tag}${n}`;
const containerA = randomBytes(32).toString('hex');
const containerB = randomBytes(32).toString('hex');

async function addrsIn(netns: string | undefined): Promise<IpAddr[]> {
  const argv = netns ? ['nsenter', `--net=${netns}`, 'ip', '-j', 'addr', 'show'] : ['ip', '-j', 'addr', 'show'];
  return JSON.parse(await runTool(argv[0]!, argv.slice(1))) as IpAddr[];
}

async function hostLink(name: string): Promise<IpAddr | undefined> {
  return (await addrsIn(undefined)).find((l) => l.ifname === name);
}

function veth(n: number, ifName: string, addressCidr: string, defaultGateway?: string): VethAttachment {
  return { ifName, hostName: hostEnd(n), bridge, mac: `02:42:0a:${tag.slice(0, 2)}:${tag.slice(2, 4)}:${(n + 2).toString(16).padStart(2, '0')}`, addressCidr, ...(defaultGateway ? { defaultGateway } : {}) };
}

const skip = process.getuid?.() !== 0 ? 'needs root' : !helperAvailable() ? 'native/bin/berth-userns is not built (scripts/install.sh)' : false;

describe('veth helper (rtnetlink)', { skip }, () => {
  let dir: string;
  let netns: NetnsDirectory;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-veth-'));
    netns = new NetnsDirectory(join(dir, 'netns'));
    await runTool('ip', ['-batch', '-'], `link add ${bridge} type bridge\naddr add 10.213.0.1/24 dev ${bridge}\nlink set ${bridge} up\n`);
  });

  after(async () => {
    await netns.remove(containerA).catch(() => undefined);
    await netns.remove(containerB).catch(() => undefined);
    for (let n = 0; n < 8; n++) await deleteLink(hostEnd(n)).catch(() => undefined);
    await deleteLink(bridge).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  test('a new namespace gets lo up, every veth addressed with its MAC, one default route, host ends on the bridge', async () => {
    const path = await netns.create(containerA, [veth(0, 'eth0', '10.213.0.2/24', '10.213.0.1'), veth(1, 'eth1', 'fd00:213::2/64')]);
    const inside = await addrsIn(path);
    assert.ok(inside.find((l) => l.ifname === 'lo')?.flags.includes('UP'), 'lo is up');
    const eth0 = inside.find((l) => l.ifname === 'eth0')!;
    assert.equal(eth0.address, veth(0, 'eth0', '').mac);
    assert.ok(eth0.flags.includes('UP'));
    assert.deepEqual(eth0.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`), ['10.213.0.2/24']);
    const eth1 = inside.find((l) => l.ifname === 'eth1')!;
    assert.ok(eth1.addr_info.some((a) => a.family === 'inet6' && a.local === 'fd00:213::2' && a.prefixlen === 64), 'IPv6 address on eth1');
    const routes = JSON.parse(await runTool('nsenter', [`--net=${path}`, 'ip', '-j', 'route', 'show', 'default'])) as { gateway: string; dev: string }[];
    assert.deepEqual(routes.map((r) => [r.gateway, r.dev]), [['10.213.0.1', 'eth0']]);
    for (const n of [0, 1]) {
      const end = await hostLink(hostEnd(n));
      assert.equal(end?.master, bridge, `${hostEnd(n)} is on the bridge`);
      assert.ok(end?.flags.includes('UP'));
    }
    // The pair carries traffic: a process in the namespace reaches a server on the bridge's address.
    const server = createServer((socket) => socket.end('hello from the host'));
    await new Promise<void>((resolve) => server.listen(0, '10.213.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const client = `require('net').connect(${port}, '10.213.0.1').on('data', (d) => process.stdout.write(d))`;
      assert.equal(await runTool('nsenter', [`--net=${path}`, process.execPath, '-e', client]), 'hello from the host');
    } finally {
      server.close();
    }
  });

  test('a tenant namespace (owned by a user namespace of the range) is attached the same way', async () => {
    const path = await netns.create(containerB, [veth(2, 'eth0', '10.213.0.3/24', '10.213.0.1')], { base: 3_000_000_000, count: 65536 });
    const eth0 = (await addrsIn(path)).find((l) => l.ifname === 'eth0');
    assert.ok(eth0?.addr_info.some((a) => a.local === '10.213.0.3'));
    assert.equal((await hostLink(hostEnd(2)))?.master, bridge);
    const owner = await runTool('nsenter', [`--net=${path}`, `--user=${netns.usernsPathOf(containerB)}`, 'cat', '/proc/self/uid_map']);
    assert.match(owner, /^\s*0\s+3000000000\s+65536\s*$/);
  });

  test('hot-plug into a running namespace, and unplug by deleting the host end', async () => {
    const path = netns.pathOf(containerA);
    await plugVeths(path, [veth(3, 'eth2', '10.213.0.4/24')]);
    assert.ok((await addrsIn(path)).some((l) => l.ifname === 'eth2'));
    assert.equal((await hostLink(hostEnd(3)))?.master, bridge);
    await detachVeth(hostEnd(3));
    assert.ok(!(await addrsIn(path)).some((l) => l.ifname === 'eth2'), 'the container end went with the host end');
  });

  test('a failing step leaves no pair of the call behind, and a taken host name is not deleted', async () => {
    const path = netns.pathOf(containerA);
    await runTool('ip', ['link', 'add', hostEnd(5), 'type', 'bridge']);
    await assert.rejects(plugVeths(path, [veth(4, 'eth3', '10.213.0.5/24'), veth(5, 'eth4', '10.213.0.6/24')]), /create veth eth4\/.*File exists/);
    assert.equal(await hostLink(hostEnd(4)), undefined, 'the first pair was rolled back');
    assert.ok(await hostLink(hostEnd(5)), 'the stranger with the taken name is still there');
    assert.ok(!(await addrsIn(path)).some((l) => l.ifname === 'eth3' || l.ifname === 'eth4'));
  });

  test('requests at once are answered each with its own outcome', async () => {
    const path = netns.pathOf(containerA);
    const results = await Promise.allSettled([
      plugVeths(path, [veth(4, 'eth3', '10.213.0.5/24')]),
      plugVeths(path, [{ ...veth(6, 'eth5', '10.213.0.7/24'), bridge: `bvx${tag}` }]),
      plugVeths(path, [veth(7, 'eth6', '10.213.0.8/24')]),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((results[1] as PromiseRejectedResult).reason), /eth5.*bridge bvx.*No such device/);
    const names = (await addrsIn(path)).map((l) => l.ifname);
    assert.ok(names.includes('eth3') && names.includes('eth6') && !names.includes('eth5'));
    await detachVeth(hostEnd(4));
    await detachVeth(hostEnd(7));
  });

  test('a missing bridge or a malformed argument fails before anything is made', async () => {
    const path = netns.pathOf(containerA);
    await assert.rejects(plugVeths(path, [{ ...veth(6, 'eth5', '10.213.0.7/24'), bridge: `bvx${tag}` }]), /bridge bvx.*No such device/);
    await assert.rejects(plugVeths(path, [veth(6, 'eth5', '10.213.0.7/33')]), /bad veth eth5/);
    await assert.rejects(plugVeths(path, [{ ...veth(6, 'eth5', '10.213.0.7/24'), mac: 'not-a-mac' }]), /bad veth eth5/);
    await assert.rejects(plugVeths(path, [veth(6, 'eth5', '10.213.0.7/24', 'fd00::1')]), /bad veth eth5/);
    assert.equal(await hostLink(hostEnd(6)), undefined);
    assert.ok(!(await addrsIn(path)).some((l) => l.ifname === 'eth5'));
  });

  test('a failure while creating the namespace leaves neither namespace files nor veths', async () => {
    const id = randomBytes(32).toString('hex');
    await assert.rejects(netns.create(id, [{ ...veth(7, 'eth0', '10.213.0.8/24'), bridge: `bvx${tag}` }]), /No such device/);
    assert.ok(!(await netns.list()).includes(id));
    assert.equal(await hostLink(hostEnd(7)), undefined);
  });

  test('both ends of a pair get the MTU of the bridge it is put on (an overlay bridge is below 1500)', async () => {
    const path = netns.pathOf(containerA);
    const lowBridge = `bmt${tag}`;
    await runTool('ip', ['-batch', '-'], `link add ${lowBridge} type bridge\nlink set ${lowBridge} mtu 1400\nlink set ${lowBridge} up\n`);
    try {
      await plugVeths(path, [{ ...veth(6, 'eth5', '10.214.0.7/24'), bridge: lowBridge }]);
      assert.equal((await hostLink(hostEnd(6)))?.mtu, 1400);
      assert.equal((await addrsIn(path)).find((l) => l.ifname === 'eth5')?.mtu, 1400);
      assert.equal((await hostLink(bridge))?.mtu, 1500, 'a plain bridge keeps the default');
    } finally {
      await deleteHostLinks([hostEnd(6), lowBridge]);
    }
  });

  test('links are deleted several in one request; a missing one is no error, a refusal is reported and the rest still go', async () => {
    const path = netns.pathOf(containerA);
    await plugVeths(path, [veth(4, 'eth3', '10.213.0.5/24'), veth(6, 'eth5', '10.213.0.7/24')]);
    await deleteHostLinks([hostEnd(4), `vvt${tag}gone`, hostEnd(6)]);
    assert.equal(await hostLink(hostEnd(4)), undefined);
    assert.equal(await hostLink(hostEnd(6)), undefined);
    assert.ok(!(await addrsIn(path)).some((l) => l.ifname === 'eth3' || l.ifname === 'eth5'), 'the container ends went with their pairs');

    await runTool('ip', ['link', 'add', hostEnd(6), 'type', 'bridge']);
    await assert.rejects(deleteHostLinks(['lo', hostEnd(6)]), /delete link lo: Operation not supported/);
    assert.equal(await hostLink(hostEnd(6)), undefined, 'the link after the refused one was deleted');
    assert.ok(await hostLink('lo'));
  });
});
