/**
 * Images, networks, volumes and events across hosts, as a tenant sees them: `berth server`
 * with two (then three) real agents, each in its own network namespace (cluster-harness.ts),
 * driven by the docker CLI over mutual TLS.
 *
 * The registry runs on 127.0.0.1 of the root namespace; agents reach it through a TCP relay
 * on the lab bridge's own address (lab-relay.ts) and are started with `--insecure-registry`
 * for it. The registry scenario runs as the operator (the server's unix socket): agents refuse
 * a tenant's registry on a private address, and tenant policies do not reach agents yet.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { get, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster } from '../../support/cluster-harness.js';
import { REPO_ROOT } from '../../support/berth-harness.js';
import { pollFor, removeTree } from '../../support/cleanup.js';
import { docker, dockerEnv, dockerOk } from '../../support/docker-cli.js';
import { startLabRelay, type LabRelay } from '../../support/lab-relay.js';
import { startRegistry, type RegistryInstance } from '../../support/registry-harness.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../../support/test-images.js';

// `berth server` is B1's part of the work; until it is built on this branch there is nothing to drive.
const noServer = !existsSync(join(REPO_ROOT, 'dist/src/cli/server.js')) && 'berth server is not on this branch yet';

describe('cluster: images, networks, volumes and events through berth server', { skip: noServer }, () => {
  let cluster: Cluster;
  let registry: RegistryInstance;
  let relay: LabRelay;
  let tenant: NodeJS.ProcessEnv;
  let operator: NodeJS.ProcessEnv;
  let work: string;
  const HOSTS = ['img-a', 'img-b'];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-cluster-images-'));
    [cluster, registry] = await Promise.all([startCluster({ controlPlane: 'berth-server' }), startRegistry()]);
    relay = await startLabRelay(cluster.gateway, Number(registry.host.split(':')[1]));
    for (const name of HOSTS) await cluster.startAgent({ name, extraArgs: ['--insecure-registry', relay.address] });
    tenant = await cluster.createTenantClient('imgs');
    // Every scenario of the tenant starts from busybox on one host.
    await dockerOk(tenant, ['load', '-i', await busyboxImageTar()]);
    await mkdir(join(work, 'operator'));
    operator = dockerEnv(`unix://${cluster.socket}`, join(work, 'operator'));
  });

  after(async () => {
    await relay?.close();
    await cluster?.stop();
    await registry?.stop();
    if (work) await removeTree(work);
  });

  const nodeOf = async (env: NodeJS.ProcessEnv, container: string): Promise<string> => (await dockerOk(env, ['inspect', '--format', '{{.Node.Name}}', container])).trim();

  test('operator: an image pulled onto one host runs on a host that lacked it (pulled there by digest)', async () => {
    // Put busybox in the registry through the cluster, then forget it everywhere.
    await dockerOk(operator, ['load', '-i', await busyboxImageTar()]);
    const pushed = `${relay.address}/cluster/busybox:v1`;
    await dockerOk(operator, ['tag', BUSYBOX_IMAGE, pushed]);
    await dockerOk(operator, ['push', pushed]);
    await dockerOk(operator, ['rmi', BUSYBOX_IMAGE, pushed]);
    assert.equal((await docker(operator, ['image', 'inspect', pushed])).code, 1);

    await dockerOk(operator, ['pull', pushed]);
    const listed = await dockerOk(operator, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.deepEqual(listed.trim().split('\n'), [pushed], 'pulled once, listed once');

    // One host holds it; a container on each host needs it on both.
    const before = registry.blobGets();
    for (const host of HOSTS) {
      const out = await dockerOk(operator, ['run', '--name', `pulled-${host}`, '-e', `constraint:node==${host}`, pushed, 'echo', `hello from ${host}`]);
      assert.equal(out.trim(), `hello from ${host}`);
      assert.equal(await nodeOf(operator, `pulled-${host}`), host);
    }
    assert.ok(registry.blobGets() > before, 'the host that lacked the image pulled its layers from the registry');
    const merged = await dockerOk(operator, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.deepEqual(merged.trim().split('\n'), [pushed], 'held by two hosts, listed once');
    await dockerOk(operator, ['rm', ...HOSTS.map((host) => `pulled-${host}`)]);
  });

  test('a tenant\'s loaded image and one built on Berth run on every host: relayed from their holder', async () => {
    for (const host of HOSTS) {
      const out = await dockerOk(tenant, ['run', '--rm', '-e', `constraint:node==${host}`, BUSYBOX_IMAGE, 'echo', `on ${host}`]);
      assert.equal(out.trim(), `on ${host}`);
    }
    const context = join(work, 'ctx');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nRUN echo built-here > /built.txt\nCMD ["cat", "/built.txt"]\n`);
    const built = await docker(tenant, ['build', '-t', 'cluster/built:1', context], { timeoutMs: 180_000 });
    assert.equal(built.code, 0, `${built.stdout}\n${built.stderr}`);
    const before = registry.blobGets();
    for (const host of HOSTS) {
      const out = await dockerOk(tenant, ['run', '--rm', '-e', `constraint:node==${host}`, 'cluster/built:1']);
      assert.equal(out.trim(), 'built-here', host);
    }
    assert.equal(registry.blobGets(), before, 'no registry knows these images: the control plane relayed them');
    const listed = await dockerOk(tenant, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.deepEqual(listed.trim().split('\n').sort(), [BUSYBOX_IMAGE, 'cluster/built:1'].sort(), 'each image once');

    // rmi through the front removes it from every holder.
    await dockerOk(tenant, ['rmi', 'cluster/built:1']);
    const gone = await docker(tenant, ['image', 'inspect', 'cluster/built:1']);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /No such image/);
  });

  test('a network exists on every host with one id and one subnet, also on a host that joins later', async () => {
    const id = (await dockerOk(tenant, ['network', 'create', 'appnet'])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const subnet = (await dockerOk(tenant, ['network', 'inspect', '--format', '{{(index .IPAM.Config 0).Subnet}}', 'appnet'])).trim();
    const late = await cluster.startAgent({ name: 'img-late' });
    const hosts = [...HOSTS, late.name];
    for (const host of hosts) {
      await dockerOk(tenant, ['run', '-d', '--name', `net-${host}`, '--network', 'appnet', '-e', `constraint:node==${host}`, BUSYBOX_IMAGE, 'sleep', '300']);
      const networkId = (await dockerOk(tenant, ['inspect', '--format', '{{.NetworkSettings.Networks.appnet.NetworkID}}', `net-${host}`])).trim();
      assert.equal(networkId, id, `${host} has the network under the cluster's id`);
      const address = (await dockerOk(tenant, ['inspect', '--format', '{{.NetworkSettings.Networks.appnet.IPAddress}}', `net-${host}`])).trim();
      assert.equal(address.split('.').slice(0, 2).join('.'), subnet.split('.').slice(0, 2).join('.'), `${host}: ${address} in ${subnet}`);
    }
    const listed = await dockerOk(tenant, ['network', 'ls', '--format', '{{.Name}}']);
    assert.deepEqual(listed.trim().split('\n').sort(), ['appnet', 'bridge', 'host', 'none'], 'each network once');
    const attached = JSON.parse(await dockerOk(tenant, ['network', 'inspect', '--format', '{{json .Containers}}', 'appnet'])) as Record<string, { Name: string }>;
    assert.deepEqual(Object.values(attached).map((c) => c.Name).sort(), hosts.map((host) => `net-${host}`).sort(), 'containers of every host');

    // In use on some hosts: refused, and still there everywhere afterwards.
    const refused = await docker(tenant, ['network', 'rm', 'appnet']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /active endpoints/);
    await dockerOk(tenant, ['rm', '-f', ...hosts.map((host) => `net-${host}`)]);
    for (const host of hosts) {
      await dockerOk(tenant, ['run', '--rm', '--network', 'appnet', '-e', `constraint:node==${host}`, BUSYBOX_IMAGE, 'true']);
    }
    await dockerOk(tenant, ['network', 'rm', 'appnet']);
    const gone = await docker(tenant, ['network', 'inspect', 'appnet']);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /not found/);
  });

  test('a volume keeps its data and pins the containers that mount it to its host', async () => {
    await dockerOk(tenant, ['volume', 'create', 'keep']);
    await dockerOk(tenant, ['run', '--name', 'writer', '-v', 'keep:/d', BUSYBOX_IMAGE, 'sh', '-c', 'echo kept > /d/f']);
    const home = await nodeOf(tenant, 'writer');
    // Spread would put these elsewhere; the volume pins them to its host.
    for (let i = 0; i < 3; i++) {
      const out = await dockerOk(tenant, ['run', '--name', `reader-${i}`, '-v', 'keep:/d', BUSYBOX_IMAGE, 'cat', '/d/f']);
      assert.equal(out.trim(), 'kept');
      assert.equal(await nodeOf(tenant, `reader-${i}`), home);
    }
    // A volume made implicitly by `run -v` is pinned too.
    await dockerOk(tenant, ['run', '--name', 'implicit', '-v', 'made-by-run:/d', BUSYBOX_IMAGE, 'sh', '-c', 'echo here > /d/f']);
    const implicitHome = await nodeOf(tenant, 'implicit');
    const again = await dockerOk(tenant, ['run', '--name', 'implicit-reader', '-v', 'made-by-run:/d', BUSYBOX_IMAGE, 'cat', '/d/f']);
    assert.equal(again.trim(), 'here');
    assert.equal(await nodeOf(tenant, 'implicit-reader'), implicitHome);
    const listed = await dockerOk(tenant, ['volume', 'ls', '--format', '{{.Name}}']);
    assert.deepEqual(listed.trim().split('\n').sort(), ['keep', 'made-by-run']);

    await dockerOk(tenant, ['rm', 'writer', 'reader-0', 'reader-1', 'reader-2', 'implicit', 'implicit-reader']);
    await dockerOk(tenant, ['volume', 'rm', 'keep', 'made-by-run']);
    assert.equal((await dockerOk(tenant, ['volume', 'ls', '-q'])).trim(), '');
  });

  test('events show the containers of two hosts in one stream', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    for (const host of HOSTS) await dockerOk(tenant, ['run', '--rm', '--name', `ev-${host}`, '-e', `constraint:node==${host}`, BUSYBOX_IMAGE, 'true']);
    const until = Math.floor(Date.now() / 1000) + 1;
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const out = await dockerOk(tenant, ['events', '--since', String(since), '--until', String(until), '--filter', 'type=container', '--filter', 'event=start', ...HOSTS.map((host) => `--filter=container=ev-${host}`), '--format', '{{.Actor.Attributes.name}}']);
    assert.deepEqual(out.trim().split('\n').sort(), HOSTS.map((host) => `ev-${host}`).sort());
  });
  test('the operator sees hosts come and go as node events', async () => {
    const since = Math.floor(Date.now() / 1000) - 600;
    const seen: { Action: string; Actor: { Attributes: Record<string, string> } }[] = [];
    const filters = encodeURIComponent(JSON.stringify({ type: ['node'] }));
    const stream = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = get({ socketPath: cluster.socket, path: `/events?since=${since}&filters=${filters}` }, resolve);
      req.on('error', reject);
    });
    try {
      assert.equal(stream.statusCode, 200);
      let buffered = '';
      stream.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) if (line.trim() !== '') seen.push(JSON.parse(line) as (typeof seen)[number]);
      });
      const late = cluster.agents.find((agent) => agent.name === 'img-late')!;
      // Its coming up was earlier: replayed from the front's memory.
      await pollFor('img-late up', async () => seen.find((e) => e.Action === 'up' && e.Actor.Attributes.name === 'img-late'), 10_000);
      await late.stop();
      await pollFor('img-late down', async () => seen.find((e) => e.Action === 'down' && e.Actor.Attributes.name === 'img-late'), 15_000);
      // A tenant never sees the cluster's hosts.
      const tenantEvents = await docker(tenant, ['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000)), '--filter', 'type=node']);
      assert.equal(tenantEvents.code, 0, tenantEvents.stderr);
      assert.equal(tenantEvents.stdout.trim(), '');
    } finally {
      stream.destroy();
    }
  });
});
