/**
 * How the transport fails, with real agents in their own network namespaces: a SIGKILLed
 * agent's host goes down within the down timeout and comes back up under the same id; the
 * control plane's restart keeps hosts, labels and cordon; joins with bad, revoked or foreign
 * tokens and connections with the wrong certificates are refused with reasons; a removed host
 * is refused for good.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { startCluster, type Cluster, type ClusterAgent } from '../../support/cluster-harness.js';
import { tunnelRequest } from '../../support/tunnel-client.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../../support/test-images.js';
import { CertificateAuthority } from '../../../src/server/tenancy/pki.js';
import { AgentTunnel } from '../../../src/agent/connect/tunnel.js';
import type { Logger } from '../../../src/common/logging.js';
import type { ClusterHost } from '../../../src/server/cluster/agent-hub.js';

const DOWN_TIMEOUT_MS = 2000;

/** Connects with `cert` the way an agent would and returns the control plane's refusal. */
async function refusalFor(cluster: Cluster, identity: { certPem: string; keyPem: string; caPem: string }): Promise<string> {
  const engine = createHttpServer();
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no refusal within 10 s')), 10_000);
    const tunnel = new AgentTunnel({
      identity: { hostId: 'x', server: cluster.agentAddress, ...identity },
      engine,
      status: async () => {
        throw new Error('a refused connection must not be asked for heartbeats');
      },
      heartbeatMs: 1000,
      logger: pino({ level: 'silent' }) as unknown as Logger,
      onRefused: (reason) => {
        clearTimeout(timer);
        void tunnel.close();
        resolve(reason);
      },
    });
    tunnel.start();
  });
}

