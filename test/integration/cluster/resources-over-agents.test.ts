/**
 * The cluster front's network, image, volume and event routes over real agents (each in its
 * own network namespace, through the real tunnel and hub: cluster-harness.ts in-process mode),
 * driven by the docker CLI as one tenant. The front here is B2's routes alone
 * (test/support/resource-front.ts); containers are made on a host by calling its engine
 * through the tunnel, as the container routes do. The proofs with `berth server` and
 * `docker run` are in images-networks-volumes.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { operatorContext, type RequestContext } from '../../../src/common/context.js';
import { ensureImageOnHost } from '../../../src/server/cluster/front/image-transfer.js';
import { volumeHostOf } from '../../../src/server/cluster/front/volumes.js';
import { startCluster, type Cluster } from '../../support/cluster-harness.js';
import { pollFor, removeTree } from '../../support/cleanup.js';
import { docker, dockerEnv, dockerOk } from '../../support/docker-cli.js';
import { serveResourceFront, type ResourceFront } from '../../support/resource-front.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../../support/test-images.js';
import { startLabRelay, type LabRelay } from '../../support/lab-relay.js';
import { startRegistry, type RegistryInstance } from '../../support/registry-harness.js';

const TENANT = 'netz';
const ctx: RequestContext = { tenant: TENANT, requestId: 'test' };
let cluster: Cluster;
let front: ResourceFront;
let env: NodeJS.ProcessEnv;
/** The operator's front: agents refuse a tenant's private-address registry (the relay's). */
let operatorFront: ResourceFront;
let operatorEnv: NodeJS.ProcessEnv;
let dir: string;
let registry: RegistryInstance;
let relay: LabRelay;
const hostIds: Record<string, string> = {};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-cl-res-'));
  [cluster, registry] = await Promise.all([startCluster({ controlPlane: 'in-process' }), startRegistry()]);
  // The agents reach the loopback registry through the lab bridge, as a plain-HTTP registry.
  relay = await startLabRelay(cluster.gateway, Number(registry.host.split(':')[1]));
  for (const name of ['res-a', 'res-b']) await cluster.startAgent({ name, extraArgs: ['--insecure-registry', relay.address] });
  for (const host of await cluster.hosts()) hostIds[host.Name] = host.ID;
  front = await serveResourceFront({ hub: cluster.hub!, dir, tenant: TENANT });
  env = dockerEnv(front.dockerHost, dir);
  await mkdir(join(dir, 'operator'));
  operatorFront = await serveResourceFront({ hub: cluster.hub!, dir: join(dir, 'operator') });
  operatorEnv = dockerEnv(operatorFront.dockerHost, join(dir, 'operator'));
});

after(async () => {
  await front?.close();
  await operatorFront?.close();
  await relay?.close();
  await cluster?.stop();
  await registry?.stop();
  if (dir) await removeTree(dir);
});

type NetworkView = { Id: string; IPAM: { Config: { Subnet: string; Gateway: string }[] } };
const networkOn = (hostId: string, ref: string): Promise<NetworkView> => front.deps.hosts.json<NetworkView>(ctx, hostId, { method: 'GET', path: `/networks/${ref}` });

test('a network is made on every host with one id and one subnet, also on a host that joins later', async () => {
  const id = (await dockerOk(env, ['network', 'create', '--label', 'app=shop', 'shopnet'])).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const views = await Promise.all(Object.values(hostIds).map((hostId) => networkOn(hostId, 'shopnet')));
  for (const view of views) {
    assert.equal(view.Id, id);
    assert.deepEqual(view.IPAM.Config, views[0]!.IPAM.Config);
  }
  const listed = await dockerOk(env, ['network', 'ls', '--format', '{{.Name}}']);
  assert.deepEqual(listed.trim().split('\n').sort(), ['bridge', 'host', 'none', 'shopnet'], 'each network once');
  const again = await docker(env, ['network', 'create', 'shopnet']);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /network with name shopnet already exists/);

  // A host that joins later gets it when it comes up.
  await cluster.startAgent({ name: 'res-late', extraArgs: ['--insecure-registry', relay.address] });
  const late = (await cluster.hosts()).find((host) => host.Name === 'res-late')!;
  hostIds['res-late'] = late.ID;
  const onLate = await pollFor('the network on the late host', async () => networkOn(late.ID, id).catch(() => undefined), 20_000);
  assert.deepEqual(onLate.IPAM.Config, views[0]!.IPAM.Config);
});

