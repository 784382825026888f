/**
 * Hosts of one machine stay apart: two agents, each in its own network namespace with its own
 * roots, run containers side by side; restarting one agent (its start-up reconcile scans
 * cgroups, mounts, networks of its own) and SIGKILLing it leave the other's containers
 * running and reachable through their own host.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster } from '../../support/cluster-harness.js';
import { tunnelRequest } from '../../support/tunnel-client.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../../support/test-images.js';

interface Inspect {
  State: { Running: boolean; Pid: number };
  NetworkSettings: { IPAddress: string };
}

describe('cluster: hosts of one machine never touch each other', () => {
  let cluster: Cluster;
  const containers = new Map<string, string>();

  const inspect = async (host: string): Promise<Inspect> => {
    const answer = await tunnelRequest(cluster.hub!, cluster.hub!.host(host)!.id, 'GET', `/containers/${containers.get(host)}/json`, { tenant: 'acme' });
    assert.equal(answer.status, 200, answer.body);
    return JSON.parse(answer.body) as Inspect;
  };

  before(async () => {
    cluster = await startCluster({ controlPlane: 'in-process', downTimeoutMs: 2000 });
    for (const name of ['alpha', 'beta']) {
      await cluster.startAgent({ name });
      const hostId = cluster.hub!.host(name)!.id;
      assert.equal((await tunnelRequest(cluster.hub!, hostId, 'POST', '/images/load?quiet=1', { tenant: 'acme', file: await busyboxImageTar() })).status, 200);
      const created = await tunnelRequest(cluster.hub!, hostId, 'POST', '/containers/create', { tenant: 'acme', json: { Image: BUSYBOX_IMAGE, Cmd: ['sh', '-c', `while true; do echo from-${name} | nc -l -p 8080; done`] } });
      assert.equal(created.status, 201, created.body);
      containers.set(name, (JSON.parse(created.body) as { Id: string }).Id);
      const started = await tunnelRequest(cluster.hub!, hostId, 'POST', `/containers/${containers.get(name)}/start`, { tenant: 'acme' });
      assert.equal(started.status, 204, started.body);
    }
  });
  after(async () => {
    await cluster?.stop();
  });

  test('each host gives its container an address on its own bridge, in its own namespace', async () => {
    const [a, b] = [await inspect('alpha'), await inspect('beta')];
    assert.ok(a.State.Running && b.State.Running);
    // Both engines use the same default pool; they may hand out the same address, each on
    // its own bridge in its own namespace: what matters is that both answer on their host.
    for (const [host, view] of [['alpha', a], ['beta', b]] as const) {
      const agent = cluster.agents.find((x) => x.name === host)!;
      const script = `const s=require('net').connect(8080,'${view.NetworkSettings.IPAddress}');let t='';s.on('data',d=>t+=d);s.on('end',()=>{console.log(t.trim());process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)});setTimeout(()=>{console.log('timeout');process.exit(0)},5000)`;
      const answer = await agent.inNamespace([process.execPath, '-e', script]);
      assert.equal(answer.stdout.trim(), `from-${host}`);
    }
  });

  test('restarting one agent (reconcile) and SIGKILLing it leave the other host\'s container alone', async () => {
    const alpha = cluster.agents.find((a) => a.name === 'alpha')!;
    const betaBefore = await inspect('beta');
    await alpha.restart();
    const alphaAfter = await inspect('alpha');
    assert.equal(alphaAfter.State.Running, true, 'alpha\'s own container survives its agent\'s restart');
    await alpha.kill('SIGKILL');
    await cluster.waitHost('alpha', 'down', 10_000);
    const betaAfter = await inspect('beta');
    assert.equal(betaAfter.State.Running, true);
    assert.equal(betaAfter.State.Pid, betaBefore.State.Pid);
    // The container process of the killed agent's host keeps running too (containers outlive agents).
    assert.ok(process.kill(alphaAfter.State.Pid, 0));
  });
});
