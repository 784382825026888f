/**
 * Benchmark: the Docker API of `berth server` on etcd against the same on SQLite (issue 7).
 * Each setup is a real cluster (cluster-harness.ts): one server, one agent in its own network
 * namespace, a tenant over mutual TLS; etcd is a three-member cluster on loopback
 * (etcd-harness.ts). Rows: `POST /containers/create` (placement included), `GET
 * /containers/{name}/json`, `GET /containers/json?all=1`, each request timed alone on one
 * kept-alive TLS connection.
 *
 * Usage: node dist/bench/ha-api.js [--containers 50] [--lists 20] [--no-write]
 */
import { Agent, request } from 'node:https';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { startCluster } from '../test/support/cluster-harness.js';
import { EtcdCluster } from '../test/support/etcd-harness.js';
import { dockerOk } from '../test/support/docker-cli.js';
import { busyboxImageTar, BUSYBOX_IMAGE } from '../test/support/test-images.js';
import { writeBenchmarkSection } from './doc-section.js';
import { quantile, timed } from './timing.js';

const { values } = parseArgs({ options: { containers: { type: 'string', default: '50' }, lists: { type: 'string', default: '20' }, 'no-write': { type: 'boolean', default: false } } });
const containers = Number(values.containers);
const lists = Number(values.lists);

type Row = { create: number[]; inspect: number[]; list: number[] };

async function measure(store: string | undefined): Promise<Row> {
  const cluster = await startCluster({ controlPlane: 'berth-server', ...(store ? { store } : {}) });
  try {
    await cluster.startAgent({ name: 'bench-a' });
    const env = await cluster.createTenantClient('tenant-bench');
    await dockerOk(env, ['load', '-i', await busyboxImageTar()]);
    const certDir = env.DOCKER_CERT_PATH!;
    const agent = new Agent({
      keepAlive: true,
      maxSockets: 1,
      ca: await readFile(join(certDir, 'ca.pem')),
      cert: await readFile(join(certDir, 'cert.pem')),
      key: await readFile(join(certDir, 'key.pem')),
    });
    const call = (method: string, path: string, body?: unknown): Promise<number> =>
      new Promise((resolve, reject) => {
        const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
        const req = request(
          { host: '127.0.0.1', port: cluster.tenantPort, method, path, agent, servername: undefined, headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {} },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => (res.statusCode! < 300 ? resolve(res.statusCode!) : reject(new Error(`${method} ${path}: ${res.statusCode} ${Buffer.concat(chunks).toString('utf8')}`))));
          },
        );
        req.on('error', reject);
        req.end(payload);
      });
    const row: Row = { create: [], inspect: [], list: [] };
    for (let i = 0; i < containers; i++) {
      row.create.push(await timed(() => call('POST', `/v1.47/containers/create?name=b${i}`, { Image: BUSYBOX_IMAGE, Cmd: ['true'], HostConfig: { Memory: 16 * 1024 * 1024 } })));
    }
    for (let i = 0; i < containers; i++) row.inspect.push(await timed(() => call('GET', `/v1.47/containers/b${i}/json`)));
    for (let i = 0; i < lists; i++) row.list.push(await timed(() => call('GET', '/v1.47/containers/json?all=1')));
    agent.destroy();
    return row;
  } finally {
    await cluster.stop();
  }
}

const sqlite = await measure(undefined);
const etcd = await EtcdCluster.start(3);
let onEtcd: Row;
try {
  onEtcd = await measure(etcd.url());
} finally {
  await etcd.stop();
}

const ms = (v: number): string => v.toFixed(v < 10 ? 2 : 1);
const cell = (values: number[]): string => `${ms(quantile(values, 0.5))} / ${ms(quantile(values, 0.99))} ms`;
const lines = [
  '## `berth server` API: etcd vs SQLite (`bench/ha-api.ts`)',
  '',
  `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`node dist/bench/ha-api.js --containers ${containers} --lists ${lists}\` (load average ${loadavg()[0]!.toFixed(2)}, 2 cores shared with other work): one \`berth server\` and one \`berth agent\` in its own network namespace (cluster-harness.ts), a tenant over mutual TLS on one kept-alive connection, every request timed alone; the store is SQLite under the server's data root, or a three-member etcd 3.4 cluster on loopback. ${containers} containers (busybox, \`true\`, 16 MiB memory limit so that the scheduler fits them on one host; created, not started); the list covers all of them and is repeated ${lists} times.`,
  '',
  '| request | SQLite p50 / p99 | etcd (3 members) p50 / p99 | etcd / SQLite, p50 |',
  '| --- | ---: | ---: | ---: |',
  ...(['create', 'inspect', 'list'] as const).map((key) => {
    const label = { create: '`POST /containers/create`', inspect: '`GET /containers/{name}/json`', list: '`GET /containers/json?all=1`' }[key];
    return `| ${label} | ${cell(sqlite[key])} | ${cell(onEtcd[key])} | ${(quantile(onEtcd[key], 0.5) / quantile(sqlite[key], 0.5)).toFixed(2)}× |`;
  }),
  '',
];
const section = lines.join('\n');
console.log(section);
if (!values['no-write']) await writeBenchmarkSection('bench/ha-api.ts', section);
