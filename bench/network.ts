/**
 * Benchmark: Berth's networking on this machine.
 *
 *   - attach at start: the network part of a container start (namespace, veths, addresses, etc
 *     files), from Berth's own phase timings (BERTH_TRACE=1), over N `docker run --rm` on a user
 *     network; it includes creating the network namespace, which runc would otherwise do;
 *   - attach of a running container: POST /networks/{id}/connect (hot-plug of a veth) timed at
 *     the API, N times, each followed by a disconnect;
 *   - published port: HTTP requests per second (one new TCP connection each, busybox httpd in
 *     the container) through 127.0.0.1:<published port> (DNAT) and, as the floor, straight to
 *     the container's address; sequential and with 8 clients at once.
 *
 * dockerd is not measured side by side: the comparison dockerd must run with --bridge=none
 * --iptables=false here (it would otherwise change the host's network), so it cannot publish
 * ports or attach containers to bridges. Prints a markdown table.
 *
 * Usage: node dist/bench/network.js [--runs 20] [--requests 2000]
 */
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { startBerth } from '../test/support/berth-harness.js';
import { dockerOk } from '../test/support/docker-cli.js';
import { busyboxImageTar } from '../test/support/test-images.js';
import { median } from './timing.js';

const IMAGE = 'berth-test/busybox';

/** Milliseconds of one POST to the Docker API on a unix socket. */
function timedPost(socketPath: string, path: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const req = request({ socketPath, path, method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - began) : reject(new Error(`${path}: status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

function get(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/index.html', agent: false }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

async function rate(host: string, port: number, total: number, clients: number): Promise<number> {
  let next = 0;
  const began = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total) {
        next++;
        await get(host, port);
      }
    }),
  );
  return Math.round(total / ((performance.now() - began) / 1000));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' }, requests: { type: 'string', default: '2000' } } });
  const runs = Number(values.runs);
  const requests = Number(values.requests);
  const berth = await startBerth({ env: { BERTH_TRACE: '1', BERTH_LOG_LEVEL: 'debug' } });
  try {
    await dockerOk(berth.env, ['load', '-i', await busyboxImageTar()]);
    await dockerOk(berth.env, ['network', 'create', 'bench-net']);
    for (let i = 0; i < runs; i++) await dockerOk(berth.env, ['run', '--rm', '--network', 'bench-net', IMAGE, 'true']);
    const attach = berth
      .logs()
      .split('\n')
      .filter((line) => line.includes('"trace":"start"'))
      .map((line) => (JSON.parse(line) as { phases: Record<string, number> }).phases.network)
      .filter((ms): ms is number => typeof ms === 'number');

    await dockerOk(berth.env, ['network', 'create', 'bench-plug']);
    await dockerOk(berth.env, ['run', '-d', '--name', 'bench-plugged', '--network', 'bench-net', IMAGE, 'sleep', '600']);
    const connects: number[] = [];
    for (let i = 0; i < runs; i++) {
      connects.push(await timedPost(berth.socket, '/v1.47/networks/bench-plug/connect', { Container: 'bench-plugged' }));
      await timedPost(berth.socket, '/v1.47/networks/bench-plug/disconnect', { Container: 'bench-plugged' });
    }
    await dockerOk(berth.env, ['rm', '-f', 'bench-plugged']);

    const port = 20000 + Math.floor(Math.random() * 20000);
    await dockerOk(berth.env, [
      'run', '-d', '--name', 'bench-web', '--network', 'bench-net', '-p', `127.0.0.1:${port}:80`, IMAGE,
      'sh', '-c', 'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www',
    ]);
    const ip = (await dockerOk(berth.env, ['inspect', '--format', '{{(index .NetworkSettings.Networks "bench-net").IPAddress}}', 'bench-web'])).trim();
    for (let i = 0; i < 50; i++) {
      if (await get('127.0.0.1', port).then(() => true, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await rate('127.0.0.1', port, 200, 4); // warm-up
    const rows = [
      ['network part of a start, median of ' + attach.length, `${median(attach).toFixed(1)} ms`],
      ['network part of a start, fastest', `${Math.min(...attach).toFixed(1)} ms`],
      [`network connect of a running container (API), median of ${connects.length}`, `${median(connects).toFixed(1)} ms`],
      [`requests/s via 127.0.0.1:published port, 1 client (${requests})`, String(await rate('127.0.0.1', port, requests, 1))],
      [`requests/s straight to the container, 1 client (${requests})`, String(await rate(ip, 80, requests, 1))],
      [`requests/s via 127.0.0.1:published port, 8 clients (${requests})`, String(await rate('127.0.0.1', port, requests, 8))],
      [`requests/s straight to the container, 8 clients (${requests})`, String(await rate(ip, 80, requests, 8))],
    ];
    console.log('| measure | Berth |\n| --- | ---: |');
    for (const [name, value] of rows) console.log(`| ${name} | ${value} |`);
    await dockerOk(berth.env, ['rm', '-f', 'bench-web']);
  } finally {
    await berth.stop();
  }
}

await main();
