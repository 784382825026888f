/**
 * The agent transport end to end, with real `berth agent` processes in network namespaces of
 * their own and a control-plane hub: join with a token, host list with capacity and labels,
 * Docker API calls (plain and upgraded) through the tunnel, refused joins and connections.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster, type ClusterAgent } from '../../support/cluster-harness.js';
import { tunnelRequest, tunnelUpgrade } from '../../support/tunnel-client.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../../support/test-images.js';

describe('cluster: agents join and carry the Docker API', () => {
  let cluster: Cluster;
  let first: ClusterAgent;
  const drained: string[] = [];

  before(async () => {
    cluster = await startCluster({
      controlPlane: 'in-process',
      downTimeoutMs: 2000,
      onDrain: async (host) => {
        drained.push(`${host.name}:${host.cordoned ? 'cordoned' : 'open'}`);
      },
    });
    first = await cluster.startAgent({ name: 'alpha', labels: { region: 'eu', disk: 'ssd' } });
  });
  after(async () => {
    await cluster?.stop();
  });

  test('a joined host shows in host ls with capacity, labels and its lab address', async () => {
    const out = await cluster.berthOk(['host', 'ls']);
    assert.match(out, /alpha\s+up\s+no\s+/);
    const [view] = JSON.parse(await cluster.berthOk(['host', 'inspect', 'alpha'])) as {
      ID: string; State: string; Address: string; Labels: Record<string, string>;
      Capacity: { Cpus: number; MemoryBytes: number; DiskBytes: number };
      EngineVersion: string;
    }[];
    assert.ok(view);
    assert.match(view.ID, /^[0-9a-f]{64}$/);
    assert.equal(view.State, 'up');
    assert.deepEqual(view.Labels, { region: 'eu', disk: 'ssd' });
    // The agent reached the server through the lab bridge: its address is its lab address.
    assert.equal(view.Address, first.address);
    assert.ok(view.Capacity.Cpus >= 1);
    assert.ok(view.Capacity.MemoryBytes > 1 << 30);
    assert.ok(view.Capacity.DiskBytes > 0);
    assert.match(view.EngineVersion, /^\d+\.\d+\.\d+/);
  });

  test('openStream carries GET /_ping to the agent\'s engine', async () => {
    const host = cluster.hub!.host('alpha')!;
    const answer = await tunnelRequest(cluster.hub!, host.id, 'GET', '/_ping');
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'OK');
    assert.equal(answer.headers.server, 'Berth');
  });

  test('a tenant named by the control plane is made known on the agent, and attach works through the tunnel', async () => {
    const hostId = cluster.hub!.host('alpha')!.id;
    const loaded = await tunnelRequest(cluster.hub!, hostId, 'POST', '/images/load?quiet=1', { tenant: 'acme', file: await busyboxImageTar() });
    assert.equal(loaded.status, 200, loaded.body);
    const created = await tunnelRequest(cluster.hub!, hostId, 'POST', '/containers/create?name=echoer', {
      tenant: 'acme',
      json: { Image: BUSYBOX_IMAGE, Cmd: ['sh', '-c', 'read line; echo "got $line"'], OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true },
    });
    assert.equal(created.status, 201, created.body);
    const id = (JSON.parse(created.body) as { Id: string }).Id;
    // Another tenant (and the operator) cannot see it: the header scopes like a certificate.
    assert.equal((await tunnelRequest(cluster.hub!, hostId, 'GET', `/containers/${id}/json`, { tenant: 'globex' })).status, 404);
    const attach = await tunnelUpgrade(cluster.hub!, hostId, `/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1`, { tenant: 'acme' });
    assert.equal(attach.status, 101);
    const output: Buffer[] = [attach.head];
    attach.socket.on('data', (c: Buffer) => output.push(c));
    const ended = new Promise<void>((resolve) => attach.socket.once('end', resolve));
    const started = await tunnelRequest(cluster.hub!, hostId, 'POST', `/containers/${id}/start`, { tenant: 'acme' });
    assert.equal(started.status, 204, started.body);
    attach.socket.write('hello tunnel\n');
    await ended;
    // Multiplexed frames: 8-byte header, then the payload.
    assert.match(Buffer.concat(output).toString('latin1'), /got hello tunnel/);
    const waited = await tunnelRequest(cluster.hub!, hostId, 'POST', `/containers/${id}/wait`, { tenant: 'acme' });
    assert.equal(waited.status, 200, waited.body);
    assert.equal((JSON.parse(waited.body) as { StatusCode: number }).StatusCode, 0);
    assert.equal((await tunnelRequest(cluster.hub!, hostId, 'DELETE', `/containers/${id}`, { tenant: 'acme' })).status, 204);
  });

  test('cordon, uncordon and drain: drain cordons first, then hands the host to the mover', async () => {
    await cluster.berthOk(['host', 'cordon', 'alpha']);
    assert.match(await cluster.berthOk(['host', 'ls']), /alpha\s+up\s+yes/);
    assert.equal(cluster.hub!.host('alpha')!.cordoned, true);
    await cluster.berthOk(['host', 'uncordon', 'alpha']);
    assert.equal(cluster.hub!.host('alpha')!.cordoned, false);
    assert.equal(await cluster.berthOk(['host', 'drain', 'alpha']), 'alpha\n');
    assert.deepEqual(drained, ['alpha:cordoned']);
    assert.equal(cluster.hub!.host('alpha')!.cordoned, true);
  });
});