test('network rm refused by one host (a container attached) leaves the network on every host; then it goes everywhere', async () => {
  const busy = hostIds['res-b']!;
  await dockerOk(env, ['load', '-i', await busyboxImageTar()]);
  await ensureImageOnHost(front.deps, ctx, busy, BUSYBOX_IMAGE);
  const created = await front.deps.hosts.json<{ Id: string }>(ctx, busy, {
    method: 'POST',
    path: '/containers/create?name=attached',
    body: { Image: BUSYBOX_IMAGE, Cmd: ['true'], HostConfig: { NetworkMode: 'shopnet' } },
  });
  const refused = await docker(env, ['network', 'rm', 'shopnet']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /active endpoints/);
  for (const hostId of Object.values(hostIds)) assert.ok((await networkOn(hostId, 'shopnet')).Id, 'still on every host');

  await front.deps.hosts.json(ctx, busy, { method: 'DELETE', path: `/containers/${created.Id}` });
  await dockerOk(env, ['network', 'rm', 'shopnet']);
  for (const hostId of Object.values(hostIds)) await assert.rejects(networkOn(hostId, 'shopnet'), /not found/);
  const gone = await docker(env, ['network', 'inspect', 'shopnet']);
  assert.notEqual(gone.code, 0);
});

test('an image loaded on one host is relayed through the control plane to another', async () => {
  const holders = await Promise.all(
    Object.entries(hostIds).map(async ([name, hostId]) => ({
      name,
      hostId,
      holds: await front.deps.hosts.json(ctx, hostId, { method: 'GET', path: `/images/${BUSYBOX_IMAGE}/json` }).then(() => true, () => false),
    })),
  );
  const lacking = holders.find((h) => !h.holds);
  assert.ok(lacking, 'some host lacks busybox');
  assert.ok(holders.some((h) => h.holds));
  await ensureImageOnHost(front.deps, ctx, lacking.hostId, BUSYBOX_IMAGE);
  const ids = await Promise.all(holders.map((h) => front.deps.hosts.json<{ Id: string }>(ctx, h.hostId, { method: 'GET', path: `/images/${BUSYBOX_IMAGE}/json` }).then((i) => i.Id, () => undefined)));
  assert.ok(ids[holders.indexOf(lacking)]);
  assert.equal(new Set(ids.filter((id) => id !== undefined)).size, 1, 'the same image id everywhere it is held');
  const listed = await dockerOk(env, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
  assert.deepEqual(listed.trim().split('\n'), [BUSYBOX_IMAGE]);
});

test('a pull lands where the repository is; a host lacking the image pulls it by digest from the registry', async () => {
  // As the operator: an agent refuses a tenant's registry on a private address (the relay's),
  // and tenant policies set at the control plane do not reach agents yet.
  const operatorCtx = operatorContext('test');
  await dockerOk(operatorEnv, ['load', '-i', await busyboxImageTar()]);
  const pushed = `${relay.address}/shop/busybox:v1`;
  await dockerOk(operatorEnv, ['tag', BUSYBOX_IMAGE, pushed]);
  await dockerOk(operatorEnv, ['push', pushed]);
  // Forget it everywhere, then pull it through the front: one host gets it.
  await dockerOk(operatorEnv, ['rmi', pushed, BUSYBOX_IMAGE]);
  assert.equal((await dockerOk(operatorEnv, ['images', '-q'])).trim(), '');
  await dockerOk(operatorEnv, ['pull', pushed]);
  const holds = async (hostId: string): Promise<boolean> =>
    operatorFront.deps.hosts.json(operatorCtx, hostId, { method: 'GET', path: `/images/${pushed}/json` }).then(() => true, () => false);
  const held = await Promise.all(Object.values(hostIds).map(holds));
  assert.equal(held.filter(Boolean).length, 1, 'a pull goes to one host');
  const lacking = Object.values(hostIds)[held.indexOf(false)]!;
  const before = registry.blobGets();
  await ensureImageOnHost(operatorFront.deps, operatorCtx, lacking, pushed);
  assert.equal(await holds(lacking), true);
  assert.ok(registry.blobGets() > before, 'fetched from the registry, not relayed');
  // Pulled again (onto a holder of the repository): still one line in the list.
  await dockerOk(operatorEnv, ['pull', pushed]);
  const listed = await dockerOk(operatorEnv, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
  assert.deepEqual(listed.trim().split('\n'), [pushed], 'held by two hosts, listed once');
});

test('volumes spread across agents and events of several hosts arrive in one stream', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  await dockerOk(env, ['volume', 'create', 'vol-1']);
  await dockerOk(env, ['volume', 'create', 'vol-2']);
  const homes = new Set([await volumeHostOf(front.deps, ctx, 'vol-1'), await volumeHostOf(front.deps, ctx, 'vol-2')]);
  assert.equal(homes.size, 2, 'two volumes, two hosts');
  const until = Math.floor(Date.now() / 1000) + 1;
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const out = await dockerOk(env, ['events', '--since', String(since), '--until', String(until), '--filter', 'type=volume', '--format', '{{.Action}} {{.Actor.ID}}']);
  assert.deepEqual(out.trim().split('\n').filter((line) => line.startsWith('create')).sort(), ['create vol-1', 'create vol-2']);
  await dockerOk(env, ['volume', 'rm', 'vol-1', 'vol-2']);
});
