/**
 * Published ports through the docker CLI: every -p form (host port, host IP, ephemeral, ranges,
 * udp) and -P with exposed ports, reachable from the host on 127.0.0.1; `docker port`, `docker
 * ps` and inspect report them as dockerd does; a taken port is refused with Docker's message
 * and leaves nothing behind.
 *
 * The expected `docker port` and PORTS texts are dockerd's for an IPv4-only daemon, as the
 * docker CLI reference shows them (e.g. `80/tcp -> 0.0.0.0:8080`, `0.0.0.0:8080->80/tcp`): the
 * comparison dockerd here runs with --bridge=none --iptables=false and cannot publish ports,
 * and both texts are formatted by the CLI from the same API fields asserted below.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { busyboxImageTar, debianImageTar, DEBIAN_IMAGE } from '../support/test-images.js';
import { networkLeftovers, sleep } from '../support/cleanup.js';

const IMAGE = 'berth-test/busybox';
const SERVE = (port: number, text: string): string[] => ['sh', '-c', `while true; do echo ${text} | nc -l -p ${port}; done`];

/** A free TCP port on 127.0.0.1 (and its neighbour when `count` is 2): bound, then released. */
async function freePorts(count = 1): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    const ports = Array.from({ length: count }, (_, i) => base + i);
    const ok = await Promise.all(
      ports.map(
        (port) =>
          new Promise<boolean>((resolve) => {
            const server = createServer();
            server.once('error', () => resolve(false));
            server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
          }),
      ),
    );
    if (ok.every(Boolean)) return ports;
  }
  throw new Error('no free ports');
}

/** Connects to host:port and returns what the server says first (or '' on failure). */
function readLine(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(data);
    }, timeoutMs);
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

/** The server loop in a container may need a moment to listen after `docker run -d` returns. */
async function readEventually(host: string, port: number, expected: string): Promise<string> {
  let last = '';
  for (let i = 0; i < 20; i++) {
    last = await readLine(host, port);
    if (last.includes(expected)) return last;
    await sleep(150);
  }
  return last;
}

