/**
 * The harness with the real control plane: `berth server` started as a process, agents in
 * their namespaces joining it with a token the berth CLI made, a tenant created with the
 * berth CLI driving the cluster with the docker CLI. (Skipped, saying so, where this branch
 * lacks `berth server`.)
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster } from '../../support/cluster-harness.js';
import { REPO_ROOT } from '../../support/berth-harness.js';
import { docker, dockerOk } from '../../support/docker-cli.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../../support/test-images.js';

const haveServer = existsSync(join(REPO_ROOT, 'dist/src/cli/server.js'));

describe('cluster harness with berth server', { skip: haveServer ? false : 'this build has no `berth server` (src/cli/server.ts)' }, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await startCluster({ controlPlane: 'berth-server', downTimeoutMs: 2000 });
    await cluster.startAgent({ name: 'east', labels: { region: 'east' } });
    await cluster.startAgent({ name: 'west', labels: { region: 'west' } });
  });
  after(async () => {
    await cluster?.stop();
  });

  test('both hosts are up in berth host ls on the server', async () => {
    const out = await cluster.berthOk(['host', 'ls']);
    assert.match(out, /east\s+up/);
    assert.match(out, /west\s+up/);
  });

  test('a tenant made with createTenantClient runs a container on a labelled host with the docker CLI', async () => {
    const env = await cluster.createTenantClient('acme');
    await dockerOk(env, ['load', '-i', await busyboxImageTar()], { timeoutMs: 120_000 });
    await dockerOk(env, ['create', '--name', 'greeter', '-e', 'constraint:region==west', BUSYBOX_IMAGE, 'echo', 'hello from west']);
    await dockerOk(env, ['start', 'greeter']);
    assert.equal((await dockerOk(env, ['wait', 'greeter'])).trim(), '0');
    assert.match(await dockerOk(env, ['logs', 'greeter']), /hello from west/);
    // The container ran on the host the constraint named, and only there.
    const west = cluster.agents.find((a) => a.name === 'west')!;
    const east = cluster.agents.find((a) => a.name === 'east')!;
    const ps = await docker(env, ['ps', '-a', '--format', '{{.Names}}']);
    assert.equal(ps.code, 0, ps.stderr);
    assert.match(ps.stdout, /greeter/);
    const onWest = await west.inNamespace(['true']);
    assert.equal(onWest.code, 0);
    assert.ok((await containerDirs(west.dataRoot)).length === 1, 'one container on west');
    assert.equal((await containerDirs(east.dataRoot)).length, 0, 'none on east');
  });
});

async function containerDirs(dataRoot: string): Promise<string[]> {
  return (await readdir(join(dataRoot, 'containers')).catch(() => [] as string[])).filter((n) => /^[0-9a-f]{64}$/.test(n));
}
