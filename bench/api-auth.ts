/**
 * Benchmark: what authentication and tenant scoping cost a Docker API request.
 *
 * One Berth with a unix socket (the operator) and a mutual-TLS TCP listener (tenants). Each
 * measured request runs sequentially on one kept-alive connection, so handshakes are not
 * counted:
 *   - operator over the unix socket: no TLS, no credential lookup, scoped to "default";
 *   - tenant over mutual TLS: certificate serial → credential → tenant, policy, scoping;
 *   - the same tenant with an API token as well (a SHA-256 and a constant-time compare).
 * The issue's question is the auth and scoping overhead, which end-to-end figures mix with
 * TLS record processing; so the in-process cost of the auth step itself (the hook's work:
 * TenantService.authenticate and policyOf) is measured too, and the overhead is that cost
 * against the median end-to-end time of the request it guards.
 *
 * Usage: node dist/bench/api-auth.js [--requests 3000] [--no-write]
 */
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { dockerOk } from '../test/support/docker-cli.js';
import { startTenantBerth } from '../test/support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../test/support/test-images.js';
import { SqliteStore } from '../src/server/store/sqlite/sqlite-store.js';
import { CertificateAuthority } from '../src/server/tenancy/pki.js';
import { TenantService } from '../src/server/tenancy/tenant-service.js';
import { writeBenchmarkSection } from './doc-section.js';
import { quantile } from './timing.js';

type Send = (path: string) => Promise<number>;

async function measure(send: Send, path: string, count: number): Promise<number[]> {
  for (let i = 0; i < 200; i++) await send(path); // warm up: JIT, connection, caches
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const began = process.hrtime.bigint();
    const status = await send(path);
    times.push(Number(process.hrtime.bigint() - began) / 1e3);
    if (status !== 200) throw new Error(`${path} answered ${status}`);
  }
  return times;
}

function sender(make: (path: string, done: (status: number) => void) => void): Send {
  return (path) =>
    new Promise((resolve, reject) => {
      try {
        make(path, resolve);
      } catch (err) {
        reject(err);
      }
    });
}

/** Microseconds per call of the auth step, over many calls. */
async function authStepCost(dir: string, withToken: boolean): Promise<number> {
  await mkdir(dir, { recursive: true });
  const store = new SqliteStore(join(dir, 'auth-bench.db'));
  const ca = await CertificateAuthority.open(join(dir, 'auth-bench-pki'));
  const tenants = new TenantService({ store, ca, ownsContainers: async () => false });
  await tenants.create('bench');
  const cert = await tenants.issueCertificate('bench');
  const token = withToken ? (await tenants.issueToken('bench')).token : undefined;
  const rounds = 200_000;
  for (let i = 0; i < 10_000; i++) tenants.policyOf(tenants.authenticate(cert.serial, token, 'r').tenant);
  const began = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) tenants.policyOf(tenants.authenticate(cert.serial, token, 'r').tenant);
  const us = Number(process.hrtime.bigint() - began) / 1e3 / rounds;
  await store.close();
  return us;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: 'string', default: '3000' }, 'no-write': { type: 'boolean', default: false } } });
  const count = Number(values.requests);
  const t = await startTenantBerth();
  try {
    const env = await t.createTenant('bench');
    const tokenOut = await t.berthOk(['tenant', 'token', 'bench']);
    const token = /^(berth_\S+)$/m.exec(tokenOut)![1]!;
    await dockerOk(env, ['load', '-i', await busyboxImageTar()]);
    await dockerOk(t.berth.env, ['load', '-i', await busyboxImageTar()]);
    for (const e of [env, t.berth.env]) for (let i = 0; i < 5; i++) await dockerOk(e, ['create', BUSYBOX_IMAGE, 'true']);

    const certDir = join(t.work, 'bench-certs');
    const [ca, cert, key] = await Promise.all(['ca.pem', 'cert.pem', 'key.pem'].map((f) => readFile(join(certDir, f), 'utf8')));
    const unixAgent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    const tlsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
    const tlsTokenAgent = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
    const drain = (done: (status: number) => void) => (res: import('node:http').IncomingMessage) => {
      res.resume();
      res.on('end', () => done(res.statusCode ?? 0));
    };
    const operator = sender((path, done) => httpRequest({ agent: unixAgent, socketPath: t.berth.socket, path }, drain(done)).end());
    const tenant = sender((path, done) =>
      httpsRequest({ agent: tlsAgent, host: '127.0.0.1', port: t.port, servername: 'localhost', ca, cert, key, path }, drain(done)).end(),
    );
    const tenantToken = sender((path, done) =>
      httpsRequest(
        { agent: tlsTokenAgent, host: '127.0.0.1', port: t.port, servername: 'localhost', ca, cert, key, path, headers: { authorization: `Bearer ${token}` } },
        drain(done),
      ).end(),
    );

    const rows: string[] = [];
    const medians: Record<string, number> = {};
    for (const path of ['/_ping', '/v1.47/containers/json?all=1']) {
      const results = [
        ['operator, unix socket', await measure(operator, path, count)],
        ['tenant, mutual TLS', await measure(tenant, path, count)],
        ['tenant, mutual TLS + API token', await measure(tenantToken, path, count)],
      ] as const;
      for (const [who, times] of results) {
        medians[`${path} ${who}`] = quantile(times, 0.5);
        rows.push(`| \`GET ${path}\` | ${who} | ${quantile(times, 0.5).toFixed(0)} µs | ${quantile(times, 0.9).toFixed(0)} µs |`);
      }
    }
    unixAgent.destroy();
    tlsAgent.destroy();
    tlsTokenAgent.destroy();

    const certOnly = await authStepCost(t.work, false);
    const withToken = await authStepCost(join(t.work, 'token'), true);
    const listMedian = medians['/v1.47/containers/json?all=1 tenant, mutual TLS']!;
    const pingMedian = medians['/_ping tenant, mutual TLS']!;
    const pct = (x: number, of: number): string => `${((100 * x) / of).toFixed(2)} %`;

    const section = [
      '## API latency with and without authentication and scoping',
      '',
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`node dist/bench/api-auth.js --requests ${count}\`: one Berth, ${count} sequential requests per row on one kept-alive connection (after 200 warm-up requests), 5 containers in each scope.`,
      '',
      '| request | caller | median | p90 |',
      '| --- | --- | ---: | ---: |',
      ...rows,
      '',
      `The auth step itself (certificate serial → credential → tenant → policy), measured in process over 200,000 calls: ${certOnly.toFixed(2)} µs per request, ${withToken.toFixed(2)} µs with an API token. Against the median tenant request that is ${pct(certOnly, listMedian)} of \`containers/json\` and ${pct(certOnly, pingMedian)} of \`_ping\` (${pct(withToken, listMedian)} and ${pct(withToken, pingMedian)} with a token). Target: under 5 %.`,
      '',
      'The gap between the unix-socket and TLS rows is the TLS record layer (encryption of each request and answer on an established connection), not authentication; the handshake is paid once per connection and is not in these figures. Scoping is in every row alike: the operator is a scope of the same store.',
    ].join('\n');
    process.stdout.write(`${section}\n`);
    if (!values['no-write']) await writeBenchmarkSection('bench/api-auth.ts', section);
  } finally {
    await t.stop();
  }
}

await main();
