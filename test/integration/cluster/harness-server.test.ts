/**
 * The harness with the real control plane: `berth server` started as a process, agents in
 * their namespaces joining it with a token the berth CLI made, a tenant created with the
 * berth CLI driving the cluster with the docker CLI. (Skipped, saying so, where this branch
 * lacks `berth server`.)
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
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
    const out = await dockerOk(env, ['run', '--rm', '-e', 'constraint:region==west', BUSYBOX_IMAGE, 'echo', 'hello from west']);
    assert.match(out, /hello from west/);
    const ps = await docker(env, ['ps', '-a']);
    assert.equal(ps.code, 0, ps.stderr);
  });
});
