/**
 * Networks through the docker CLI: user-defined bridge networks with the embedded DNS (names,
 * aliases, Compose service names, forwarding to an upstream), isolation between networks, an
 * --internal network with no way out, the none/host/container network modes, and the network
 * commands (create with --subnet/--gateway/--ip-range/labels, ls filters, inspect, connect,
 * disconnect, rm, prune) with their errors.
 *
 * Traffic stays on this machine: containers talk to each other, to a fake upstream resolver on
 * 127.0.0.1, and to a server in a namespace the test creates (test/support/outside-netns.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { execFile } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { promisify } from 'node:util';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { busyboxImageTar } from '../support/test-images.js';
import { networkLeftovers } from '../support/cleanup.js';
import { startOutsideWorld, type OutsideWorld } from '../support/outside-netns.js';

const run = promisify(execFile);
const IMAGE = 'berth-test/busybox';
const UPSTREAM_ANSWER = '10.77.66.55';

/** A fake upstream resolver on 127.0.0.1: answers every A query with UPSTREAM_ANSWER. */
async function startFakeUpstream(): Promise<{ port: number; socket: Socket; queries: string[] }> {
  const socket = createSocket('udp4');
  const queries: string[] = [];
  socket.on('message', (msg, rinfo) => {
    let offset = 12;
    const labels: string[] = [];
    while (msg[offset]! > 0) {
      labels.push(msg.subarray(offset + 1, offset + 1 + msg[offset]!).toString());
      offset += msg[offset]! + 1;
    }
    queries.push(labels.join('.'));
    const qtype = msg.readUInt16BE(offset + 1);
    const question = msg.subarray(12, offset + 5);
    const header = Buffer.from([msg[0]!, msg[1]!, 0x81, 0x80, 0, 1, 0, qtype === 1 ? 1 : 0, 0, 0, 0, 0]);
    const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...UPSTREAM_ANSWER.split('.').map(Number)]);
    socket.send(Buffer.concat([header, question, ...(qtype === 1 ? [answer] : [])]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, socket, queries };
}

/** One A query over TCP (2-byte length framing); resolves with the first address answered. */
function tcpLookup(server: string, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
    const query = Buffer.concat([Buffer.from([0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
    const socket = connect(53, server);
    let data = Buffer.alloc(0);
    socket.setTimeout(3000, () => socket.destroy(new Error('timeout')));
    socket.on('error', reject);
    socket.on('connect', () => socket.write(Buffer.concat([Buffer.from([query.length >> 8, query.length & 255]), query])));
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (data.length < 2 || data.length < 2 + data.readUInt16BE(0)) return;
      const reply = data.subarray(2, 2 + data.readUInt16BE(0));
      socket.end();
      resolve([...reply.subarray(reply.length - 4)].join('.'));
    });
  });
}

describe('networks', () => {
  let berth: BerthInstance;
  let upstream: Awaited<ReturnType<typeof startFakeUpstream>>;
  let outside: OutsideWorld | undefined;

  const env = (): NodeJS.ProcessEnv => berth.env;
  const inspect = async (what: string, format: string): Promise<string> => (await dockerOk(env(), ['inspect', '--format', format, what])).trim();
  const sh = (args: string[], script: string) => docker(env(), ['run', '--rm', ...args, IMAGE, 'sh', '-c', script], { timeoutMs: 30_000 });

  before(async () => {
    upstream = await startFakeUpstream();
    const [b, tar] = await Promise.all([startBerth({ extraArgs: ['--dns-upstream', `127.0.0.1:${upstream.port}`] }), busyboxImageTar()]);
    berth = b;
    await dockerOk(berth.env, ['load', '-i', tar]);
  });

  after(async () => {
    await outside?.close();
    upstream?.socket.close();
    await berth?.stop();
  });

  test('containers on one user network reach each other by name, alias, short id and Compose service name', async () => {
    await dockerOk(env(), ['network', 'create', 'n1-net']);
    await dockerOk(env(), [
      'run', '-d', '--name', 'n1-server', '--network', 'n1-net', '--network-alias', 'n1-alias',
      '--label', 'com.docker.compose.service=n1-web', IMAGE, 'sh', '-c', 'while true; do echo from-server | nc -l -p 8080; done',
    ]);
    const id = (await inspect('n1-server', '{{.Id}}')).slice(0, 12);
    const ip = await inspect('n1-server', '{{(index .NetworkSettings.Networks "n1-net").IPAddress}}');
    const gateway = await inspect('n1-server', '{{(index .NetworkSettings.Networks "n1-net").Gateway}}');
    for (const name of ['n1-server', 'n1-alias', id, 'n1-web']) {
      const out = await sh(['--network', 'n1-net'], `nslookup ${name} && nc -w 3 ${name} 8080 </dev/null`);
      assert.equal(out.code, 0, `${name}: ${out.stdout}${out.stderr}`);
      assert.match(out.stdout, new RegExp(`Address: ${ip.replace(/\./g, '\\.')}`), name);
      assert.match(out.stdout, /from-server/, name);
    }
    // Over TCP too (resolvers fall back to it for long answers): asked from the host, at the
    // gateway address of Berth's own bridge.
    assert.equal(await tcpLookup(gateway, 'n1-alias'), ip);
    // PTR: the address answers with the container's name on the network.
    const reverse = await sh(['--network', 'n1-net'], `nslookup ${ip}`);
    assert.match(reverse.stdout, /name = n1-server\.n1-net/, reverse.stdout + reverse.stderr);
    const ping = await sh(['--network', 'n1-net'], 'ping -c 1 -W 2 n1-server');
    assert.equal(ping.code, 0, ping.stdout);
    // A rename moves the name.
    await dockerOk(env(), ['rename', 'n1-server', 'n1-renamed']);
    // (The fake upstream answers every other name, with its own address.)
    const renamed = await sh(['--network', 'n1-net'], `nslookup n1-renamed | grep -q 'Address: ${ip}$' && ! nslookup n1-server | grep -q 'Address: ${ip}$'`);
    assert.equal(renamed.code, 0, renamed.stdout + renamed.stderr);
    await dockerOk(env(), ['rename', 'n1-renamed', 'n1-server']);
    // resolv.conf names the embedded resolver, on the network's gateway.
    const resolv = await sh(['--network', 'n1-net'], 'cat /etc/resolv.conf');
    assert.match(resolv.stdout, new RegExp(`^nameserver ${gateway.replace(/\./g, '\\.')}$`, 'm'));
    // inspect: Aliases as given, DNSNames as the resolver knows them, and network inspect lists it.
    const aliases = await inspect('n1-server', '{{json (index .NetworkSettings.Networks "n1-net").Aliases}}');
    assert.equal(aliases, '["n1-alias"]');
    const dnsNames = JSON.parse(await inspect('n1-server', '{{json (index .NetworkSettings.Networks "n1-net").DNSNames}}')) as string[];
    assert.deepEqual(dnsNames.slice(0, 3), ['n1-server', id, 'n1-alias']);
    const members = JSON.parse(await dockerOk(env(), ['network', 'inspect', '--format', '{{json .Containers}}', 'n1-net'])) as Record<string, { Name: string; IPv4Address: string }>;
    assert.deepEqual(Object.values(members).map((m) => [m.Name, m.IPv4Address.split('/')[0]]), [['n1-server', ip]]);
    await dockerOk(env(), ['rm', '-f', 'n1-server']);
    await dockerOk(env(), ['network', 'rm', 'n1-net']);
    // Events as dockerd sends them: create, connect at start, disconnect at exit, destroy. (The
    // CLI sends --until in whole seconds: wait for this second to pass.)
    await new Promise((r) => setTimeout(r, 1100));
    const events = await dockerOk(env(), ['events', '--since', '10m', '--until', '0s', '--filter', 'type=network', '--filter', 'network=n1-net', '--format', '{{.Action}} {{.Actor.Attributes.name}}']);
    const actions = events.trim().split('\n');
    assert.equal(actions[0], 'create n1-net');
    const count = (action: string): number => actions.filter((a) => a === `${action} n1-net`).length;
    assert.ok(count('connect') >= 8, events);
    assert.equal(count('disconnect'), count('connect'), events);
    assert.equal(actions.at(-1), 'destroy n1-net', events);
  });

  test('other names are forwarded to the upstream resolver', async () => {
    await dockerOk(env(), ['network', 'create', 'n2-net']);
    const out = await sh(['--network', 'n2-net'], 'nslookup upstream-only.example');
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.match(out.stdout, new RegExp(`Address: ${UPSTREAM_ANSWER.replace(/\./g, '\\.')}`));
    assert.ok(upstream.queries.includes('upstream-only.example'), `upstream saw ${upstream.queries.join(', ')}`);
    await dockerOk(env(), ['network', 'rm', 'n2-net']);
  });

  test('containers on two different networks cannot reach each other', async () => {
    await dockerOk(env(), ['network', 'create', 'n3-a']);
    await dockerOk(env(), ['network', 'create', 'n3-b']);
    await dockerOk(env(), ['run', '-d', '--name', 'n3-server', '--network', 'n3-a', IMAGE, 'sh', '-c', 'while true; do echo n3-hello | nc -l -p 8080; done']);
    const ip = await inspect('n3-server', '{{(index .NetworkSettings.Networks "n3-a").IPAddress}}');
    const same = await sh(['--network', 'n3-a'], `nc -w 3 ${ip} 8080 </dev/null`);
    assert.match(same.stdout, /n3-hello/, 'control: the same network reaches the server');
    const other = await sh(['--network', 'n3-b'], `nc -w 2 ${ip} 8080 </dev/null; echo exit=$?; nslookup n3-server`);
    assert.doesNotMatch(other.stdout, /n3-hello/);
    assert.doesNotMatch(other.stdout, new RegExp(`Address: ${ip.replace(/\./g, '\\.')}`), 'the name is not resolvable from another network');
    // The default bridge network is isolated from user networks too.
    const fromDefault = await sh([], `nc -w 2 ${ip} 8080 </dev/null; echo exit=$?`);
    assert.doesNotMatch(fromDefault.stdout, /n3-hello/);
    await dockerOk(env(), ['rm', '-f', 'n3-server']);
    await dockerOk(env(), ['network', 'rm', 'n3-a', 'n3-b']);
  });

  test('a container on two networks resolves the names of both, whichever resolver address it asks', async () => {
    await dockerOk(env(), ['network', 'create', 'n10-a']);
    await dockerOk(env(), ['network', 'create', 'n10-b']);
    await dockerOk(env(), ['run', '-d', '--name', 'n10-on-b', '--network', 'n10-b', IMAGE, 'sleep', '300']);
    const ipOnB = await inspect('n10-on-b', '{{(index .NetworkSettings.Networks "n10-b").IPAddress}}');
    // The client's resolv.conf names its first network's gateway; the name lives on its second.
    await dockerOk(env(), ['create', '--name', 'n10-client', '--network', 'n10-a', IMAGE, 'sh', '-c', 'nslookup n10-on-b; nslookup n10-client']);
    await dockerOk(env(), ['network', 'connect', 'n10-b', 'n10-client']);
    const out = await docker(env(), ['start', '-a', 'n10-client'], { timeoutMs: 30_000 });
    assert.match(out.stdout, new RegExp(`Address: ${ipOnB.replace(/\./g, '\\.')}`), out.stdout + out.stderr);
    // Control: a container on n10-a alone still cannot resolve it.
    const alone = await sh(['--network', 'n10-a'], 'nslookup n10-on-b; echo done');
    assert.doesNotMatch(alone.stdout, new RegExp(`Address: ${ipOnB.replace(/\./g, '\\.')}`));
    await dockerOk(env(), ['rm', '-f', 'n10-on-b', 'n10-client']);
    await dockerOk(env(), ['network', 'rm', 'n10-a', 'n10-b']);
  });

  test('an --internal network has no way out, even with a route forced into the container', async () => {
    outside = await startOutsideWorld();
    const target = `${outside.ip} ${outside.port}`;
    await dockerOk(env(), ['network', 'create', 'n4-ext']);
    await dockerOk(env(), ['network', 'create', '--internal', 'n4-int']);
    const control = await sh(['--network', 'n4-ext'], `nc -w 3 ${target} </dev/null`);
    assert.match(control.stdout, new RegExp(outside.greeting), `control: a normal network reaches the outside (${control.stderr})`);
    assert.equal(await dockerOk(env(), ['network', 'inspect', '--format', '{{.Internal}}', 'n4-int']), 'true\n');

    await dockerOk(env(), ['run', '-d', '--name', 'n4-in', '--network', 'n4-int', IMAGE, 'sleep', '120']);
    const routes = await dockerOk(env(), ['exec', 'n4-in', 'ip', 'route']);
    assert.doesNotMatch(routes, /default/, 'no default route on an internal network');
    const first = await docker(env(), ['exec', 'n4-in', 'sh', '-c', `nc -w 2 ${target} </dev/null`]);
    assert.doesNotMatch(first.stdout, new RegExp(outside.greeting));
    // A container cannot add routes (no CAP_NET_ADMIN); the test can, from outside. The
    // firewall must still drop the packets.
    const sandboxKey = await inspect('n4-in', '{{.NetworkSettings.SandboxKey}}');
    const gateway = await inspect('n4-in', '{{(index .NetworkSettings.Networks "n4-int").Gateway}}');
    await run('nsenter', [`--net=${sandboxKey}`, 'ip', 'route', 'add', 'default', 'via', gateway]);
    const forced = await docker(env(), ['exec', 'n4-in', 'sh', '-c', `nc -w 2 ${target} </dev/null; echo exit=$?`]);
    assert.doesNotMatch(forced.stdout, new RegExp(outside.greeting));
    // Names still resolve inside an internal network.
    const peer = await sh(['--network', 'n4-int'], 'nslookup n4-in');
    assert.equal(peer.code, 0, peer.stdout);
    await dockerOk(env(), ['rm', '-f', 'n4-in']);
    await dockerOk(env(), ['network', 'rm', 'n4-ext', 'n4-int']);
  });

  test("the host's own services are out of reach from containers; its DNS and ping are not", async () => {
    let connections = 0;
    const listener = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '0.0.0.0', resolve));
    const port = (listener.address() as { port: number }).port;
    try {
      await dockerOk(env(), ['network', 'create', 'n9-net']);
      for (const network of ['bridge', 'n9-net']) {
        const out = await sh(['--network', network], `gw=$(ip route | awk '/default/ {print $3}'); nc -w 2 $gw ${port} </dev/null; ping -c 1 -W 2 $gw >/dev/null && echo ping-ok`);
        assert.match(out.stdout, /ping-ok/, `${network}: the gateway answers ping`);
      }
      assert.equal(connections, 0, 'no connection reached the host service');
      const dns = await sh(['--network', 'n9-net'], 'nslookup upstream-only.example');
      assert.equal(dns.code, 0, 'the embedded DNS on the gateway is reachable');
      await dockerOk(env(), ['network', 'rm', 'n9-net']);
    } finally {
      listener.close();
    }
  });

  test('--network none has loopback only; host sees the host; container:<id> shares', async () => {
    const none = await sh(['--network', 'none'], 'ip -o link | cut -d: -f2');
    assert.deepEqual(none.stdout.trim().split('\n').map((l) => l.trim()), ['lo']);

    const { stdout: routeOut } = await run('ip', ['-j', 'route', 'show', 'default']);
    const hostDev = (JSON.parse(routeOut) as { dev: string }[])[0]?.dev;
    assert.ok(hostDev, 'the host has a default route device');
    const host = await sh(['--network', 'host'], 'ip -o link');
    assert.match(host.stdout, new RegExp(`: ${hostDev}[:@]`));
    assert.equal(await dockerOk(env(), ['run', '--rm', '--network', 'host', IMAGE, 'sh', '-c', 'echo ok']), 'ok\n');

    await dockerOk(env(), ['network', 'create', 'n5-net']);
    await dockerOk(env(), ['run', '-d', '--name', 'n5-owner', '--network', 'n5-net', IMAGE, 'sh', '-c', 'while true; do echo shared-ns | nc -l -p 7070; done']);
    const ownerIp = await inspect('n5-owner', '{{(index .NetworkSettings.Networks "n5-net").IPAddress}}');
    const joined = await sh(['--network', 'container:n5-owner'], 'ip -o -4 addr; nc -w 3 127.0.0.1 7070 </dev/null');
    assert.match(joined.stdout, new RegExp(`inet ${ownerIp.replace(/\./g, '\\.')}/`));
    assert.match(joined.stdout, /shared-ns/);
    assert.equal(await inspect('n5-owner', '{{.HostConfig.NetworkMode}}'), 'n5-net');

    await dockerOk(env(), ['create', '--name', 'n5-stopped', IMAGE, 'true']);
    const refused = await docker(env(), ['run', '--rm', '--network', 'container:n5-stopped', IMAGE, 'true']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /non running container/);
    const ports = await docker(env(), ['run', '--rm', '--network', 'container:n5-owner', '-p', '9999:80', IMAGE, 'true']);
    assert.match(ports.stderr, /conflicting options: port publishing and the container type network mode/);
    await dockerOk(env(), ['rm', '-f', 'n5-owner', 'n5-stopped']);
    await dockerOk(env(), ['network', 'rm', 'n5-net']);
  });

  test('network create/ls/inspect/connect/disconnect/rm/prune with --subnet, --gateway, --ip-range, --ip and labels', async () => {
    const { stdout: routes } = await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all']);
    let second = 0;
    do second = 100 + Math.floor(Math.random() * 150);
    while (routes.includes(`"10.${second}.`));
    const prefix = `10.${second}.${Math.floor(Math.random() * 256)}`;
    await dockerOk(env(), ['network', 'create', '--subnet', `${prefix}.0/24`, '--gateway', `${prefix}.254`, '--ip-range', `${prefix}.128/25`, '--label', 'team=blue', 'n6-net']);
    const ipam = JSON.parse(await dockerOk(env(), ['network', 'inspect', '--format', '{{json .IPAM.Config}}', 'n6-net']));
    assert.deepEqual(ipam, [{ Subnet: `${prefix}.0/24`, IPRange: `${prefix}.128/25`, Gateway: `${prefix}.254` }]);
    assert.equal(await dockerOk(env(), ['network', 'inspect', '--format', '{{json .Labels}}', 'n6-net']), '{"team":"blue"}\n');

    await dockerOk(env(), ['run', '-d', '--name', 'n6-a', '--network', 'n6-net', IMAGE, 'sleep', '120']);
    await dockerOk(env(), ['run', '-d', '--name', 'n6-b', '--network', 'n6-net', '--ip', `${prefix}.10`, IMAGE, 'sleep', '120']);
    assert.equal(await inspect('n6-a', '{{(index .NetworkSettings.Networks "n6-net").IPAddress}}'), `${prefix}.128`);
    assert.equal(await inspect('n6-b', '{{(index .NetworkSettings.Networks "n6-net").IPAddress}}'), `${prefix}.10`);
    assert.equal(await inspect('n6-b', '{{(index .NetworkSettings.Networks "n6-net").MacAddress}}'), `02:42:0a:${second.toString(16)}:${Number(prefix.split('.')[2]).toString(16).padStart(2, '0')}:0a`);
    const taken = await docker(env(), ['run', '-d', '--name', 'n6-c', '--network', 'n6-net', '--ip', `${prefix}.10`, IMAGE, 'sleep', '1']);
    assert.notEqual(taken.code, 0);
    assert.match(taken.stderr, /Address already in use/);
    await dockerOk(env(), ['rm', '-f', 'n6-c']);

    assert.equal(await dockerOk(env(), ['ps', '--filter', 'network=n6-net', '--format', '{{.Names}}']).then((o) => o.split('\n').sort().join(' ').trim()), 'n6-a n6-b');
    const filtered = await dockerOk(env(), ['network', 'ls', '--filter', 'label=team=blue', '--format', '{{.Name}}']);
    assert.equal(filtered, 'n6-net\n');
    const builtin = await dockerOk(env(), ['network', 'ls', '--filter', 'type=builtin', '--format', '{{.Name}} {{.Driver}}']);
    assert.equal(builtin, 'bridge bridge\nhost host\nnone null\n');

    const inUse = await docker(env(), ['network', 'rm', 'n6-net']);
    assert.notEqual(inUse.code, 0);
    assert.match(inUse.stderr, /has active endpoints/);
    const dup = await docker(env(), ['network', 'create', 'n6-net']);
    assert.match(dup.stderr, /network with name n6-net already exists/);

    await dockerOk(env(), ['network', 'create', 'n6-other']);
    await dockerOk(env(), ['network', 'connect', '--alias', 'n6-extra', 'n6-other', 'n6-a']);
    const names = await inspect('n6-a', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}');
    assert.equal(names.trim(), 'n6-net n6-other');
    assert.match(await dockerOk(env(), ['exec', 'n6-a', 'ip', '-o', '-4', 'addr']), /eth1/);
    const byAlias = await sh(['--network', 'n6-other'], 'nslookup n6-extra');
    assert.equal(byAlias.code, 0, byAlias.stdout);
    await dockerOk(env(), ['network', 'disconnect', 'n6-other', 'n6-a']);
    assert.doesNotMatch(await dockerOk(env(), ['exec', 'n6-a', 'ip', '-o', 'link']), /eth1/);
    assert.equal((await inspect('n6-a', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}')).trim(), 'n6-net');

    await dockerOk(env(), ['rm', '-f', 'n6-a', 'n6-b']);
    const pruned = await dockerOk(env(), ['network', 'prune', '-f', '--filter', 'label=team=blue']);
    assert.match(pruned, /n6-net/);
    assert.doesNotMatch(pruned, /n6-other/);
    await dockerOk(env(), ['network', 'rm', 'n6-other']);
  });

  test('bad network input is refused with Docker\'s messages and changes nothing', async () => {
    const before = await dockerOk(env(), ['ps', '-aq']);
    const cases: [string[], RegExp][] = [
      [['run', '--rm', '--network', 'no-such-net', IMAGE, 'true'], /network no-such-net not found/],
      [['run', '--rm', '--ip', '172.17.0.50', IMAGE, 'true'], /user specified IP address is supported on user defined networks only/],
      [['run', '--rm', '--network-alias', 'x1', IMAGE, 'true'], /network-scoped alias/], // refused by the CLI itself,
      [['network', 'create', '--subnet', '10.1.2.3/8', 'n7-bad'], /invalid subnet/],
      [['network', 'create', '--subnet', '10.201.0.0/24', '--gateway', '10.202.0.1', 'n7-bad'], /no matching subnet for gateway/],
      [['network', 'create', '--driver', 'overlay', 'n7-bad'], /not supported/],
      [['network', 'rm', 'bridge'], /pre-defined network and cannot be removed/],
      [['network', 'create', 'host'], /predefined host network/],
    ];
    for (const [args, message] of cases) {
      const result = await docker(env(), args);
      assert.notEqual(result.code, 0, args.join(' '));
      assert.match(result.stderr, message, args.join(' '));
    }
    assert.equal(await dockerOk(env(), ['ps', '-aq']), before);
    assert.equal(await dockerOk(env(), ['network', 'ls', '--filter', 'name=n7-bad', '-q']), '');
  });

  test('nothing of this instance is left on the host but the default bridge once containers and networks are gone', async () => {
    const left = await networkLeftovers(berth.dataRoot);
    assert.ok(left.instanceId);
    assert.deepEqual(left.veths, []);
    assert.equal(left.bridges.length, 1, `bridges: ${left.bridges.join(', ')}`);
    const defaultBridge = (await dockerOk(env(), ['network', 'inspect', '--format', '{{index .Options "com.docker.network.bridge.name"}}', 'bridge'])).trim();
    assert.deepEqual(left.bridges, [defaultBridge]);
  });

  test('a clean stop with nothing running leaves nothing on the host\'s network; a start brings it back', async () => {
    await dockerOk(env(), ['network', 'create', 'n8-kept']);
    await dockerOk(env(), ['create', '--name', 'n8-stopped', '--network', 'n8-kept', IMAGE, 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
    const pid = berth.pid;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && berth.pid !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(berth.pid, 0, 'Berth stopped on SIGTERM');
    const left = await networkLeftovers(berth.dataRoot);
    assert.deepEqual([left.bridges, left.veths, left.table], [[], [], false]);
    await berth.restart();
    const back = await networkLeftovers(berth.dataRoot);
    assert.equal(back.bridges.length, 2, 'the default bridge and n8-kept are back');
    assert.ok(back.table);
    const out = await dockerOk(env(), ['start', '-a', 'n8-stopped']);
    assert.match(out, /inet \d+\.\d+\.\d+\.\d+\//, 'the stopped container starts on its network');
    await dockerOk(env(), ['rm', 'n8-stopped']);
    await dockerOk(env(), ['network', 'rm', 'n8-kept']);
  });
});