describe('cluster: transport failures', () => {
  let cluster: Cluster;
  let alpha: ClusterAgent;
  let scratch: string;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'berth-clf-'));
    cluster = await startCluster({ controlPlane: 'in-process', downTimeoutMs: DOWN_TIMEOUT_MS });
    alpha = await cluster.startAgent({ name: 'alpha', labels: { zone: 'a' } });
  });
  after(async () => {
    await cluster?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  test('agents reach the control plane only through the lab bridge', async () => {
    const routes = await alpha.inNamespace(['ip', '-4', 'route']);
    assert.match(routes.stdout, new RegExp(`default via ${cluster.gateway.replace(/\./g, '\\.')} dev eth0`));
    // A server on the root namespace's loopback is out of the agent's reach.
    const probe = createNetServer((s) => s.destroy());
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    try {
      const script = `const s=require('net').connect(${port},'127.0.0.1');s.on('connect',()=>{console.log('connected');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)})`;
      const result = await alpha.inNamespace([process.execPath, '-e', script]);
      assert.equal(result.stdout.trim(), 'ECONNREFUSED');
    } finally {
      probe.close();
    }
    const [view] = JSON.parse(await cluster.berthOk(['host', 'inspect', 'alpha'])) as { Address: string }[];
    assert.equal(view!.Address, alpha.address);
  });

  test('SIGKILL of an agent: its host is down within the timeout; a restart brings it up under the same id', async () => {
    const before = (await cluster.hosts()).find((h) => h.Name === 'alpha')!;
    const down = new Promise<number>((resolve) => {
      const onDown = (host: ClusterHost): void => {
        if (host.name !== 'alpha') return;
        cluster.hub!.off('host-down', onDown);
        resolve(Date.now());
      };
      cluster.hub!.on('host-down', onDown);
    });
    const killedAt = Date.now();
    await alpha.kill('SIGKILL');
    const downAfter = (await down) - killedAt;
    // Heartbeats every 250 ms; the expiry check runs every 400 ms.
    assert.ok(downAfter <= DOWN_TIMEOUT_MS + 1000, `down after ${downAfter} ms`);
    assert.ok(downAfter >= DOWN_TIMEOUT_MS - 500, `down too early, after ${downAfter} ms`);
    assert.equal((await cluster.hosts()).find((h) => h.Name === 'alpha')!.State, 'down');
    assert.match(await cluster.berthOk(['host', 'ls']), /alpha\s+down/);
    // A down host's session is dropped: a stream to it fails at once with Unavailable, never hangs.
    await assert.rejects(cluster.hub!.openStream(before.ID), (err: Error & { kind?: string }) => err.kind === 'Unavailable' && /host alpha is not connected/.test(err.message));

    await alpha.restart();
    const after = (await cluster.hosts()).find((h) => h.Name === 'alpha')!;
    assert.equal(after.ID, before.ID);
    assert.equal(after.State, 'up');
    assert.equal((await cluster.hosts()).length, 1);
  });

  test('a control plane restart keeps hosts, operator labels and cordon; the agent comes back by itself', async () => {
    await cluster.berthOk(['host', 'label', 'alpha', '--add', 'tier=gold', '--rm', 'zone']);
    await cluster.berthOk(['host', 'cordon', 'alpha']);
    await cluster.restartControlPlane();
    const view = await cluster.waitHost('alpha', 'up', 20_000);
    assert.equal(view.Cordoned, true);
    assert.deepEqual(view.Labels, { tier: 'gold' });
    assert.deepEqual(view.AgentLabels, { zone: 'a' });
    await cluster.berthOk(['host', 'uncordon', 'alpha']);
    await cluster.berthOk(['host', 'label', 'alpha', '--add', 'zone=a']);
    assert.deepEqual((await cluster.waitHost('alpha', 'up')).Labels, { zone: 'a', tier: 'gold' });
  });

  test('joins with a malformed, wrong, revoked or foreign token, or a taken name, are refused with the reason', async () => {
    const good = await cluster.joinToken();
    const [, , fingerprint, id] = good.split('-');
    const revokedToken = await cluster.joinToken();
    await cluster.berthOk(['host', 'join-token', '--revoke', revokedToken.split('-')[3]!]);
    const otherCa = await CertificateAuthority.open(join(scratch, 'other-ca'));
    const cases: { name: string; token: string; hostName?: string; message: RegExp }[] = [
      { name: 'malformed', token: 'SWMTKN-1-abc', message: /malformed join token/ },
      { name: 'wrong secret', token: `BERTHJT-1-${fingerprint}-${id}-${'0'.repeat(64)}`, message: /secret does not match/ },
      { name: 'unknown id', token: `BERTHJT-1-${fingerprint}-${'1'.repeat(16)}-${'0'.repeat(64)}`, message: /no such token/ },
      { name: 'revoked', token: revokedToken, message: /it was revoked/ },
      // A token of another control plane: the agent refuses the server before it sends anything.
      { name: 'foreign CA', token: `BERTHJT-1-${otherCa.fingerprint}-${id}-${'0'.repeat(64)}`, message: /not the one the join token names/ },
      { name: 'name taken', token: good, hostName: 'alpha', message: /a host named alpha has already joined/ },
    ];
    for (const c of cases) {
      const agent = await cluster.startAgent({ name: c.hostName ?? `bad-${c.name.replace(/ /g, '-')}`, joinToken: c.token, waitUp: false });
      const exit = await agent.exited();
      assert.equal(exit.code, 1, `${c.name}: ${agent.logs()}`);
      assert.match(agent.logs(), c.message, c.name);
    }
    const names = (await cluster.hosts()).map((h) => h.Name);
    assert.deepEqual(names, ['alpha']);
    const tokens = await cluster.berthOk(['host', 'join-token', '--ls']);
    assert.match(tokens, new RegExp(`${revokedToken.split('-')[3]}\\s+\\S+\\s+\\S+\\s+0`));
  });

  test('tunnel connections with a tenant certificate or one of another CA are refused with the reason', async () => {
    const serverCa = await CertificateAuthority.open(join(cluster.baseDir, 'server', 'pki'));
    const tenant = await serverCa.clientCertificate('acme');
    assert.match(await refusalFor(cluster, { certPem: tenant.certPem, keyPem: tenant.keyPem, caPem: serverCa.caPem }), /not a host certificate/);
    const otherCa = await CertificateAuthority.open(join(scratch, 'other-ca-2'));
    const foreign = await otherCa.hostCertificate('f'.repeat(64));
    assert.match(await refusalFor(cluster, { certPem: foreign.certPem, keyPem: foreign.keyPem, caPem: serverCa.caPem }), /not issued by this control plane/);
  });

  test('host rm: refused for an up host with containers unless --force; the removed agent is refused and stops', async () => {
    const beta = await cluster.startAgent({ name: 'beta' });
    const hostId = cluster.hub!.host('beta')!.id;
    assert.equal((await tunnelRequest(cluster.hub!, hostId, 'POST', '/images/load?quiet=1', { file: await busyboxImageTar() })).status, 200);
    const created = await tunnelRequest(cluster.hub!, hostId, 'POST', '/containers/create', { json: { Image: BUSYBOX_IMAGE, Cmd: ['true'] } });
    assert.equal(created.status, 201, created.body);
    await cluster.waitHost('beta', 'up');
    await pollContainers(cluster, 'beta', 1);
    const refused = await cluster.berthCli(['host', 'rm', 'beta']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /host beta is up and has 1 containers: drain it first, or remove it with --force/);
    await cluster.berthOk(['host', 'rm', '--force', 'beta']);
    const exit = await beta.exited();
    assert.equal(exit.code, 3, beta.logs());
    assert.match(beta.logs(), /this host was removed from the cluster/);
    assert.ok(!(await cluster.hosts()).some((h) => h.Name === 'beta'));
    // Restarting it does not bring it back: its certificate is refused from now on.
    await beta.restart({ waitUp: false });
    assert.equal((await beta.exited()).code, 3);
  });

  test('bad admin input: unknown hosts and tokens are 404 in Docker\'s shape, bad labels 400', async () => {
    const missing = await cluster.berthCli(['host', 'inspect', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such host: nope/);
    const badLabel = await cluster.berthCli(['host', 'label', 'alpha', '--add', 'bad key=1']);
    assert.match(badLabel.stderr, /invalid label key "bad key"/);
    const badToken = await cluster.berthCli(['host', 'join-token', '--revoke', 'ffffffffffffffff']);
    assert.match(badToken.stderr, /No such join token/);
  });
});

async function pollContainers(cluster: Cluster, name: string, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if ((await cluster.hosts()).find((h) => h.Name === name)?.Containers === count) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`host ${name} never reported ${count} containers`);
}
