/**
 * Benchmark: what the agent tunnel costs (issue 6). One real `berth agent` in its own network
 * namespace, joined to an in-process hub over the lab bridge; the same engine is reached
 *   - through the tunnel: a fresh HTTP/2 stream per request over the agent's one mutual-TLS
 *     connection, HTTP/1.1 with `Connection: close` inside (what the server's front does);
 *   - directly: the agent's operator unix socket, a fresh connection per request.
 * Rows: GET /_ping latency; bulk upload (PUT /containers/{id}/archive) and download
 * (GET /containers/{id}/archive) of one file into a busybox container. Also: join time
 * (agent process start to host up).
 *
 * Usage: node dist/bench/cluster-tunnel.js [--pings 1000] [--mib 128] [--no-write]
 */
import { request, type IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Duplex } from 'node:stream';
import { startCluster } from '../test/support/cluster-harness.js';
import { busyboxImageTar, BUSYBOX_IMAGE } from '../test/support/test-images.js';
import { tarOf } from '../test/support/tar-files.js';
import { createReadStream } from 'node:fs';
import { writeBenchmarkSection } from './doc-section.js';
import { median, quantile, timed } from './timing.js';

const { values } = parseArgs({ options: { pings: { type: 'string', default: '1000' }, mib: { type: 'string', default: '128' }, 'no-write': { type: 'boolean', default: false } } });
const pings = Number(values.pings);
const mib = Number(values.mib);

type Connect = () => Promise<Duplex | undefined>;

function call(connect: Connect, socketPath: string | undefined, method: string, path: string, body?: Buffer | string, file?: string): Promise<{ status: number; bytes: number }> {
  return connect().then(
    (stream) =>
      new Promise((resolve, reject) => {
        const req = request(
          {
            method,
            path,
            // createConnection is only used without an agent; a unix socket gets a fresh one.
            ...(stream ? { createConnection: () => stream as never } : { socketPath, agent: false }),
            headers: {
              connection: 'close',
              ...(body !== undefined ? { 'content-type': 'application/x-tar', 'content-length': Buffer.byteLength(body) } : {}),
              ...(file ? { 'content-type': 'application/x-tar' } : {}),
            },
          },
          (res: IncomingMessage) => {
            let bytes = 0;
            res.on('data', (c: Buffer) => (bytes += c.length));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        if (file) createReadStream(file).pipe(req);
        else req.end(body);
      }),
  );
}

const cluster = await startCluster({ controlPlane: 'in-process', downTimeoutMs: 5000 });

try {
  const joinMs = await timed(async () => {
    await cluster.startAgent({ name: 'bench', heartbeatMs: 1000, extraArgs: ['-H', `unix://${join(cluster.baseDir, 'agent-op.sock')}`] });
  });
  const socketPath = join(cluster.baseDir, 'agent-op.sock');
  const hub = cluster.hub!;
  const hostId = hub.host('bench')!.id;
  const tunnel: Connect = () => hub.openStream(hostId);
  const direct: Connect = async () => undefined;

  const load = await call(direct, socketPath, 'POST', '/images/load?quiet=1', undefined, await busyboxImageTar());
  if (load.status !== 200) throw new Error(`load: ${load.status}`);
  const created = await new Promise<string>((resolve, reject) => {
    const req = request({ socketPath, method: 'POST', path: '/containers/create', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => (res.statusCode === 201 ? resolve((JSON.parse(text) as { Id: string }).Id) : reject(new Error(text))));
    });
    req.end(JSON.stringify({ Image: BUSYBOX_IMAGE, Cmd: ['true'] }));
  });
  const blob = await tarOf({ blob: randomBytes(mib * 1024 * 1024) });

  const rows: string[] = [];
  for (const [label, connect] of [['tunnel (HTTP/2 stream over mutual TLS)', tunnel], ['direct (agent\'s unix socket)', direct]] as const) {
    for (let i = 0; i < 100; i++) await call(connect, socketPath, 'GET', '/_ping');
    const times: number[] = [];
    for (let i = 0; i < pings; i++) times.push(await timed(() => call(connect, socketPath, 'GET', '/_ping')));
    const up: number[] = [];
    const down: number[] = [];
    for (let i = 0; i < 3; i++) {
      up.push(await timed(async () => {
        const r = await call(connect, socketPath, 'PUT', `/containers/${created}/archive?path=/tmp`, blob);
        if (r.status !== 200) throw new Error(`upload ${r.status}`);
      }));
      down.push(await timed(async () => {
        const r = await call(connect, socketPath, 'GET', `/containers/${created}/archive?path=/tmp/blob`);
        if (r.status !== 200 || r.bytes < mib * 1024 * 1024) throw new Error(`download ${r.status} ${r.bytes}`);
      }));
    }
    const rate = (ms: number[]): string => `${((mib / median(ms)) * 1000).toFixed(0)} MiB/s`;
    rows.push(`| ${label} | ${(median(times) * 1000).toFixed(0)} µs | ${(quantile(times, 0.99) * 1000).toFixed(0)} µs | ${rate(up)} | ${rate(down)} |`);
  }
  const section = [
    '## Agent tunnel: through the control plane\'s stream vs the agent\'s own socket (`bench/cluster-tunnel.ts`)',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`node dist/bench/cluster-tunnel.js --pings ${pings} --mib ${mib}\` (load average ${loadavg()[0]!.toFixed(2)}): one \`berth agent\` in its own network namespace, joined over a lab bridge to an in-process hub; ${pings} sequential \`GET /_ping\` per row after 100 warm-up, each on a fresh connection (a fresh tunnel stream); upload and download of one ${mib} MiB file into a busybox container (\`PUT\`/\`GET /containers/{id}/archive\`), median of 3.`,
    '',
    '| path | `_ping` median | `_ping` p99 | upload | download |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    `Join (agent process start to host up, engine start included): ${(joinMs / 1000).toFixed(2)} s.`,
  ].join('\n');
  console.log(section);
  if (!values['no-write']) await writeBenchmarkSection('bench/cluster-tunnel.ts', section);
} catch (err) {
  console.error(cluster.agents[0]?.logs().slice(-4000));
  throw err;
} finally {
  await cluster.stop();
}
