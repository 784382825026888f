/**
 * Benchmark: the Store calls one Docker API request makes, on SQLite and on etcd side by side.
 *
 * Each backend gets the same workload on fresh state: create 1,000 container-sized records
 * (about 3 KB of JSON, named), then get each by id, look each up by name and by a 12-character
 * id prefix (what `docker inspect <ref>` does), update each with a compare-and-swap revision
 * (a state change), list all 1,000 (`docker ps -a`) 30 times, and delete each. Calls run one at a
 * time, as one API request's calls do; the figure is each call's wall time.
 *
 * Backends: SQLite in WAL with synchronous=FULL in a temp dir (the embedded default); etcd 3.4
 * as one member and as a three-member cluster, all on this machine over loopback, data in temp
 * dirs (so the cluster's members share one disk and two cores: a real cluster spreads them).
 *
 * Then the same through the Docker API: a Berth on each store (SQLite; etcd with one member),
 * and over one kept-alive connection to its socket, `POST /containers/create` of 200 named
 * containers, `GET /containers/<name>/json` of each, `GET /containers/json?all=1` and
 * `DELETE /containers/<name>` of each, every request timed alone.
 *
 * Usage: node dist/bench/store.js [--records 1000] [--containers 200] [--no-write]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { RequestContext } from '../src/common/context.js';
import { EtcdStore } from '../src/server/store/etcd/etcd-store.js';
import { SqliteStore } from '../src/server/store/sqlite/sqlite-store.js';
import type { Store } from '../src/server/store/store.js';
import { Agent, request } from 'node:http';
import { startBerth } from '../test/support/berth-harness.js';
import { dockerOk } from '../test/support/docker-cli.js';
import { EtcdCluster } from '../test/support/etcd-harness.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../test/support/test-images.js';
import { writeBenchmarkSection } from './doc-section.js';
import { median, quantile, timed } from './timing.js';

const LIST_RUNS = 30;
const ctx: RequestContext = { tenant: 'bench', requestId: 'bench' };

type Operation = 'create' | 'get by id' | 'lookup by name' | 'lookup by id prefix' | 'update (CAS)' | 'list of N' | 'delete';
type Timings = Map<Operation, number[]>;

/** A value shaped like a container record: config, host config, state, mounts, about 3 KB. */
function containerLike(i: number): unknown {
  return {
    Config: { Image: 'busybox:latest', Cmd: ['sh', '-c', `echo ${i}`], Env: Array.from({ length: 12 }, (_, n) => `VAR_${n}=${'x'.repeat(40)}`), Labels: { app: 'bench', index: String(i) } },
    HostConfig: { Memory: 268435456, NanoCpus: 500000000, Binds: ['/data:/data'], PortBindings: { '80/tcp': [{ HostPort: String(8000 + (i % 1000)) }] } },
    State: { Status: 'created', Pid: 0, ExitCode: 0, StartedAt: '0001-01-01T00:00:00Z' },
    Mounts: Array.from({ length: 4 }, (_, n) => ({ Type: 'volume', Name: `v${n}-${i}`, Destination: `/mnt/${n}`, RW: true })),
    Padding: randomBytes(900).toString('hex'),
  };
}

async function runWorkload(store: Store, records: number): Promise<Timings> {
  const timings: Timings = new Map();
  const time = async (op: Operation, fn: () => Promise<unknown>): Promise<void> => {
    const list = timings.get(op) ?? [];
    list.push(await timed(fn));
    timings.set(op, list);
  };
  const ids = Array.from({ length: records }, () => randomBytes(32).toString('hex'));
  for (const [i, id] of ids.entries()) await time('create', () => store.create(ctx, 'container', { id, name: `bench-${i}`, value: containerLike(i) }));
  for (const id of ids) await time('get by id', () => store.get(ctx, 'container', id));
  for (let i = 0; i < records; i++) await time('lookup by name', () => store.lookup(ctx, 'container', `bench-${i}`));
  for (const id of ids) await time('lookup by id prefix', () => store.lookup(ctx, 'container', id.slice(0, 12)));
  for (const [i, id] of ids.entries()) {
    await time('update (CAS)', async () => {
      const current = await store.get(ctx, 'container', id);
      await store.update(ctx, 'container', id, { value: containerLike(i), expectedRevision: current.revision });
    });
  }
  for (let run = 0; run < LIST_RUNS; run++) {
    await time('list of N', async () => {
      const listed = await store.list(ctx, 'container');
      if (listed.length !== records) throw new Error(`listed ${listed.length}, expected ${records}`);
    });
  }
  for (const id of ids) await time('delete', () => store.delete(ctx, 'container', id));
  return timings;
}

type ApiCall = 'POST /containers/create' | 'GET /containers/{name}/json' | 'GET /containers/json?all=1' | 'DELETE /containers/{name}';

