/**
 * The audit log through the real CLIs: a tenant's docker CLI over mutual TLS and the operator's
 * berth CLI make calls, some of which fail; Berth is SIGKILLed with a call in flight; after the
 * restart `berth audit` shows every mutating call with who, what, when and its result, the one
 * in flight as "unknown", and refused credentials too. Tenants cannot read the log.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DOCKER_CLI, docker, dockerOk } from '../support/docker-cli.js';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';
import { sleep } from '../support/cleanup.js';
import { startRegistry } from '../support/registry-harness.js';

interface Entry {
  Seq: number;
  Time: string;
  Tenant: string;
  Credential: string;
  Method: string;
  Path: string;
  Object: string | null;
  Result: { Status: number; Error?: string } | null;
}

describe('audit log', () => {
  let t: TenantBerth;
  let acme: NodeJS.ProcessEnv;

  const audit = async (...args: string[]): Promise<Entry[]> => JSON.parse(await t.berthOk(['audit', '--json', ...args])) as Entry[];
  /** The newest entry whose method and path match. */
  const find = (entries: Entry[], method: string, path: RegExp): Entry => {
    const entry = entries.find((e) => e.Method === method && path.test(e.Path));
    assert.ok(entry, `an audit entry for ${method} ${path}: ${JSON.stringify(entries.map((e) => `${e.Method} ${e.Path}`))}`);
    return entry;
  };

  before(async () => {
    t = await startTenantBerth();
    acme = await t.createTenant('acme');
    await dockerOk(acme, ['load', '-i', await busyboxImageTar()]);
  });
  after(async () => {
    await t?.stop();
  });

  test('mutating calls and their results are in the log after a SIGKILL, a call in flight as unknown', async () => {
    await dockerOk(acme, ['volume', 'create', 'audited-volume']);
    const id = (await dockerOk(acme, ['create', '--name', 'a1', BUSYBOX_IMAGE, 'sleep', '300'])).trim();
    await dockerOk(acme, ['start', 'a1']);
    const privileged = await docker(acme, ['create', '--pull', 'never', '--privileged', BUSYBOX_IMAGE, 'true']);
    assert.equal(privileged.code, 1);
    const missing = await docker(acme, ['create', '--pull', 'never', 'acme/missing:1', 'true']);
    assert.notEqual(missing.code, 0);
    const pull = await docker(acme, ['pull', '127.0.0.1:5999/acme/nothing:1']);
    assert.equal(pull.code, 1);
    await dockerOk(acme, ['rm', '-f', 'a1']);
    await dockerOk(acme, ['run', '-d', '--name', 'a2', BUSYBOX_IMAGE, 'sleep', '300']);
    // A call in flight when Berth dies: docker wait holds its request open.
    const wait = spawn(DOCKER_CLI, ['wait', 'a2'], { env: acme, stdio: 'ignore' });
    try {
      await sleep(1500);
      await t.berth.kill();
    } finally {
      wait.kill('SIGKILL');
    }
    await t.berth.restart();

    const entries = await audit('--tenant', 'acme', '--limit', '200');
    for (const e of entries) {
      assert.equal(e.Tenant, 'acme');
      assert.match(e.Credential, /^certificate:[0-9A-F]+$/);
      assert.ok(!Number.isNaN(Date.parse(e.Time)));
      assert.notEqual(e.Method, 'GET', 'reads are not audited');
    }
    const volume = find(entries, 'POST', /\/volumes\/create$/);
    assert.deepEqual([volume.Object, volume.Result?.Status], ['audited-volume', 201]);
    const create = find(entries, 'POST', /\/containers\/create\?name=a1$/);
    assert.deepEqual([create.Object, create.Result?.Status], [id, 201]);
    const start = find(entries, 'POST', new RegExp(`/containers/a1/start$`));
    assert.deepEqual([start.Object, start.Result?.Status], ['a1', 204]);
    const refused = entries.find((e) => e.Path.endsWith('/containers/create') && e.Result?.Status === 403);
    assert.match(refused?.Result?.Error ?? '', /--privileged is not allowed for tenants/);
    const notFound = entries.find((e) => e.Path.endsWith('/containers/create') && e.Result?.Status === 404);
    assert.match(notFound?.Result?.Error ?? '', /No such image: acme\/missing:1/);
    const pulled = find(entries, 'POST', /\/images\/create\?fromImage=/);
    assert.equal(pulled.Result?.Status, 403);
    assert.match(pulled.Object ?? '', /127\.0\.0\.1:5999\/acme\/nothing/);
    const removed = find(entries, 'DELETE', /\/containers\/a1\?/);
    assert.equal(removed.Result?.Status, 204);
    const inFlight = find(entries, 'POST', /\/containers\/a2\/wait/);
    assert.equal(inFlight.Result, null, 'the call Berth died in has an unknown result');
    const load = find(entries, 'POST', /\/images\/load/);
    assert.equal(load.Result?.Status, 200);

    // The operator's own calls: the tenant's creation on the admin API.
    const operator = await audit('--tenant', 'default');
    const tenantCreate = find(operator, 'POST', /^\/berth\/v1\/tenants$/);
    assert.deepEqual([tenantCreate.Object, tenantCreate.Result?.Status, tenantCreate.Credential], ['acme', 201, 'local-socket']);
    const table = await t.berthOk(['audit', '--tenant', 'acme', '--limit', '500']);
    assert.match(table, /^TIME\s+TENANT\s+CREDENTIAL\s+CALL\s+OBJECT\s+RESULT\s+ERROR$/m);
    assert.match(table, /POST \/v[\d.]+\/containers\/a2\/wait.*\s+unknown$/m);
    assert.match(table, /POST \/v[\d.]+\/containers\/create\s+403\s+--privileged is not allowed/m);
  });

  test('a pull that succeeds is recorded with its result', async () => {
    const registry = await startRegistry();
    try {
      const ref = `${registry.host}/shared/busybox:v1`;
      await dockerOk(t.berth.env, ['load', '-i', await busyboxImageTar()]);
      await dockerOk(t.berth.env, ['tag', BUSYBOX_IMAGE, ref]);
      await dockerOk(t.berth.env, ['push', ref]);
      await t.berthOk(['tenant', 'policy', 'acme', '--allow', 'host-registries']);
      await dockerOk(acme, ['pull', ref]);
      const pull = find(await audit('--tenant', 'acme', '--limit', '5'), 'POST', /\/images\/create\?fromImage=/);
      assert.equal(pull.Result?.Status, 200);
      assert.equal(pull.Object, ref.replace(/:v1$/, '') + ':v1');
      const push = find(await audit('--tenant', 'default', '--limit', '10'), 'POST', /\/images\/.*\/push/);
      assert.equal(push.Result?.Status, 200);
    } finally {
      await registry.stop();
    }
  });

  test('a build that fails after its stream began is recorded with the error it ended with', async () => {
    const build = await docker(acme, ['build', '-t', 'acme/failing:1', '-'], { input: `FROM ${BUSYBOX_IMAGE}\nRUN exit 3\n`, timeoutMs: 120_000 });
    assert.equal(build.code, 3, 'the CLI exits with the failed step\'s code');
    const entry = find(await audit('--tenant', 'acme', '--limit', '5'), 'POST', /\/build\?/);
    assert.equal(entry.Result?.Status, 200, 'the stream had begun');
    assert.match(entry.Result?.Error ?? '', /returned a non-zero code: 3/);
  });

  test('a refused credential is recorded without a tenant; filters and limits work; tenants cannot read the log', async () => {
    const certDir = join(t.work, 'revoked-certs');
    const issued = await t.berthOk(['tenant', 'cert', 'acme', '--cert-dir', certDir]);
    const serial = /certificate ([0-9A-F]+) for tenant/.exec(issued)?.[1];
    assert.ok(serial, issued);
    await t.berthOk(['tenant', 'revoke', 'acme', serial]);
    const attempt = await t.request(certDir, 'POST', '/containers/create', { Image: BUSYBOX_IMAGE });
    assert.equal(attempt.status, 401);
    const last = (await audit('--limit', '1'))[0]!;
    assert.equal(last.Tenant, '');
    assert.equal(last.Credential, `certificate:${serial}`);
    assert.equal(last.Result?.Status, 401);
    assert.match(last.Result?.Error ?? '', /revoked/);

    assert.equal((await audit('--limit', '3')).length, 3);
    assert.equal((await audit('--since', '2000-01-01T00:00:00Z', '--until', '2000-01-02T00:00:00Z')).length, 0);
    assert.ok((await audit('--since', '10m', '--limit', '1000')).length > 10);

    const tenantRead = await t.request(join(t.work, 'acme-certs'), 'GET', '/berth/v1/audit');
    assert.equal(tenantRead.status, 403);
    const bad = await t.berthCli(['audit', '--limit', 'lots']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /limit must be a whole number/);
  });
});
