/**
 * Registries and tenants: a tenant may not make Berth dial the host's own networks (a pull,
 * push or login naming a loopback registry is refused until the operator allows
 * "host-registries"), and a tenant never gets a layer from the shared content store that its
 * own registry did not give it: it downloads and verifies it even when the operator has it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { docker, dockerOk } from '../support/docker-cli.js';
import { startCountingProxy, startRegistry, type RegistryInstance } from '../support/registry-harness.js';
import { getManifest } from '../support/registry-fixtures.js';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

let t: TenantBerth;
let registry: RegistryInstance;

before(async () => {
  [t, registry] = await Promise.all([startTenantBerth(), startRegistry()]);
  await dockerOk(t.berth.env, ['load', '-i', await busyboxImageTar()]);
});
after(async () => {
  await registry?.stop();
  await t?.stop();
});

test('a tenant pulls from a host registry only when allowed, and downloads layers the host already has', async () => {
  const ref = `${registry.host}/shared/busybox:v1`;
  await dockerOk(t.berth.env, ['tag', BUSYBOX_IMAGE, ref]);
  await dockerOk(t.berth.env, ['push', ref]);
  const operatorId = (await dockerOk(t.berth.env, ['image', 'inspect', '--format', '{{.Id}}', ref])).trim();

  const acme = await t.createTenant('acme');
  const refused = await docker(acme, ['pull', ref]);
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    new RegExp(`the registry ${registry.host.replace(/[.]/g, '\\.')} is not allowed for tenants: it makes Berth send requests to addresses on the host .*\\(the operator can allow "host-registries" for this tenant\\)`),
  );
  const login = await docker(acme, ['login', '-u', 'x', '--password-stdin', registry.host], { input: 'y' });
  assert.equal(login.code, 1);
  assert.match(login.stderr, /is not allowed for tenants/);
  const push = await docker(acme, ['push', `${registry.host}/acme/app:v1`]);
  assert.equal(push.code, 1);
  assert.match(push.stderr, /is not allowed for tenants/);

  await t.berthOk(['tenant', 'policy', 'acme', '--allow', 'host-registries']);
  const proxy = await startCountingProxy(registry, 0);
  try {
    const viaProxy = `${proxy.host}/shared/busybox:v1`;
    const out = await dockerOk(acme, ['pull', viaProxy]);
    const layer = (await getManifest(registry.url, 'shared/busybox', 'v1')).json.layers as { digest: string }[];
    // The operator's copy of the layer is not handed over: acme's registry must provide it.
    assert.equal(proxy.blobGets(layer[0]!.digest), 1);
    assert.match(out, new RegExp(`^${layer[0]!.digest.slice(7, 19)}: Pull complete$`, 'm'));
    assert.doesNotMatch(out, /Already exists/);
    assert.equal((await dockerOk(acme, ['image', 'inspect', '--format', '{{.Id}}', viaProxy])).trim(), operatorId);

    // What acme downloaded and verified itself it need not fetch again (while Berth runs).
    const byDigest = `${proxy.host}/shared/busybox@${(await getManifest(registry.url, 'shared/busybox', 'v1')).digest}`;
    await dockerOk(acme, ['rmi', viaProxy]);
    await dockerOk(acme, ['pull', byDigest]);
    assert.equal(proxy.blobGets(layer[0]!.digest), 1);
    await dockerOk(acme, ['tag', byDigest, `${registry.host}/acme/app:v1`]);
  } finally {
    await proxy.stop();
  }

  // The tenant pushes its own repository.
  assert.match(await dockerOk(acme, ['push', `${registry.host}/acme/app:v1`]), /^v1: digest: sha256:[0-9a-f]{64} size: \d+$/m);
  // The operator's images are untouched by the tenant's.
  assert.equal((await dockerOk(t.berth.env, ['image', 'inspect', '--format', '{{.Id}}', ref])).trim(), operatorId);
});
