/**
 * Tenant quotas through the real CLIs: the operator sets them with `berth tenant quota`, a
 * tenant's docker CLI over mutual TLS runs into them. Each refusal names the quota, the use and
 * the ask, and leaves nothing behind (no container, no volume directory, no network); racing
 * creates cannot pass a quota together; quotas outlive a SIGKILL of Berth.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { docker, dockerOk } from '../support/docker-cli.js';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';
import { startRegistry } from '../support/registry-harness.js';

const GiB = 1024 ** 3;

describe('tenant quotas', () => {
  let t: TenantBerth;
  let acme: NodeJS.ProcessEnv;

  const quota = (...args: string[]): Promise<string> => t.berthOk(['tenant', 'quota', 'acme', ...args]);
  const containerIds = async (): Promise<string[]> => (await dockerOk(acme, ['ps', '-aq', '--no-trunc'])).split('\n').filter(Boolean);
  const containerDirs = async (): Promise<string[]> => readdir(join(t.berth.dataRoot, 'containers'));
  const removeAll = async (): Promise<void> => {
    const ids = await containerIds();
    if (ids.length > 0) await dockerOk(acme, ['rm', '-f', ...ids]);
  };
  /** Asserts a refusal: exit 1, Docker's "Error response from daemon" with the message. */
  const refused = (result: { code: number; stderr: string }, message: RegExp): void => {
    assert.notEqual(result.code, 0, 'the request must be refused');
    assert.match(result.stderr, /Error response from daemon: quota exceeded: /);
    assert.match(result.stderr, message);
  };

  before(async () => {
    t = await startTenantBerth();
    acme = await t.createTenant('acme');
    await dockerOk(acme, ['load', '-i', await busyboxImageTar()]);
  });
  after(async () => {
    await t?.stop();
  });

  test('no quota is unlimited, and the operator sees quotas and use', async () => {
    const table = await quota();
    for (const name of ['containers', 'cpus', 'memory', 'disk', 'volumes', 'networks', 'images']) {
      assert.match(table, new RegExp(`^${name}\\s+unlimited\\s+`, 'm'));
    }
    assert.match(table, /^images\s+unlimited\s+1$/m);
  });

  test('containers: the one past the quota is refused and nothing of it is left', async () => {
    await quota('--containers', '2');
    await dockerOk(acme, ['create', '--name', 'c1', BUSYBOX_IMAGE, 'true']);
    await dockerOk(acme, ['create', '--name', 'c2', BUSYBOX_IMAGE, 'true']);
    const dirsBefore = await containerDirs();
    refused(await docker(acme, ['create', '--name', 'c3', BUSYBOX_IMAGE, 'true']), /quota exceeded: containers 2 of 2 in use, this container asks 1/);
    refused(await docker(acme, ['run', '--rm', BUSYBOX_IMAGE, 'true']), /containers 2 of 2 in use/);
    assert.equal((await containerIds()).length, 2);
    assert.deepEqual((await containerDirs()).sort(), dirsBefore.sort(), 'no container directory was made');
    assert.equal((await docker(acme, ['container', 'inspect', 'c3'])).code, 1, 'no record of c3 (container inspect: a bare "c3" also matches any network or image whose id starts with c3)');
    // A stopped container still counts; removing one frees its place.
    await dockerOk(acme, ['rm', 'c2']);
    await dockerOk(acme, ['create', '--name', 'c3', BUSYBOX_IMAGE, 'true']);
    assert.match(await quota(), /^containers\s+2\s+2$/m);
    await quota('--clear', 'containers');
    await removeAll();
  });

  test('memory: the limits of every container count, the default when none is given', async () => {
    await quota('--memory', '3g');
    await dockerOk(acme, ['create', '--name', 'm1', '-m', '1g', BUSYBOX_IMAGE, 'true']);
    await dockerOk(acme, ['create', '--name', 'm2', BUSYBOX_IMAGE, 'true']); // the tenant default, 1 GiB
    refused(await docker(acme, ['create', '--name', 'm3', '-m', '2g', BUSYBOX_IMAGE, 'true']), /quota exceeded: memory 2 GiB of 3 GiB in use, this container asks 2 GiB/);
    await dockerOk(acme, ['create', '--name', 'm3', '-m', '512m', BUSYBOX_IMAGE, 'true']);
    // docker update that raises a limit counts too; lowering one always passes.
    refused(await docker(acme, ['update', '-m', '2g', '--memory-swap', '4g', 'm3']), /quota exceeded: memory 2 GiB of 3 GiB in use, this container asks 2 GiB/);
    assert.equal((await dockerOk(acme, ['inspect', '-f', '{{.HostConfig.Memory}}', 'm3'])).trim(), String(512 * 1024 ** 2), 'the refused update changed nothing');
    await dockerOk(acme, ['update', '-m', '256m', 'm1']);
    await dockerOk(acme, ['update', '-m', '1g', '--memory-swap', '2g', 'm3']);
    assert.match(await quota(), /^memory\s+3 GiB\s+2\.3 GiB$/m);
    await quota('--clear', 'memory');
    await removeAll();
  });

  test('cpus: limits count, a container without one gets a default CPU under the quota', async () => {
    await quota('--cpus', '2');
    await dockerOk(acme, ['create', '--name', 'p1', '--cpus', '1.5', BUSYBOX_IMAGE, 'true']);
    refused(await docker(acme, ['create', '--name', 'p2', '--cpus', '1', BUSYBOX_IMAGE, 'true']), /quota exceeded: cpus 1\.5 of 2 in use, this container asks 1/);
    // No CPU limit: the container gets one CPU, which is what counts.
    refused(await docker(acme, ['create', '--name', 'p3', BUSYBOX_IMAGE, 'true']), /quota exceeded: cpus 1\.5 of 2 in use, this container asks 1/);
    await dockerOk(acme, ['create', '--name', 'p4', '--cpus', '0.5', BUSYBOX_IMAGE, 'true']);
    refused(await docker(acme, ['update', '--cpus', '1', 'p4']), /quota exceeded: cpus 1\.5 of 2 in use, this container asks 1/);
    await dockerOk(acme, ['rm', 'p1']);
    await dockerOk(acme, ['create', '--name', 'p5', BUSYBOX_IMAGE, 'true']);
    assert.equal((await dockerOk(acme, ['inspect', '-f', '{{.HostConfig.NanoCpus}}', 'p5'])).trim(), '1000000000');
    assert.match(await quota(), /^cpus\s+2\s+1\.5$/m);
    await quota('--clear', 'cpus');
    await removeAll();
  });

  test('volumes: volume create and the named volumes of a run are refused, no directory is made', async () => {
    await quota('--volumes', '1');
    await dockerOk(acme, ['volume', 'create', 'v1']);
    await dockerOk(acme, ['volume', 'create', 'v1']); // an existing name is not a new volume
    refused(await docker(acme, ['volume', 'create', 'v2']), /quota exceeded: volumes 1 of 1 in use, this volume asks 1/);
    refused(await docker(acme, ['run', '--rm', '-v', 'v3:/d', BUSYBOX_IMAGE, 'true']), /quota exceeded: volumes 1 of 1 in use, this container's volume asks 1/);
    await dockerOk(acme, ['run', '--rm', '-v', 'v1:/d', BUSYBOX_IMAGE, 'true']); // an existing one is fine
    assert.equal((await dockerOk(acme, ['volume', 'ls', '-q'])).trim(), 'v1');
    const volumeRoot = join(t.berth.dataRoot, 'volumes');
    for (const owner of await readdir(volumeRoot)) {
      if (!owner.startsWith('@')) continue;
      const names = await readdir(join(volumeRoot, owner));
      assert.ok(!names.includes('v2') && !names.includes('v3'), `no directory for a refused volume: ${names.join(',')}`);
    }
    await quota('--clear', 'volumes');
    await dockerOk(acme, ['volume', 'rm', 'v1']);
  });

  test('networks: the one past the quota is refused and not made', async () => {
    await quota('--networks', '1');
    await dockerOk(acme, ['network', 'create', 'n1']);
    refused(await docker(acme, ['network', 'create', 'n2']), /quota exceeded: networks 1 of 1 in use, this network asks 1/);
    const names = (await dockerOk(acme, ['network', 'ls', '--format', '{{.Name}}'])).split('\n').filter(Boolean).sort();
    assert.deepEqual(names, ['bridge', 'host', 'n1', 'none']);
    await quota('--clear', 'networks');
    await dockerOk(acme, ['network', 'rm', 'n1']);
  });

  test('images: load, commit and build past the quota are refused', async () => {
    await quota('--images', '1');
    await dockerOk(acme, ['create', '--name', 'i1', BUSYBOX_IMAGE, 'true']);
    refused(await docker(acme, ['commit', 'i1', 'acme/committed:1']), /quota exceeded: images 1 of 1 in use, this commit asks 1/);
    refused(await docker(acme, ['load', '-i', await busyboxImageTar()]), /quota exceeded: images 1 of 1 in use, this load asks 1/);
    const build = await docker(acme, ['build', '-t', 'acme/built:1', '-'], { input: `FROM ${BUSYBOX_IMAGE}\nRUN true\n`, timeoutMs: 60_000 });
    refused(build, /quota exceeded: images 1 of 1 in use, this build asks 1/);
    assert.equal((await dockerOk(acme, ['images', '-q'])).trim().split('\n').length, 1);
    await quota('--clear', 'images');
    await dockerOk(acme, ['commit', 'i1', 'acme/committed:1']);
    await dockerOk(acme, ['rmi', 'acme/committed:1']);
    await removeAll();
  });

  test('images: a pull of a reference the tenant lacks is refused at the quota, a refresh of one it has passes', async () => {
    const registry = await startRegistry();
    try {
      const ref = `${registry.host}/shared/busybox:v1`;
      await dockerOk(t.berth.env, ['load', '-i', await busyboxImageTar()]);
      await dockerOk(t.berth.env, ['tag', BUSYBOX_IMAGE, ref]);
      await dockerOk(t.berth.env, ['push', ref]);
      await t.berthOk(['tenant', 'policy', 'acme', '--allow', 'host-registries']);
      await quota('--images', '1');
      refused(await docker(acme, ['pull', ref]), /quota exceeded: images 1 of 1 in use, this pull asks 1/);
      assert.equal((await docker(acme, ['image', 'inspect', ref])).code, 1, 'nothing was pulled');
      await dockerOk(acme, ['tag', BUSYBOX_IMAGE, ref]);
      await dockerOk(acme, ['pull', ref]);
      await dockerOk(acme, ['rmi', ref]);
    } finally {
      await quota('--clear', 'images');
      await t.berthOk(['tenant', 'policy', 'acme', '--allow', 'none']);
      await registry.stop();
    }
  });

  test('disk: once the tenant uses its disk quota, what adds data is refused', async () => {
    await quota('--disk', '1k'); // the busybox image's layers alone are larger
    refused(await docker(acme, ['create', BUSYBOX_IMAGE, 'true']), /quota exceeded: disk [\d.]+ MiB of 1 KiB in use, this container would add more/);
    refused(await docker(acme, ['volume', 'create', 'd1']), /quota exceeded: disk .* of 1 KiB in use, this volume would add more/);
    refused(await docker(acme, ['load', '-i', await busyboxImageTar()]), /quota exceeded: disk .* of 1 KiB in use, this load would add more/);
    assert.deepEqual(await containerIds(), []);
    assert.equal((await dockerOk(acme, ['volume', 'ls', '-q'])).trim(), '');
    await quota('--disk', '10g');
    await dockerOk(acme, ['create', '--name', 'd2', BUSYBOX_IMAGE, 'true']);
    await quota('--clear', 'disk');
    await removeAll();
  });

  test('racing creates cannot pass the quota together', async () => {
    await quota('--containers', '3');
    await dockerOk(acme, ['create', BUSYBOX_IMAGE, 'true']);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => docker(acme, ['create', '--name', `race${i}`, BUSYBOX_IMAGE, 'true'])));
    const created = results.filter((r) => r.code === 0).length;
    assert.equal(created, 2, results.map((r) => r.stderr).join('\n'));
    for (const r of results.filter((x) => x.code !== 0)) assert.match(r.stderr, /quota exceeded: containers 3 of 3 in use/);
    assert.equal((await containerIds()).length, 3);
    await quota('--clear', 'containers');
    await removeAll();
  });

  test('a tenant reads its quotas in docker info; the admin API shows them in inspect', async () => {
    await quota('--memory', '4g', '--containers', '5');
    await dockerOk(acme, ['create', '-m', '1g', BUSYBOX_IMAGE, 'true']);
    const info = await dockerOk(acme, ['info', '--format', '{{json .Labels}}']);
    const labels = JSON.parse(info) as string[];
    assert.ok(labels.includes('berth.quota.containers=1 of 5 in use'), info);
    assert.ok(labels.includes('berth.quota.memory=1 GiB of 4 GiB in use'), info);
    const inspect = JSON.parse(await t.berthOk(['tenant', 'inspect', 'acme'])) as { Quotas: Record<string, number> };
    assert.deepEqual(inspect.Quotas, { Containers: 5, Memory: 4 * GiB });
    // The operator has no quotas and sees none.
    assert.equal((await dockerOk(t.berth.env, ['info', '--format', '{{json .Labels}}'])).trim(), '[]');
    await removeAll();
  });

  test('bad quota values are refused', async () => {
    const bad = await t.berthCli(['tenant', 'quota', 'acme', '--containers', '-1']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /quota containers must be a whole number, 0 or more/);
    const unknown = await t.berthCli(['tenant', 'quota', 'acme', '--clear', 'gpus']);
    assert.match(unknown.stderr, /unknown quota "gpus"/);
    const missing = await t.berthCli(['tenant', 'quota', 'nobody', '--containers', '1']);
    assert.match(missing.stderr, /No such tenant: nobody/);
    const api = await t.request(join(t.work, 'acme-certs'), 'GET', '/berth/v1/tenants/acme/quota');
    assert.equal(api.status, 403, 'tenants cannot read the admin API');
  });

  test('quotas survive a SIGKILL of Berth', async () => {
    await quota('--containers', '1', '--memory', '2g', '--clear', 'disk');
    await dockerOk(acme, ['create', '--name', 'before-kill', '-m', '1g', BUSYBOX_IMAGE, 'true']);
    await t.berth.kill();
    await t.berth.restart();
    const table = await quota();
    assert.match(table, /^containers\s+1\s+1$/m);
    assert.match(table, /^memory\s+2 GiB\s+1 GiB$/m);
    refused(await docker(acme, ['create', BUSYBOX_IMAGE, 'true']), /quota exceeded: containers 1 of 1 in use, this container asks 1/);
  });
});
