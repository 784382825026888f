/**
 * A host that dies does not take a tenant's services with it: `berth server` with three real
 * agents in their own network namespaces (cluster-harness.ts), the docker CLI as a tenant.
 *
 * - A host's agent is SIGKILLed: within 15 s its restart-policy containers run on other hosts
 *   under the same ids and names; one the tenant had stopped is moved but stays stopped; one
 *   without a policy stays with its host. Its containers keep running meanwhile (a partition,
 *   not a power cut), so when the agent comes back the stale copies must be fenced: afterwards
 *   every service runs exactly once on the machine (counted by process).
 * - A host whose agent dies with its network namespace never returns: its service moves.
 * - Drain empties a host; a cordoned host takes no new containers.
 * - The control plane SIGKILLed and restarted keeps every placement.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster, type ClusterAgent } from '../../support/cluster-harness.js';
import { pollFor } from '../../support/cleanup.js';
import { docker, dockerOk } from '../../support/docker-cli.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../../support/test-images.js';

const run = promisify(execFile);
const DOWN_TIMEOUT_MS = 2000;

/** Processes on this machine whose command line is exactly `sleep <seconds>` (a container's payload). */
async function sleepers(seconds: number): Promise<number> {
  try {
    const { stdout } = await run('pgrep', ['-x', '-f', `sleep ${seconds}`]);
    return stdout.trim().split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

interface Inspect {
  Id: string;
  Name: string;
  Node: { Name: string };
  State: { Running: boolean; Status: string };
}

describe('cluster: failover, fencing and drain', () => {
  let cluster: Cluster;
  let tenant: NodeJS.ProcessEnv;
  const agents = new Map<string, ClusterAgent>();

  before(async () => {
    cluster = await startCluster({ controlPlane: 'berth-server', downTimeoutMs: DOWN_TIMEOUT_MS });
    for (const name of ['fo-a', 'fo-b', 'fo-c']) agents.set(name, await cluster.startAgent({ name }));
    tenant = await cluster.createTenantClient('tenant-fo');
    await dockerOk(tenant, ['load', '-i', await busyboxImageTar()]);
    // Every host holds the image: a host that dies must not take the only copy with it.
    for (const name of agents.keys()) await dockerOk(tenant, ['run', '--rm', '-e', `constraint:node==${name}`, BUSYBOX_IMAGE, 'true']);
  });

  after(async () => {
    if (process.env.BERTH_TEST_SERVER_LOG) writeFileSync(process.env.BERTH_TEST_SERVER_LOG, cluster?.serverLogs() ?? '');
    await cluster?.stop();
  });

  // Without --format the CLI prints the API's JSON as it came (with `Node`, which its own types lack).
  const inspect = async (name: string): Promise<Inspect> => (JSON.parse(await dockerOk(tenant, ['inspect', name])) as Inspect[])[0]!;
  const names = async (): Promise<string[]> => (await dockerOk(tenant, ['ps', '-a', '--format', '{{.Names}}'])).trim().split('\n').filter(Boolean).sort();

  test('a lost host\'s restart-policy containers run elsewhere within 15 s; when it returns nothing runs twice', async (t) => {
    const services = [
      { name: 'svc-always', policy: 'always', seconds: 3601 },
      { name: 'svc-unless', policy: 'unless-stopped', seconds: 3602 },
      { name: 'svc-onfail', policy: 'on-failure', seconds: 3603 },
    ];
    // Soft constraints put them on fo-a and never keep them there.
    for (const s of services) {
      await dockerOk(tenant, ['run', '-d', '--name', s.name, '--restart', s.policy, '-e', 'constraint:node==~fo-a', BUSYBOX_IMAGE, 'sleep', String(s.seconds)]);
    }
    await dockerOk(tenant, ['run', '-d', '--name', 'held', '--restart', 'always', '-e', 'constraint:node==~fo-a', BUSYBOX_IMAGE, 'sleep', '3604']);
    await dockerOk(tenant, ['stop', '-t', '0', 'held']);
    await dockerOk(tenant, ['run', '-d', '--name', 'plain', '-e', 'constraint:node==~fo-a', BUSYBOX_IMAGE, 'sleep', '3605']);
    const ids = new Map<string, string>();
    for (const name of [...services.map((s) => s.name), 'held', 'plain']) {
      const view = await inspect(name);
      assert.equal(view.Node.Name, 'fo-a', name);
      ids.set(name, view.Id);
    }

    const lost = agents.get('fo-a')!;
    await lost.kill('SIGKILL');
    const killedAt = Date.now();
    for (const s of services) {
      const moved = await pollFor(`${s.name} running elsewhere`, async () => {
        const view = await inspect(s.name).catch(() => undefined);
        return view && view.Node.Name !== 'fo-a' && view.State.Running ? view : undefined;
      }, 20_000);
      assert.equal(moved.Id, ids.get(s.name), 'same id');
      assert.equal(moved.Name, `/${s.name}`, 'same name');
    }
    const took = Date.now() - killedAt;
    assert.ok(took < 15_000, `moved in ${took} ms`);
    t.diagnostic(`three restart-policy containers running on other hosts ${took} ms after the agent was killed (down timeout ${DOWN_TIMEOUT_MS} ms)`);
    const held = await pollFor('held moved', async () => {
      const view = await inspect('held').catch(() => undefined);
      return view && view.Node.Name !== 'fo-a' ? view : undefined;
    }, 20_000);
    assert.equal(held.State.Running, false, 'a container the tenant stopped is moved, not started');
    // No policy: it stays with its host, unreachable until the host returns.
    const plain = await docker(tenant, ['inspect', 'plain']);
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /fo-a, which is down/);
    assert.equal((await dockerOk(tenant, ['exec', 'svc-always', 'echo', 'alive'])).trim(), 'alive');

    // The partitioned host still runs its copies; it comes back and is fenced.
    assert.equal(await sleepers(3601), 2, 'during the partition the old copy still runs');
    await lost.restart();
    const returnedAt = Date.now();
    await pollFor('each service running once on the machine', async () => {
      const counts = await Promise.all(services.map((s) => sleepers(s.seconds)));
      return counts.every((n) => n === 1) ? counts : undefined;
    }, 20_000);
    t.diagnostic(`stale copies fenced ${Date.now() - returnedAt} ms after the agent was restarted`);
    assert.deepEqual(await names(), ['held', 'plain', 'svc-always', 'svc-onfail', 'svc-unless'], 'every container listed once');
    for (const s of services) assert.notEqual((await inspect(s.name)).Node.Name, 'fo-a');
    const back = await inspect('plain');
    assert.equal(back.Node.Name, 'fo-a');
    assert.equal(back.State.Running, true, 'a container without a policy is where it was');
    assert.equal(await sleepers(3604), 0, 'the stopped one runs nowhere');
    // A fenced host takes new work again.
    await dockerOk(tenant, ['create', '--name', 'after-fence', '-e', 'constraint:node==fo-a', BUSYBOX_IMAGE, 'true']);
    await dockerOk(tenant, ['rm', '-f', 'after-fence', 'held', 'plain', ...services.map((s) => s.name)]);
  });

  test('a host gone with its network namespace: its service moves and keeps its name', async () => {
    await dockerOk(tenant, ['run', '-d', '--name', 'solo', '--restart', 'always', '-e', 'constraint:node==~fo-c', BUSYBOX_IMAGE, 'sleep', '3606']);
    const before = await inspect('solo');
    assert.equal(before.Node.Name, 'fo-c');
    const gone = agents.get('fo-c')!;
    await gone.kill('SIGKILL');
    await gone.deleteNamespace();
    const moved = await pollFor('solo moved', async () => {
      const view = await inspect('solo').catch(() => undefined);
      return view && view.Node.Name !== 'fo-c' && view.State.Running ? view : undefined;
    }, 15_000);
    assert.equal(moved.Id, before.Id);
    await dockerOk(tenant, ['rm', '-f', 'solo']);
  });

  test('drain empties a host: restart-policy containers run elsewhere, others are recreated stopped; cordoned hosts take nothing new', async () => {
    await dockerOk(tenant, ['run', '-d', '--name', 'd-svc', '--restart', 'always', '-e', 'constraint:node==~fo-b', BUSYBOX_IMAGE, 'sleep', '3607']);
    await dockerOk(tenant, ['run', '-d', '--name', 'd-plain', '-e', 'constraint:node==~fo-b', BUSYBOX_IMAGE, 'sleep', '3608']);
    await dockerOk(tenant, ['create', '--name', 'd-created', '-e', 'constraint:node==~fo-b', BUSYBOX_IMAGE, 'true']);
    for (const name of ['d-svc', 'd-plain', 'd-created']) assert.equal((await inspect(name)).Node.Name, 'fo-b');
    await cluster.berthOk(['host', 'drain', 'fo-b']);
    const svc = await inspect('d-svc');
    assert.notEqual(svc.Node.Name, 'fo-b');
    assert.equal(svc.State.Running, true);
    const plain = await inspect('d-plain');
    assert.notEqual(plain.Node.Name, 'fo-b');
    assert.equal(plain.State.Running, false, 'without a restart policy it is moved stopped');
    assert.notEqual((await inspect('d-created')).Node.Name, 'fo-b');
    assert.equal(await sleepers(3607), 1);
    assert.equal(await sleepers(3608), 0);
    const host = await pollFor('fo-b empty', async () => (await cluster.hosts()).find((h) => h.Name === 'fo-b' && h.Containers === 0), 10_000);
    assert.equal(host.Cordoned, true);
    // Cordoned: no new container lands there, even asked for softly.
    for (let i = 0; i < 3; i++) {
      await dockerOk(tenant, ['create', '--name', `new-${i}`, '-e', 'constraint:node==~fo-b', BUSYBOX_IMAGE, 'true']);
      assert.notEqual((await inspect(`new-${i}`)).Node.Name, 'fo-b');
    }
    const refused = await docker(tenant, ['create', '-e', 'constraint:node==fo-b', BUSYBOX_IMAGE, 'true']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /no host fits/);
    await cluster.berthOk(['host', 'uncordon', 'fo-b']);
    await dockerOk(tenant, ['rm', '-f', 'd-svc', 'd-plain', 'd-created', 'new-0', 'new-1', 'new-2']);
  });

  test('the control plane SIGKILLed and restarted keeps every placement', async () => {
    await dockerOk(tenant, ['run', '-d', '--name', 'keep-1', '--restart', 'always', BUSYBOX_IMAGE, 'sleep', '3609']);
    await dockerOk(tenant, ['create', '--name', 'keep-2', BUSYBOX_IMAGE, 'true']);
    const hosts = [(await inspect('keep-1')).Node.Name, (await inspect('keep-2')).Node.Name];
    await cluster.restartControlPlane();
    await pollFor('hosts back', async () => ((await cluster.hosts()).filter((h) => h.State === 'up').length === 2 ? true : undefined), 20_000);
    assert.deepEqual([(await inspect('keep-1')).Node.Name, (await inspect('keep-2')).Node.Name], hosts);
    assert.equal((await inspect('keep-1')).State.Running, true);
    assert.deepEqual(await names(), ['keep-1', 'keep-2']);
    const dup = await docker(tenant, ['create', '--name', 'keep-2', BUSYBOX_IMAGE, 'true']);
    assert.match(dup.stderr, /already in use/);
    assert.equal(await sleepers(3609), 1);
    await dockerOk(tenant, ['rm', '-f', 'keep-1', 'keep-2']);
  });
});