/** The Docker API calls above, timed against a Berth started with `upArgs`. */
async function runApiWorkload(upArgs: string[], containers: number): Promise<Map<ApiCall, number[]>> {
  const berth = await startBerth({ extraArgs: upArgs });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const send = (method: string, path: string, body?: unknown): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request({ socketPath: berth.socket, path, method, agent, headers: { 'Content-Type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  const timings = new Map<ApiCall, number[]>();
  const time = async (call: ApiCall, method: string, path: string, expect: number, body?: unknown): Promise<void> => {
    let status = 0;
    const ms = await timed(async () => (status = await send(method, path, body)));
    if (status !== expect) throw new Error(`${method} ${path} answered ${status}`);
    timings.set(call, [...(timings.get(call) ?? []), ms]);
  };
  try {
    await dockerOk(berth.env, ['load', '-i', await busyboxImageTar()]);
    const names = Array.from({ length: containers }, (_, i) => `bench-${i}`);
    for (const name of names) await time('POST /containers/create', 'POST', `/containers/create?name=${name}`, 201, { Image: BUSYBOX_IMAGE, Cmd: ['true'] });
    for (const name of names) await time('GET /containers/{name}/json', 'GET', `/containers/${name}/json`, 200);
    for (let run = 0; run < LIST_RUNS; run++) await time('GET /containers/json?all=1', 'GET', '/containers/json?all=1', 200);
    for (const name of names) await time('DELETE /containers/{name}', 'DELETE', `/containers/${name}`, 204);
    return timings;
  } finally {
    agent.destroy();
    await berth.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { records: { type: 'string', default: '1000' }, containers: { type: 'string', default: '200' }, 'no-write': { type: 'boolean', default: false } },
  });
  const records = Number(values.records);
  const containers = Number(values.containers);
  const results: { backend: string; timings: Timings }[] = [];

  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-store-'));
  const sqlite = new SqliteStore(join(dir, 'berth.db'));
  try {
    results.push({ backend: 'SQLite', timings: await runWorkload(sqlite, records) });
  } finally {
    await sqlite.close();
    await rm(dir, { recursive: true, force: true });
  }
  for (const members of [1, 3]) {
    const cluster = await EtcdCluster.start(members);
    const etcd = new EtcdStore({ endpoints: cluster.endpoints() });
    try {
      results.push({ backend: `etcd, ${members} member${members > 1 ? 's' : ''}`, timings: await runWorkload(etcd, records) });
    } finally {
      await etcd.close();
      await cluster.stop();
    }
  }

  const api: { backend: string; timings: Map<ApiCall, number[]> }[] = [{ backend: 'SQLite', timings: await runApiWorkload([], containers) }];
  const apiCluster = await EtcdCluster.start(1);
  try {
    api.push({ backend: 'etcd, 1 member', timings: await runApiWorkload(['--store', apiCluster.url()], containers) });
  } finally {
    await apiCluster.stop();
  }
  const apiRows = [...api[0]!.timings.keys()].map((call) => {
    const cells = api.map((r) => {
      const t = r.timings.get(call)!;
      return `${fmt(median(t))} / ${fmt(quantile(t, 0.99))} ms`;
    });
    const ratio = median(api[1]!.timings.get(call)!) / median(api[0]!.timings.get(call)!);
    return `| \`${call}\` | ${cells.join(' | ')} | ${ratio.toFixed(2)}× |`;
  });

  const ops = [...results[0]!.timings.keys()];
  const header = `| call | ${results.map((r) => `${r.backend} p50 / p99`).join(' | ')} | etcd (1) / SQLite, p50 |`;
  const rows = ops.map((op) => {
    const cells = results.map((r) => {
      const t = r.timings.get(op)!;
      return `${fmt(median(t))} / ${fmt(quantile(t, 0.99))} ms`;
    });
    const ratio = median(results[1]!.timings.get(op)!) / median(results[0]!.timings.get(op)!);
    return `| ${op.replace('N', String(records))} | ${cells.join(' | ')} | ${ratio.toFixed(1)}× |`;
  });
  const section = [
    '## Store calls: SQLite vs etcd (`bench/store.ts`)',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`node dist/bench/store.js --records ${records} --containers ${containers}\` on ${cpus().length} cores: ` +
      `${records} container-sized records (about 3 KB of JSON each), every call timed alone, one at a time as one API request makes them; ` +
      `"update (CAS)" is a get plus an update with the revision read; "list" is repeated ${LIST_RUNS} times. ` +
      'SQLite: WAL, synchronous=FULL. etcd 3.4: members on loopback with data in temp dirs on the same disk (a write is acknowledged after a quorum fsynced it).',
    'For scale: the docker CLI\'s own start-up plus one API round trip is about 14 ms (`docker ps -q` above), so the ' +
      'extra millisecond or two a request pays for its etcd round trips (a get or a create is one, a lookup by name, an update or a delete two) stays small next to it.',
    '',
    header,
    `| --- | ${results.map(() => '---:').join(' | ')} | ---: |`,
    ...rows,
    '',
    `Through the Docker API, a Berth on each store, ${containers} containers (busybox, \`true\`, created not started), ` +
      `each request timed alone on one kept-alive connection to the unix socket; the list is repeated ${LIST_RUNS} times:`,
    '',
    `| request | ${api.map((r) => `${r.backend} p50 / p99`).join(' | ')} | etcd / SQLite, p50 |`,
    `| --- | ${api.map(() => '---:').join(' | ')} | ---: |`,
    ...apiRows,
    '',
    'Through the API the gap is the number of store calls a request makes. The list view is the outlier on both stores: ' +
      'for each listed container it lists every endpoint record of the tenant (`NetworkService.endpointsOf`, a `store.list` ' +
      'filtered by container), so a list of N containers reads N² endpoint records; on etcd each of those lists is also a round trip. ' +
      "One endpoint list per request, grouped by container, would make it linear (left to the networking code's owner).",
  ].join('\n');
  process.stdout.write(`${section}\n`);
  if (!values['no-write']) await writeBenchmarkSection('bench/store.ts', section);
}

function fmt(ms: number): string {
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
}

await main();
