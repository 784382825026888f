/**
 * `docker build` by a tenant over mutual TLS: RUN steps are the tenant's containers under the
 * tenant's policy, and images and build cache stay the tenant's own.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { docker, dockerOk } from '../support/docker-cli.js';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

let t: TenantBerth;
let tenant: NodeJS.ProcessEnv;

before(async () => {
  t = await startTenantBerth();
  tenant = await t.createTenant('builder');
  const tar = await busyboxImageTar();
  await dockerOk(tenant, ['load', '-i', tar]);
  await dockerOk(t.berth.env, ['load', '-i', tar]);
});

after(async () => {
  await t?.stop();
});

async function context(name: string, dockerfile: string): Promise<string> {
  const dir = join(t.work, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

const cacheCount = async (env: NodeJS.ProcessEnv): Promise<number> => {
  const rows = (await dockerOk(env, ['system', 'df', '--format', '{{.Type}} {{.TotalCount}}'])).trim().split('\n');
  return Number(rows.find((r) => r.startsWith('Build Cache'))!.split(' ').pop());
};

test('a RUN step of a tenant gets the tenant default limits', async () => {
  const dir = await context('limits', `FROM ${BUSYBOX_IMAGE}\nRUN sleep 3\n`);
  const building = docker(tenant, ['build', '-t', 'tenant-built', dir], { timeoutMs: 120_000 });
  let limits = '';
  const end = Date.now() + 20_000;
  while (limits === '' && Date.now() < end) {
    const ids = (await dockerOk(tenant, ['ps', '-q'])).trim();
    if (ids !== '') limits = (await dockerOk(tenant, ['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}', ids.split('\n')[0]!])).trim();
    else await new Promise((r) => setTimeout(r, 100));
  }
  const result = await building;
  assert.equal(result.code, 0, result.stderr);
  // The default tenant policy: 1 GiB of memory, 1024 processes.
  assert.equal(limits, `${1024 ** 3} 1024`);
});

test('images and build cache are per tenant: neither side sees the other\'s', async () => {
  const opDir = await context('operator', `FROM ${BUSYBOX_IMAGE}\nRUN echo operator > /who\n`);
  // Named under a loopback registry, so the tenant's attempt to pull what it cannot see stays
  // on this machine (and is refused by the tenant rule for host-network registries).
  await dockerOk(t.berth.env, ['build', '-t', '127.0.0.1:9/operator-built', opDir], { timeoutMs: 120_000 });
  const before = await cacheCount(tenant);
  const fromForeign = await docker(tenant, ['build', await context('foreign', 'FROM 127.0.0.1:9/operator-built\n')], { timeoutMs: 120_000 });
  assert.notEqual(fromForeign.code, 0);
  // The operator's image is invisible to the tenant: the build goes to the registry for it.
  assert.match(fromForeign.stderr, /127\.0\.0\.1:9\/operator-built/);
  assert.doesNotMatch(fromForeign.stdout, /Successfully/);
  // The same Dockerfile as the operator's misses the cache for the tenant: the cache is not shared.
  const same = await docker(tenant, ['build', '-t', 'tenant-same', opDir], { timeoutMs: 120_000 });
  assert.equal(same.code, 0, same.stderr);
  assert.doesNotMatch(same.stdout, /Using cache/);
  assert.ok((await cacheCount(tenant)) > before);
  const operatorImages = await dockerOk(t.berth.env, ['images', '--format', '{{.Repository}}']);
  assert.doesNotMatch(operatorImages, /tenant-/);
  // The tenant's builder prune leaves the operator's cache alone.
  const operatorCache = await cacheCount(t.berth.env);
  await dockerOk(tenant, ['builder', 'prune', '-f']);
  assert.equal(await cacheCount(tenant), 0);
  assert.equal(await cacheCount(t.berth.env), operatorCache);
  assert.equal(await dockerOk(t.berth.env, ['run', '--rm', '127.0.0.1:9/operator-built', 'cat', '/who']), 'operator\n');
});
