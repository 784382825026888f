/**
 * Tenancy at the cluster's front: `berth server` with two real agents (cluster-harness.ts),
 * tenants driven by the docker CLI over mutual TLS, the operator by the berth CLI.
 * - placement strategy per tenant (`berth tenant create --placement-strategy`): a binpack
 *   tenant's containers fill one host, a spread tenant's go to different hosts;
 * - quotas counted across hosts and checked before a create is placed, also under concurrent
 *   creates, with the single-host engine's 403 message;
 * - the audit log of the front (`berth audit` against the server).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster } from '../../support/cluster-harness.js';
import { docker, dockerOk } from '../../support/docker-cli.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../../support/test-images.js';
import { AdminClient, AdminError } from '../../../src/cli/admin-client.js';

/**
 * One request the tenant makes with its own certificate, as the docker CLI would; the answer's
 * status and body. Used where the CLI's process start-up would stagger "concurrent" calls.
 */
async function tenantRequest(env: NodeJS.ProcessEnv, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  const dir = env.DOCKER_CERT_PATH!;
  const [ca, cert, key] = await Promise.all(['ca.pem', 'cert.pem', 'key.pem'].map((f) => readFile(join(dir, f))));
  const url = new URL(env.DOCKER_HOST!.replace(/^tcp:/, 'https:'));
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: url.hostname,
        port: Number(url.port),
        method,
        path,
        ca,
        cert,
        key,
        checkServerIdentity: () => undefined,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('cluster: tenant policy, quotas and audit at the front', () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await startCluster({ controlPlane: 'berth-server' });
    await cluster.startAgent({ name: 'tn-a' });
    await cluster.startAgent({ name: 'tn-b' });
  });

  after(async () => {
    await cluster?.stop();
  });

  const nodeOf = async (env: NodeJS.ProcessEnv, container: string): Promise<string> =>
    (await dockerOk(env, ['inspect', '--format', '{{.Node.Name}}', container])).trim();

  test('placement strategy per tenant: binpack fills one host, spread uses both', async () => {
    const packed = await cluster.createTenantClient('tn-pack', ['--placement-strategy', 'binpack']);
    const spread = await cluster.createTenantClient('tn-spread');
    const policy = JSON.parse(await cluster.berthOk(['tenant', 'policy', 'tn-pack'])) as { PlacementStrategy?: string };
    assert.equal(policy.PlacementStrategy, 'binpack');
    for (const env of [packed, spread]) await dockerOk(env, ['load', '-i', await busyboxImageTar()]);

    const packedHosts = new Set<string>();
    const spreadHosts = new Set<string>();
    for (let i = 0; i < 3; i++) {
      await dockerOk(packed, ['create', '--name', `p-${i}`, BUSYBOX_IMAGE, 'true']);
      packedHosts.add(await nodeOf(packed, `p-${i}`));
      await dockerOk(spread, ['create', '--name', `s-${i}`, BUSYBOX_IMAGE, 'true']);
      spreadHosts.add(await nodeOf(spread, `s-${i}`));
    }
    assert.equal(packedHosts.size, 1, `binpack used ${[...packedHosts].join(', ')}`);
    assert.deepEqual([...spreadHosts].sort(), ['tn-a', 'tn-b']);

    // Switched to spread by `tenant policy`: the next container goes to the other host.
    await cluster.berthOk(['tenant', 'policy', 'tn-pack', '--placement-strategy', 'spread']);
    await dockerOk(packed, ['create', '--name', 'p-3', BUSYBOX_IMAGE, 'true']);
    assert.ok(!packedHosts.has(await nodeOf(packed, 'p-3')), 'spread should pick the emptier host');

    // Bad values: the CLI's choices, and the admin API's 400 in Docker's error shape.
    const bad = await cluster.berthCli(['tenant', 'policy', 'tn-pack', '--placement-strategy', 'fill']);
    assert.notEqual(bad.code, 0);
    const admin = new AdminClient(`unix://${cluster.socket}`);
    await assert.rejects(admin.call('POST', '/berth/v1/tenants/tn-pack/update', { Policy: { PlacementStrategy: 'fill' } }), (err: unknown) => {
      assert.ok(err instanceof AdminError);
      assert.match(String(err.message), /unknown placement strategy "fill"/);
      return true;
    });
    await dockerOk(packed, ['rm', '-f', 'p-0', 'p-1', 'p-2', 'p-3']);
    await dockerOk(spread, ['rm', '-f', 's-0', 's-1', 's-2']);
  });

  test('quotas across hosts: 2 containers on 2 hosts, the third refused, also under concurrent creates', async () => {
    const env = await cluster.createTenantClient('tn-quota');
    await dockerOk(env, ['load', '-i', await busyboxImageTar()]);
    await cluster.berthOk(['tenant', 'quota', 'tn-quota', '--containers', '2', '--cpus', '3', '--networks', '1', '--volumes', '1']);

    await dockerOk(env, ['create', '--name', 'q-0', BUSYBOX_IMAGE, 'true']);
    await dockerOk(env, ['create', '--name', 'q-1', BUSYBOX_IMAGE, 'true']);
    assert.deepEqual([await nodeOf(env, 'q-0'), await nodeOf(env, 'q-1')].sort(), ['tn-a', 'tn-b']);
    const third = await docker(env, ['create', '--name', 'q-2', BUSYBOX_IMAGE, 'true']);
    assert.notEqual(third.code, 0);
    // The single-host engine's words (tenancy/quotas.ts enforceQuotas).
    assert.match(third.stderr, /quota exceeded: containers 2 of 2 in use, this container asks 1/);
    assert.equal((await docker(env, ['inspect', 'q-2'])).code, 1, 'nothing half-made');
    const usage = (await cluster.berthOk(['tenant', 'quota', 'tn-quota'])).split('\n').find((line) => line.startsWith('containers'));
    assert.match(usage ?? '', /containers\s+2\s+2/);
    const labels = JSON.parse(await dockerOk(env, ['info', '--format', '{{json .Labels}}'])) as string[];
    assert.ok(labels.includes('berth.quota.containers=2 of 2 in use'), labels.join(', '));

    // docker update is checked against the other containers' limits as recorded at the front
    // (under a cpus quota a container naming none got 1 CPU), and the new limit is recorded.
    await dockerOk(env, ['update', '--cpus', '2', 'q-0']);
    const raise = await docker(env, ['update', '--cpus', '1.5', 'q-1']);
    assert.notEqual(raise.code, 0);
    assert.match(raise.stderr, /quota exceeded: cpus 2 of 3 in use, this container asks 1.5/);
    const cpusLine = (await cluster.berthOk(['tenant', 'quota', 'tn-quota'])).split('\n').find((line) => line.startsWith('cpus'));
    assert.match(cpusLine ?? '', /cpus\s+3\s+3/);
    await cluster.berthOk(['tenant', 'quota', 'tn-quota', '--clear', 'cpus']);

    // Concurrent creates after freeing both: exactly two pass.
    await dockerOk(env, ['rm', '-f', 'q-0', 'q-1']);
    // Sent at once over the API (the CLI's start-up would space them out).
    const results = await Promise.all(
      [0, 1, 2, 3, 4, 5, 6, 7].map((i) => tenantRequest(env, 'POST', `/v1.47/containers/create?name=c-${i}`, { Image: BUSYBOX_IMAGE, Cmd: ['true'] })),
    );
    const passed = results.filter((r) => r.status === 201).length;
    assert.equal(passed, 2, results.map((r) => `${r.status} ${r.body.trim()}`).join(' | '));
    for (const r of results.filter((result) => result.status !== 201)) {
      assert.equal(r.status, 403);
      assert.match(r.body, /quota exceeded: containers 2 of 2 in use/);
    }
    const listed = (await dockerOk(env, ['ps', '-aq'])).trim().split('\n').filter(Boolean);
    assert.equal(listed.length, 2);

    // Networks and volumes, from the front's records.
    await dockerOk(env, ['network', 'create', 'qn-0']);
    const net = await docker(env, ['network', 'create', 'qn-1']);
    assert.notEqual(net.code, 0);
    assert.match(net.stderr, /quota exceeded: networks 1 of 1 in use, this network asks 1/);
    await dockerOk(env, ['volume', 'create', 'qv-0']);
    await dockerOk(env, ['volume', 'create', 'qv-0']); // the same name again is not a new volume
    const vol = await docker(env, ['volume', 'create', 'qv-1']);
    assert.notEqual(vol.code, 0);
    assert.match(vol.stderr, /quota exceeded: volumes 1 of 1 in use, this volume asks 1/);

    await dockerOk(env, ['rm', '-f', ...listed]);
    await dockerOk(env, ['network', 'rm', 'qn-0']);
    await dockerOk(env, ['volume', 'rm', 'qv-0']);
  });

  test('audit: a tenant\'s mutating call through the front is in `berth audit`', async () => {
    const env = await cluster.createTenantClient('tn-audit');
    const failed = await docker(env, ['create', '--pull', 'never', '--name', 'audited', 'no-such-image-here:1', 'true']);
    assert.notEqual(failed.code, 0);
    await dockerOk(env, ['network', 'create', 'audited-net']);
    const entries = JSON.parse(await cluster.berthOk(['audit', '--tenant', 'tn-audit', '--json'])) as {
      Tenant: string;
      Credential: string;
      Method: string;
      Path: string;
      Object?: string;
      Result?: { Status: number; Error?: string };
    }[];
    const create = entries.find((e) => e.Method === 'POST' && e.Path.includes('/networks/create'));
    assert.ok(create, JSON.stringify(entries));
    assert.equal(create.Tenant, 'tn-audit');
    assert.match(create.Credential, /^certificate:/);
    assert.equal(create.Result?.Status, 201);
    assert.match(create.Object ?? '', /^[0-9a-f]{64}$/, 'the network id from the answer');
    const refused = entries.find((e) => e.Method === 'POST' && e.Path.includes('/containers/create?name=audited'));
    assert.ok(refused, JSON.stringify(entries));
    assert.equal(refused.Result?.Status, 404);
    assert.match(refused.Result?.Error ?? '', /No such image: no-such-image-here:1/);
    // Reading the log is the operator's: a tenant asking for it over mutual TLS gets 403.
    assert.equal((await tenantRequest(env, 'GET', '/berth/v1/audit')).status, 403);
    await dockerOk(env, ['network', 'rm', 'audited-net']);
  });
});
