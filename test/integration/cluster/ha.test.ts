/**
 * A highly available control plane: a three-member etcd cluster (etcd-harness.ts), three
 * `berth server`s sharing it, two agents in their own network namespaces dialling every
 * server (cluster-harness.ts), and a tenant driving it with the docker CLI over mutual TLS.
 *
 * Proves: every server serves the same state; exactly one leads; the docker CLI keeps working
 * while an etcd member is down and after the leader is killed (another is elected within
 * seconds); nothing acknowledged is lost; a server killed in the middle of `docker run`
 * leaves no half-created container.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster, type ClusterServer } from '../../support/cluster-harness.js';
import { EtcdCluster } from '../../support/etcd-harness.js';
import { pollFor, sleep } from '../../support/cleanup.js';
import { docker, dockerOk } from '../../support/docker-cli.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../../support/test-images.js';
import { AdminClient } from '../../../src/cli/admin-client.js';
import type { ControlPlaneStatus } from '../../../src/server/cluster/ha/control-plane-routes.js';

/** GET over a unix socket, the body as text (the metrics are not JSON). */
function getText(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`GET ${path}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('cluster: a highly available control plane on etcd', () => {
  let etcd: EtcdCluster;
  let cluster: Cluster;
  let tenant: NodeJS.ProcessEnv;
  /** Names of containers whose creation the CLI acknowledged: none may go missing. */
  const acknowledged: string[] = [];

  before(async () => {
    etcd = await EtcdCluster.start(3);
    cluster = await startCluster({ controlPlane: 'berth-server', servers: 3, store: etcd.url() });
    await cluster.startAgent({ name: 'ha-a' });
    await cluster.startAgent({ name: 'ha-b' });
    tenant = await cluster.createTenantClient('tenant-ha');
    await dockerOk(tenant, ['load', '-i', await busyboxImageTar()]);
  });

  after(async () => {
    await cluster?.stop();
    await etcd?.stop();
  });

  const status = (server: ClusterServer): Promise<ControlPlaneStatus> =>
    new AdminClient(`unix://${server.socket}`).call<ControlPlaneStatus>('GET', '/berth/v1/control-plane');
  const through = (server: ClusterServer): NodeJS.ProcessEnv => ({ ...tenant, DOCKER_HOST: `tcp://127.0.0.1:${server.tenantPort}` });
  const live = (): ClusterServer[] => cluster.servers.filter((s) => s.alive());
  /** The one leader among the live servers, once they agree on it. */
  const leader = (timeoutMs = 30_000): Promise<ClusterServer> =>
    pollFor(
      'exactly one leader',
      async () => {
        const servers = live();
        const states = await Promise.all(servers.map((s) => status(s).catch(() => undefined)));
        const leaders = servers.filter((_, i) => states[i]?.role === 'leader');
        const named = new Set(states.map((s) => s?.leader));
        return leaders.length === 1 && named.size === 1 ? leaders[0] : undefined;
      },
      timeoutMs,
    );
  const runDetached = async (server: ClusterServer, name: string): Promise<void> => {
    await dockerOk(through(server), ['run', '-d', '--name', name, BUSYBOX_IMAGE, 'sleep', '600']);
    acknowledged.push(name);
  };
  const namesSeenBy = async (server: ClusterServer): Promise<string[]> =>
    (await dockerOk(through(server), ['ps', '-a', '--format', '{{.Names}}'])).split('\n').filter((n) => n !== '');

  test('every server serves the same state; one leads; each sees both hosts up and the store healthy', async () => {
    const first = await leader();
    for (const server of cluster.servers) {
      const s = await status(server);
      assert.equal(s.store.kind, 'etcd');
      assert.equal(s.store.healthy, true);
      await pollFor(`server ${server.index} sees both hosts up`, async () => ((await status(server)).hosts.up === 2 ? true : undefined));
      assert.equal(s.role, server === first ? 'leader' : 'follower');
    }
    // A create at each server; every server lists all of them.
    for (const server of cluster.servers) await runDetached(server, `at-server-${server.index}`);
    for (const server of cluster.servers) {
      const names = await namesSeenBy(server);
      for (const name of acknowledged) assert.ok(names.includes(name), `server ${server.index} lists ${name}: ${names.join(',')}`);
    }
    // The leader decided the followers' placements (pending placement → decision → create).
    for (const server of cluster.servers) {
      if (server === first) continue;
      assert.match(first.logs(), new RegExp(`"asker":"[^"]*:tcp://${server.agentAddress.replace(/\./g, '\\.')}"[^\n]*placement decided for another server`));
    }
    // Both hosts take containers (spread), whichever server placed them.
    const nodes = new Set<string>();
    for (const name of acknowledged) nodes.add((await dockerOk(through(cluster.servers[2]!), ['inspect', '--format', '{{.Node.Name}}', name])).trim());
    assert.deepEqual([...nodes].sort(), ['ha-a', 'ha-b']);
    // berth status and the metrics: the leader says so.
    // (the harness points the berth CLI at the first live server)
    const printed = await cluster.berthOk(['status']);
    assert.match(printed, new RegExp(`Role: +${(await status(live()[0]!)).role}`));
    assert.match(printed, /Store: +etcd, healthy/);
    assert.match(printed, /Hosts: +2 up, 0 down/);
    const metrics = await getText(first.socket, '/metrics');
    assert.match(metrics, /^berth_server_is_leader 1$/m);
    assert.match(metrics, /^berth_hosts\{state="up"\} 2$/m);
    assert.match(metrics, /^berth_store_up\{kind="etcd"\} 1$/m);
  });

  test('the docker CLI keeps working while one etcd member is down', async () => {
    await etcd.kill(0);
    try {
      const server = live()[1]!;
      await runDetached(server, 'during-etcd-loss');
      assert.ok((await namesSeenBy(live()[0]!)).includes('during-etcd-loss'));
      await dockerOk(through(server), ['exec', 'during-etcd-loss', 'true']);
      assert.equal((await status(server)).store.healthy, true);
    } finally {
      await etcd.restart(0);
    }
  });

  test('killing the leader: another is elected within seconds; docker works through the others; nothing acknowledged is lost', async () => {
    const old = await leader();
    const killedAt = Date.now();
    await old.kill('SIGKILL');
    // A create sent while there is no leader waits as a pending placement and completes once
    // the next leader decides it.
    const pending = runDetached(live()[0]!, 'pending-during-election');
    const next = await leader(15_000);
    await pending;
    const takeoverMs = Date.now() - killedAt;
    console.log(`leader take-over after SIGKILL: ${takeoverMs} ms`);
    assert.notEqual(next.index, old.index);
    assert.ok(takeoverMs < 10_000, `take-over took ${takeoverMs} ms`);
    const follower = live().find((s) => s !== next)!;
    await runDetached(follower, 'after-leader-loss');
    await runDetached(next, 'at-new-leader');
    for (const server of live()) {
      const names = await namesSeenBy(server);
      for (const name of acknowledged) assert.ok(names.includes(name), `server ${server.index} lists ${name} after the leader died`);
    }
    // The killed server comes back as a follower and serves the same state.
    await old.start();
    await pollFor('restarted server sees both hosts', async () => ((await status(old)).hosts.up === 2 ? true : undefined));
    assert.equal((await status(old)).role, 'follower');
    const names = await namesSeenBy(old);
    for (const name of acknowledged) assert.ok(names.includes(name), `restarted server lists ${name}`);
  });

  test('a server killed in the middle of `docker run` leaves no half-created container', async () => {
    // Rounds 0 and 1 kill the leader (placing itself); rounds 2 and 3 a follower (its create
    // went through a pending placement the leader decided; the leader sees it go and fences).
    for (let round = 0; round < 4; round++) {
      const currentLeader = await leader();
      const victim = round < 2 ? currentLeader : live().find((s) => s !== currentLeader)!;
      const name = `mid-run-${round}`;
      const run = docker(through(victim), ['run', '-d', '--name', name, BUSYBOX_IMAGE, 'sleep', '600']);
      // Somewhere inside the create: after the request reached the server, before it answered.
      await sleep(150 + (round % 2) * 250);
      await victim.kill('SIGKILL');
      const result = await run;
      const survivor = await leader(15_000);
      // After the new leader settled what the dead one left (fencing, with its grace), the
      // container either exists whole (listed, inspectable, on the host its record names) or
      // not at all, and its name is free again.
      await pollFor(
        `${name} settled`,
        async () => {
          const inspect = await docker(through(survivor), ['inspect', '--format', '{{.State.Status}} {{.Node.Name}}', name]);
          if (inspect.code !== 0) return (await namesSeenBy(survivor)).includes(name) ? undefined : 'absent';
          return /^(created|running|exited) ha-[ab]$/.test(inspect.stdout.trim()) ? 'whole' : undefined;
        },
        30_000,
      );
      if (result.code === 0) acknowledged.push(name);
      const outcome = (await docker(through(survivor), ['inspect', name])).code === 0 ? 'whole' : 'absent';
      console.log(`round ${round} (${round < 2 ? 'leader' : 'follower'} killed): run ${result.code === 0 ? 'acknowledged' : 'cut off'}, container ${outcome}`);
      if (result.code === 0) assert.equal(outcome, 'whole', 'an acknowledged run must survive');
      // Either way the name can be used (again or for the first time) and removed.
      await docker(through(survivor), ['rm', '-f', name]);
      if (result.code === 0) acknowledged.splice(acknowledged.indexOf(name), 1);
      await dockerOk(through(survivor), ['run', '-d', '--name', name, BUSYBOX_IMAGE, 'sleep', '600']);
      acknowledged.push(name);
      await victim.start();
      // Agents redial a restarted server on their own backoff; it lists their containers once they did.
      await pollFor(`server ${victim.index} back with both hosts`, async () => ((await status(victim)).hosts.up === 2 ? true : undefined));
    }
    for (const server of live()) {
      const names = await namesSeenBy(server);
      for (const name of acknowledged) assert.ok(names.includes(name), `server ${server.index} lists ${name}`);
    }
  });
});