describe('published ports', () => {
  let berth: BerthInstance;
  const env = (): NodeJS.ProcessEnv => berth.env;

  before(async () => {
    const [b, tar] = await Promise.all([startBerth(), busyboxImageTar()]);
    berth = b;
    await dockerOk(berth.env, ['load', '-i', tar]);
  });

  after(async () => {
    await berth?.stop();
  });

  test('-p host:container answers on 127.0.0.1, on every local address, and is reported like dockerd', async () => {
    const [p1] = await freePorts();
    await dockerOk(env(), ['run', '-d', '--name', 'p1-web', '-p', `${p1}:80`, IMAGE, ...SERVE(80, 'p1-hello')]);
    assert.match(await readEventually('127.0.0.1', p1!, 'p1-hello'), /p1-hello/);
    assert.equal(await dockerOk(env(), ['port', 'p1-web']), `80/tcp -> 0.0.0.0:${p1}\n`);
    assert.equal(await dockerOk(env(), ['port', 'p1-web', '80']), `0.0.0.0:${p1}\n`);
    assert.equal(await dockerOk(env(), ['ps', '--filter', 'name=p1-web', '--format', '{{.Ports}}']), `0.0.0.0:${p1}->80/tcp\n`);
    assert.equal(await dockerOk(env(), ['inspect', '--format', '{{json .NetworkSettings.Ports}}', 'p1-web']), `{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"${p1}"}]}\n`);
    assert.equal(await dockerOk(env(), ['inspect', '--format', '{{json .HostConfig.PortBindings}}', 'p1-web']), `{"80/tcp":[{"HostIp":"","HostPort":"${p1}"}]}\n`);
    // Also from another container, through the host's address on the bridge (hairpin NAT).
    const gateway = (await dockerOk(env(), ['inspect', '--format', '{{.NetworkSettings.Gateway}}', 'p1-web'])).trim();
    const hairpin = await docker(env(), ['run', '--rm', IMAGE, 'sh', '-c', `nc -w 3 ${gateway} ${p1} </dev/null`]);
    assert.match(hairpin.stdout, /p1-hello/);
    await dockerOk(env(), ['stop', '-t', '0', 'p1-web']);
    assert.equal(await readLine('127.0.0.1', p1!, 1000), '', 'a stopped container no longer answers');
    assert.equal(await dockerOk(env(), ['port', 'p1-web']), '');
    await dockerOk(env(), ['start', 'p1-web']);
    assert.match(await readEventually('127.0.0.1', p1!, 'p1-hello'), /p1-hello/, 'a restarted container answers again');
    await dockerOk(env(), ['rm', '-f', 'p1-web']);
  });

  test('ip:host:container, ip::container, ranges, udp, --expose, and -P with the image\'s EXPOSE', async () => {
    const [a, b, c] = await freePorts(3);
    const [u] = await freePorts();
    await dockerOk(env(), [
      'run', '-d', '--name', 'p2-multi',
      '-p', `127.0.0.1:${a}:80`,
      '-p', '127.0.0.1::81',
      '-p', `${b}-${c}:82-83`,
      '--expose', '85',
      IMAGE, ...SERVE(80, 'p2-hello'),
    ]);
    assert.match(await readEventually('127.0.0.1', a!, 'p2-hello'), /p2-hello/);
    const lines = (await dockerOk(env(), ['port', 'p2-multi'])).trim().split('\n').sort();
    const ephemeral = Number(/81\/tcp -> 127\.0\.0\.1:(\d+)/.exec(lines.join('\n'))?.[1]);
    assert.ok(ephemeral > 0, lines.join('\n'));
    assert.deepEqual(lines, [
      `80/tcp -> 127.0.0.1:${a}`,
      `81/tcp -> 127.0.0.1:${ephemeral}`,
      `82/tcp -> 0.0.0.0:${b}`,
      `83/tcp -> 0.0.0.0:${c}`,
    ]);
    const psPorts = (await dockerOk(env(), ['ps', '--filter', 'name=p2-multi', '--format', '{{.Ports}}'])).trim();
    // The CLI orders the column itself (unpublished ports first); the API's order does not matter.
    assert.equal(psPorts, `85/tcp, 127.0.0.1:${a}->80/tcp, 127.0.0.1:${ephemeral}->81/tcp, 0.0.0.0:${b}->82/tcp, 0.0.0.0:${c}->83/tcp`);
    // The udp port reaches the container: nc -u -l prints what it receives to the log.
    const ps = async (filter: string): Promise<string> => dockerOk(env(), ['ps', '--filter', 'name=p2-', '--filter', filter, '--format', '{{.Names}}']);
    assert.equal(await ps('publish=80'), 'p2-multi\n');
    assert.equal(await ps('publish=82-83/tcp'), 'p2-multi\n');
    assert.equal(await ps('publish=85'), '', 'exposed but not published');
    assert.equal(await ps('expose=85'), 'p2-multi\n');
    assert.equal(await ps('publish=80/udp'), '');
    await dockerOk(env(), ['rm', '-f', 'p2-multi']);

    // UDP: busybox has no UDP server, the Debian image's perl does; it logs what it receives.
    await dockerOk(env(), ['load', '-i', await debianImageTar()]);
    await dockerOk(env(), [
      'run', '-d', '--name', 'p2-udp', '-p', `127.0.0.1:${u}:84/udp`, DEBIAN_IMAGE, 'perl', '-MIO::Socket::INET', '-e',
      '$|=1; my $s = IO::Socket::INET->new(LocalPort => 84, Proto => "udp") or die; while (defined $s->recv(my $m, 200)) { print "got:$m" }',
    ]);
    assert.equal(await dockerOk(env(), ['port', 'p2-udp']), `84/udp -> 127.0.0.1:${u}\n`);
    const client = createSocket('udp4');
    for (let i = 0; i < 25; i++) {
      client.send('p2-udp-datagram\n', u!, '127.0.0.1');
      await sleep(200);
      if ((await dockerOk(env(), ['logs', 'p2-udp'])).includes('got:p2-udp-datagram')) break;
    }
    client.close();
    assert.match(await dockerOk(env(), ['logs', 'p2-udp']), /got:p2-udp-datagram/);
    await dockerOk(env(), ['rm', '-f', 'p2-udp']);

    // -P publishes the image's EXPOSE ports: make an image that has some (export + import --change).
    const tarPath = join(berth.baseDir, 'p3-rootfs.tar');
    await dockerOk(env(), ['create', '--name', 'p3-src', IMAGE, 'true']);
    await dockerOk(env(), ['export', '-o', tarPath, 'p3-src']);
    await dockerOk(env(), ['rm', 'p3-src']);
    await dockerOk(env(), ['import', '--change', 'EXPOSE 90', '--change', 'EXPOSE 91/udp', tarPath, 'berth-test/exposing:1']);
    assert.equal(await dockerOk(env(), ['image', 'inspect', '--format', '{{json .Config.ExposedPorts}}', 'berth-test/exposing:1']), '{"90/tcp":{},"91/udp":{}}\n');
    await dockerOk(env(), ['run', '-d', '--name', 'p3-all', '-P', 'berth-test/exposing:1', ...SERVE(90, 'p3-hello')]);
    const all = (await dockerOk(env(), ['port', 'p3-all'])).trim().split('\n').sort();
    assert.equal(all.length, 2, all.join('\n'));
    assert.match(all[0]!, /^90\/tcp -> 0\.0\.0\.0:\d+$/);
    assert.match(all[1]!, /^91\/udp -> 0\.0\.0\.0:\d+$/);
    const port90 = Number(all[0]!.split(':')[1]);
    assert.match(await readEventually('127.0.0.1', port90, 'p3-hello'), /p3-hello/);
    await dockerOk(env(), ['rm', '-f', 'p3-all']);
    await dockerOk(env(), ['rmi', 'berth-test/exposing:1']);
  });

  test('a port already allocated is refused with Docker\'s message and nothing is left behind', async () => {
    const [p] = await freePorts();
    await dockerOk(env(), ['run', '-d', '--name', 'p4-first', '-p', `${p}:80`, IMAGE, ...SERVE(80, 'p4-first')]);
    const instanceBefore = await networkLeftovers(berth.dataRoot);
    const second = await docker(env(), ['run', '-d', '--name', 'p4-second', '-p', `${p}:80`, IMAGE, 'sleep', '60']);
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, new RegExp(`Bind for 0\\.0\\.0\\.0:${p} failed: port is already allocated`));
    assert.equal((await dockerOk(env(), ['inspect', '--format', '{{.State.Running}}', 'p4-second'])).trim(), 'false');
    const instanceAfter = await networkLeftovers(berth.dataRoot);
    assert.deepEqual(instanceAfter.veths, instanceBefore.veths, 'no veth of the refused container is left');
    assert.match(await readEventually('127.0.0.1', p!, 'p4-first'), /p4-first/, 'the first container keeps its port');
    // A port some other process of the host holds is refused too.
    const [q] = await freePorts();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(q, '0.0.0.0', resolve));
    const third = await docker(env(), ['run', '-d', '--name', 'p4-third', '-p', `${q}:80`, IMAGE, 'sleep', '60']);
    holder.close();
    assert.notEqual(third.code, 0);
    assert.match(third.stderr, /address already in use/);
    await dockerOk(env(), ['rm', '-f', 'p4-first', 'p4-second', 'p4-third']);
    const left = await networkLeftovers(berth.dataRoot);
    assert.deepEqual(left.veths, [], berth.logs().split('\n').filter((l) => /"level":[45]0/.test(l)).slice(-5).join('\n'));
  });
});
