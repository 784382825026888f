/**
 * Tenant networks across hosts (issue 7): `berth server` with two agents, each in its own
 * network namespace (cluster-harness.ts), driven by the docker CLI as two tenants. Containers
 * pinned to different hosts reach each other by name, alias and Compose service name over a
 * VXLAN segment the control plane programs; another tenant's containers on the same hosts
 * cannot reach them; addresses never collide across hosts; the devices go with the network.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster, type ClusterAgent } from '../../support/cluster-harness.js';
import { pollFor, removeTree } from '../../support/cleanup.js';
import { docker, dockerOk } from '../../support/docker-cli.js';
import { tenantCaller } from '../../support/api-caller.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../../support/test-images.js';

const execFileAsync = promisify(execFile);

interface VxlanLink {
  ifname: string;
  mtu: number;
  master?: string;
  linkinfo: { info_kind: string; info_data: { id: number; local?: string; port?: number; learning?: boolean; proxy?: boolean } };
}

async function vxlansIn(agent: ClusterAgent): Promise<VxlanLink[]> {
  const { stdout } = await execFileAsync('ip', ['-n', agent.netns, '-j', '-d', 'link', 'show', 'type', 'vxlan']);
  return JSON.parse(stdout || '[]') as VxlanLink[];
}

async function fdbOf(agent: ClusterAgent, device: string): Promise<{ mac: string; dst?: string }[]> {
  const { stdout } = await execFileAsync('ip', ['netns', 'exec', agent.netns, 'bridge', '-j', 'fdb', 'show', 'dev', device]);
  return (JSON.parse(stdout || '[]') as { mac: string; dst?: string }[]).filter((e) => e.dst !== undefined);
}

describe('cluster: tenant networks across hosts (VXLAN)', () => {
  let cluster: Cluster;
  let acme: NodeJS.ProcessEnv;
  let rival: NodeJS.ProcessEnv;
  let hostA: ClusterAgent;
  let hostB: ClusterAgent;
  let work: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-cluster-ov-'));
    cluster = await startCluster({ controlPlane: 'berth-server' });
    hostA = await cluster.startAgent({ name: 'ov-a' });
    hostB = await cluster.startAgent({ name: 'ov-b' });
    acme = await cluster.createTenantClient('ov-acme');
    rival = await cluster.createTenantClient('ov-rival');
    const tar = await busyboxImageTar();
    await dockerOk(acme, ['load', '-i', tar]);
    await dockerOk(rival, ['load', '-i', tar]);
  });

  after(async () => {
    await cluster?.stop();
    if (work) await removeTree(work);
  });

  const on = (host: string): string[] => ['-e', `constraint:node==${host}`];
  const nodeOf = async (env: NodeJS.ProcessEnv, c: string): Promise<string> => (await dockerOk(env, ['inspect', '--format', '{{.Node.Name}}', c])).trim();
  const ipOf = async (env: NodeJS.ProcessEnv, c: string, net: string): Promise<string> =>
    (await dockerOk(env, ['inspect', '--format', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, c])).trim();

  test('one VXLAN segment per network: same VNI on both hosts, nolearning, proxy, port 4789, MTU 50 below the underlay', async () => {
    await dockerOk(acme, ['network', 'create', 'seg']);
    const id = (await dockerOk(acme, ['network', 'inspect', '--format', '{{.Id}}', 'seg'])).trim();
    const [onA, onB] = await Promise.all([vxlansIn(hostA), vxlansIn(hostB)]);
    const devA = onA.find((d) => d.ifname.endsWith(id.slice(0, 6)));
    const devB = onB.find((d) => d.ifname.endsWith(id.slice(0, 6)));
    assert.ok(devA && devB, `a VXLAN device on each host: ${JSON.stringify({ onA, onB })}`);
    assert.equal(devA.linkinfo.info_data.id, devB.linkinfo.info_data.id);
    assert.equal(devA.linkinfo.info_data.local, hostA.address);
    assert.equal(devB.linkinfo.info_data.local, hostB.address);
    assert.equal(devA.linkinfo.info_data.port, 4789);
    assert.equal(devA.linkinfo.info_data.learning, false);
    assert.equal(devA.linkinfo.info_data.proxy, true);
    assert.equal(devA.mtu, 1450);
    assert.match(devA.master ?? '', /^br-/);
    // A second network gets another VNI.
    await dockerOk(acme, ['network', 'create', 'seg2']);
    const id2 = (await dockerOk(acme, ['network', 'inspect', '--format', '{{.Id}}', 'seg2'])).trim();
    const dev2 = (await vxlansIn(hostA)).find((d) => d.ifname.endsWith(id2.slice(0, 6)));
    assert.ok(dev2);
    assert.notEqual(dev2.linkinfo.info_data.id, devA.linkinfo.info_data.id);
    // No flood entry (all-zero MAC): nothing but the remote containers' own MACs, none yet.
    assert.deepEqual(await fdbOf(hostA, devA.ifname), []);
    await dockerOk(acme, ['network', 'rm', 'seg', 'seg2']);
    await pollFor('the VXLAN devices to go with the networks', async () => ((await vxlansIn(hostA)).length + (await vxlansIn(hostB)).length === 0 ? true : undefined));
  });

  test('containers on two hosts reach each other by name and alias; container MTU matches; entries follow stop and rm', async () => {
    await dockerOk(acme, ['network', 'create', 'app']);
    await dockerOk(acme, ['run', '-d', '--name', 'srv', '--network', 'app', '--network-alias', 'backend', ...on('ov-a'), BUSYBOX_IMAGE, 'sh', '-c', 'while true; do echo srv-says-hi | nc -l -p 80; done']);
    assert.equal(await nodeOf(acme, 'srv'), 'ov-a');
    const byName = await dockerOk(acme, ['run', '--rm', '--network', 'app', ...on('ov-b'), BUSYBOX_IMAGE, 'sh', '-c', // The server's listener comes back a moment after each connection: retry a refused one.
      'fetch() { for i in 1 2 3 4 5 6 7 8 9 10; do nc -w 3 "$1" 80 </dev/null 2>/dev/null && return; sleep 0.2; done; }; cat /sys/class/net/eth0/mtu; fetch srv; fetch backend; ping -c 1 -W 3 -s 1400 srv >/dev/null && echo big-ping-ok']);
    assert.deepEqual(byName.trim().split('\n'), ['1450', 'srv-says-hi', 'srv-says-hi', 'big-ping-ok']);
    // The other way: a long-running client on ov-b, reached from ov-a by name.
    await dockerOk(acme, ['run', '-d', '--name', 'cli', '--network', 'app', ...on('ov-b'), BUSYBOX_IMAGE, 'sleep', '300']);
    const back = await dockerOk(acme, ['exec', 'srv', 'ping', '-c', '1', '-W', '3', 'cli']);
    assert.match(back, /1 packets received/);
    // ov-a's device holds an FDB entry for cli's MAC behind ov-b; stop removes it.
    const id = (await dockerOk(acme, ['network', 'inspect', '--format', '{{.Id}}', 'app'])).trim();
    const dev = (await vxlansIn(hostA)).find((d) => d.ifname.endsWith(id.slice(0, 6)))!;
    const cliMac = (await dockerOk(acme, ['inspect', '--format', '{{.NetworkSettings.Networks.app.MacAddress}}', 'cli'])).trim();
    assert.ok((await fdbOf(hostA, dev.ifname)).some((e) => e.mac === cliMac && e.dst === hostB.address));
    await dockerOk(acme, ['stop', '-t', '0', 'cli']);
    assert.ok(!(await fdbOf(hostA, dev.ifname)).some((e) => e.mac === cliMac), 'entry gone once stop returned');
    const gone = await docker(acme, ['exec', 'srv', 'nslookup', 'cli']);
    assert.notEqual(gone.code, 0, 'a stopped remote container no longer resolves');
    await dockerOk(acme, ['rm', '-f', 'srv', 'cli']);
    await dockerOk(acme, ['network', 'rm', 'app']);
  });

  test('addresses never collide across hosts (many containers, two hosts)', async () => {
    // A subnet of the test's own: the front's random pick can (rarely) be refused by both hosts
    // in turn (each has its own default bridge), which is not what this test is about.
    const second = 100 + Math.floor(Math.random() * 100);
    await dockerOk(acme, ['network', 'create', '--subnet', `10.${second}.0.0/16`, 'many']);
    const names: string[] = [];
    for (let i = 0; i < 6; i++) {
      for (const host of ['ov-a', 'ov-b']) {
        const name = `m-${host}-${i}`;
        names.push(name);
        await dockerOk(acme, ['run', '-d', '--name', name, '--network', 'many', ...on(host), BUSYBOX_IMAGE, 'sleep', '300']);
      }
    }
    const ips = await Promise.all(names.map((n) => ipOf(acme, n, 'many')));
    assert.equal(new Set(ips).size, ips.length, `duplicate addresses: ${ips.join(' ')}`);
    // Each host hands out from its own /20 slice of the /16.
    const sliceOf = (ip: string): number => Math.floor(Number(ip.split('.')[2]) / 16);
    const slicesOn = (host: string): Set<number> => new Set(names.map((n, i) => (n.includes(host) ? sliceOf(ips[i]!) : -1)).filter((x) => x >= 0));
    assert.equal(slicesOn('ov-a').size, 1);
    assert.equal(slicesOn('ov-b').size, 1);
    assert.notDeepEqual([...slicesOn('ov-a')], [...slicesOn('ov-b')]);
    // Every one reachable from one container on ov-a.
    const script = ips.map((ip) => `ping -c 1 -W 3 ${ip} >/dev/null && echo ok`).join('; ');
    const out = await dockerOk(acme, ['exec', names[0]!, 'sh', '-c', script]);
    assert.equal(out.trim().split('\n').filter((l) => l === 'ok').length, ips.length);
    await dockerOk(acme, ['rm', '-f', ...names]);
    await dockerOk(acme, ['network', 'rm', 'many']);
  });

  test('another tenant on the same hosts cannot reach them', async () => {
    await dockerOk(acme, ['network', 'create', 'private']);
    await dockerOk(rival, ['network', 'create', 'private']);
    await dockerOk(acme, ['run', '-d', '--name', 'vault', '--network', 'private', ...on('ov-a'), BUSYBOX_IMAGE, 'sh', '-c', 'while true; do echo secret | nc -l -p 80; done']);
    const vaultIp = await ipOf(acme, 'vault', 'private');
    const friend = await dockerOk(acme, ['run', '--rm', '--network', 'private', ...on('ov-b'), BUSYBOX_IMAGE, 'nc', '-w', '3', vaultIp, '80']);
    assert.equal(friend.trim(), 'secret');
    for (const host of ['ov-a', 'ov-b']) {
      const probe = await docker(rival, [
        'run', '--rm', '--network', 'private', ...on(host), BUSYBOX_IMAGE, 'sh', '-c',
        `nslookup vault >/dev/null 2>&1 && echo resolved; nc -w 2 ${vaultIp} 80 </dev/null; ping -c 1 -W 2 ${vaultIp} >/dev/null && echo pinged; echo done`,
      ]);
      assert.equal(probe.stdout.trim(), 'done', `rival on ${host}: ${probe.stdout} ${probe.stderr}`);
    }
    await dockerOk(acme, ['rm', '-f', 'vault']);
    await dockerOk(acme, ['network', 'rm', 'private']);
    await dockerOk(rival, ['network', 'rm', 'private']);
  });

  test('a Compose app spread over both hosts serves (docker-compose 1.29, services pinned by environment constraints)', async () => {
    const dir = join(work, 'spread');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'docker-compose.yml'),
      [
        "version: '2.4'",
        'services:',
        '  web:',
        `    image: ${BUSYBOX_IMAGE}`,
        '    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && httpd -f -p 8080 -h /www"]',
        '    environment: ["constraint:node==ov-a"]',
        '  client:',
        `    image: ${BUSYBOX_IMAGE}`,
        '    command: ["sh", "-c", "until wget -q -O - http://web:8080/ > /tmp/got; do sleep 0.2; done; cat /tmp/got; sleep 300"]',
        '    environment: ["constraint:node==ov-b"]',
        '    depends_on: [web]',
        '',
      ].join('\n'),
    );
    const compose = (args: string[]): Promise<{ stdout: string; stderr: string }> =>
      execFileAsync('/usr/bin/docker-compose', ['-p', 'spread', ...args], { cwd: dir, env: { ...acme, COMPOSE_INTERACTIVE_NO_CLI: '1' }, timeout: 120_000 });
    let networkId = '';
    try {
      await compose(['up', '-d']);
      networkId = (await dockerOk(acme, ['network', 'inspect', '--format', '{{.Id}}', 'spread_default'])).trim();
      assert.equal(await nodeOf(acme, 'spread_web_1'), 'ov-a');
      assert.equal(await nodeOf(acme, 'spread_client_1'), 'ov-b');
      await pollFor('the client on ov-b to fetch from web on ov-a by service name', async () =>
        (await docker(acme, ['logs', 'spread_client_1'])).stdout.includes('hello-from-web') ? true : undefined,
      );
    } finally {
      await compose(['down', '-t', '0']).catch((err: unknown) => console.error('compose down:', err));
    }
    const ofNetwork = (links: VxlanLink[]): VxlanLink[] => links.filter((d) => d.ifname.endsWith(networkId.slice(0, 6)));
    assert.notEqual(networkId, '');
    await pollFor('no VXLAN device of the app left once compose down removed its network', async () =>
      ofNetwork([...(await vxlansIn(hostA)), ...(await vxlansIn(hostB))]).length === 0 ? true : undefined,
    );
  });

  test('the agent routes that carry overlay state are not for tenants', async () => {
    const caller = await tenantCaller('ov-acme', cluster.tenantPort, acme.DOCKER_CERT_PATH!);
    const list = await caller.call('GET', '/berth/agent/overlay/endpoints');
    assert.equal(list.status, 404);
    const push = await caller.call('PUT', '/berth/agent/overlay', { body: { local: '100.64.0.9', networks: [] } });
    assert.equal(push.status, 404);
    assert.match(push.body, /"message"/);
  });

  test('a restarted agent gets its overlay state pushed again: names and packets across hosts work again', async () => {
    await dockerOk(acme, ['network', 'create', 'again']);
    await dockerOk(acme, ['run', '-d', '--name', 'far', '--network', 'again', ...on('ov-a'), BUSYBOX_IMAGE, 'sleep', '300']);
    await dockerOk(acme, ['run', '-d', '--name', 'near', '--network', 'again', ...on('ov-b'), BUSYBOX_IMAGE, 'sleep', '300']);
    assert.match(await dockerOk(acme, ['exec', 'near', 'ping', '-c', '1', '-W', '3', 'far']), /1 packets received/);
    await hostB.restart();
    await pollFor('near (on the restarted host) to reach far by name again', async () =>
      (await docker(acme, ['exec', 'near', 'ping', '-c', '1', '-W', '2', 'far'])).code === 0 ? true : undefined,
    );
    await dockerOk(acme, ['rm', '-f', 'far', 'near']);
    await dockerOk(acme, ['network', 'rm', 'again']);
    // Every network of the file is gone: so is every VXLAN device on both hosts.
    await pollFor('no VXLAN device left on either host', async () => ((await vxlansIn(hostA)).length + (await vxlansIn(hostB)).length === 0 ? true : undefined));
  });
});
