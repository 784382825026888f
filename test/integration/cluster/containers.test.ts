/**
 * Containers across hosts as a tenant sees them: `berth server` with three real agents, each
 * in its own network namespace (cluster-harness.ts), driven by the docker CLI over mutual
 * TLS. Placement (capacity, constraints, affinity and anti-affinity under concurrent creates,
 * "no host fits" with reasons), the host in inspect and info, ports at the host's address,
 * and logs, exec, attach and cp on every host.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster } from '../../support/cluster-harness.js';
import { removeTree, pollFor } from '../../support/cleanup.js';
import { docker, dockerOk } from '../../support/docker-cli.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../../support/test-images.js';

const HOSTS = [
  { name: 'ct-a', labels: { region: 'eu' } },
  { name: 'ct-b', labels: { region: 'us' } },
  { name: 'ct-c', labels: { region: 'eu' } },
];

describe('cluster: containers through berth server', () => {
  let cluster: Cluster;
  let tenant: NodeJS.ProcessEnv;
  let work: string;
  const addressOf = new Map<string, string>();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-cluster-ct-'));
    cluster = await startCluster({ controlPlane: 'berth-server' });
    for (const host of HOSTS) {
      const agent = await cluster.startAgent(host);
      addressOf.set(host.name, agent.address);
    }
    tenant = await cluster.createTenantClient('tenant-ct');
    await dockerOk(tenant, ['load', '-i', await busyboxImageTar()]);
  });

  after(async () => {
    await cluster?.stop();
    if (work) await removeTree(work);
  });

  const nodeOf = async (container: string): Promise<string> => (await dockerOk(tenant, ['inspect', '--format', '{{.Node.Name}}', container])).trim();
  const rmAll = async (names: string[]): Promise<void> => {
    if (names.length > 0) await docker(tenant, ['rm', '-f', ...names]);
  };

  test('constraints on host labels and names: -e constraint: and the com.docker.swarm.constraints label', async () => {
    await dockerOk(tenant, ['create', '--name', 'in-us', '-e', 'constraint:region==us', BUSYBOX_IMAGE, 'true']);
    assert.equal(await nodeOf('in-us'), 'ct-b');
    for (let i = 0; i < 3; i++) {
      await dockerOk(tenant, ['create', '--name', `in-eu-${i}`, '-l', 'com.docker.swarm.constraints=["region==eu"]', BUSYBOX_IMAGE, 'true']);
      assert.match(await nodeOf(`in-eu-${i}`), /^ct-[ac]$/);
    }
    await dockerOk(tenant, ['create', '--name', 'not-a', '-e', 'constraint:node!=ct-a', '-e', 'constraint:region==eu', BUSYBOX_IMAGE, 'true']);
    assert.equal(await nodeOf('not-a'), 'ct-c');
    const refused = await docker(tenant, ['create', '--name', 'nowhere', '-e', 'constraint:region==asia', BUSYBOX_IMAGE, 'true']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /no host fits: 3 hosts/);
    assert.match(refused.stderr, /region==asia/);
    // Nothing half-made: the name is free and no host has it.
    assert.equal((await docker(tenant, ['inspect', 'nowhere'])).code, 1);
    const bad = await docker(tenant, ['create', '-e', 'affinity:container=web', BUSYBOX_IMAGE, 'true']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid affinity expression/);
    await rmAll(['in-us', 'in-eu-0', 'in-eu-1', 'in-eu-2', 'not-a']);
  });

  test('capacity: one 0.75-host-CPU container per host, then "no host fits" with the reason', async (t) => {
    const [first] = await cluster.hosts();
    const cpus = (first!.Capacity.Cpus * 3) / 4;
    const names: string[] = [];
    for (let i = 0; i < HOSTS.length; i++) {
      names.push(`big-${i}`);
      await dockerOk(tenant, ['create', '--name', `big-${i}`, '--cpus', String(cpus), BUSYBOX_IMAGE, 'true']);
    }
    const placed = await Promise.all(names.map(nodeOf));
    assert.deepEqual([...placed].sort(), HOSTS.map((h) => h.name).sort(), 'each host took one');
    const full = await docker(tenant, ['create', '--name', 'big-x', '--cpus', String(cpus), BUSYBOX_IMAGE, 'true']);
    assert.notEqual(full.code, 0);
    assert.match(full.stderr, /no host fits: 3 hosts? .*CPU/i);
    t.diagnostic(full.stderr.trim());
    // Freed capacity is usable again.
    await dockerOk(tenant, ['rm', 'big-0']);
    await dockerOk(tenant, ['create', '--name', 'big-x', '--cpus', String(cpus), BUSYBOX_IMAGE, 'true']);
    assert.equal(await nodeOf('big-x'), placed[0], 'on the host big-0 left');
    await rmAll(['big-1', 'big-2', 'big-x']);
  });

  test('affinity to a container, and anti-affinity honoured by 6 concurrent creates on 3 hosts', async (t) => {
    await dockerOk(tenant, ['create', '--name', 'anchor', BUSYBOX_IMAGE, 'true']);
    const anchorHost = await nodeOf('anchor');
    await dockerOk(tenant, ['create', '--name', 'follower', '-e', 'affinity:container==anchor', BUSYBOX_IMAGE, 'true']);
    assert.equal(await nodeOf('follower'), anchorHost);
    await dockerOk(tenant, ['create', '--name', 'avoider', '-e', 'affinity:container!=anchor', BUSYBOX_IMAGE, 'true']);
    assert.notEqual(await nodeOf('avoider'), anchorHost);

    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => docker(tenant, ['create', '--name', `db-${i}`, '-l', 'role=db', '-e', 'affinity:role!=db', BUSYBOX_IMAGE, 'true'])),
    );
    const created = results.map((r, i) => ({ r, name: `db-${i}` })).filter(({ r }) => r.code === 0);
    const refused = results.filter((r) => r.code !== 0);
    assert.equal(created.length, 3, `exactly one per host: ${results.map((r) => r.stderr.trim()).join(' | ')}`);
    for (const r of refused) assert.match(r.stderr, /no host fits: 3 hosts .*affinity/i);
    t.diagnostic(refused[0]!.stderr.trim());
    const hosts = await Promise.all(created.map(({ name }) => nodeOf(name)));
    assert.equal(new Set(hosts).size, 3, `on distinct hosts: ${hosts.join(',')}`);
    await rmAll(['anchor', 'follower', 'avoider', ...created.map(({ name }) => name)]);
  });

  test('docker info shows the hosts and the cluster\'s total capacity; inspect shows the host', async () => {
    const info = JSON.parse(await dockerOk(tenant, ['info', '--format', '{{json .}}'])) as {
      NCPU: number;
      MemTotal: number;
      Labels: string[];
      SystemStatus: [string, string][];
    };
    const hosts = await cluster.hosts();
    assert.equal(info.NCPU, hosts.reduce((n, h) => n + h.Capacity.Cpus, 0));
    assert.equal(info.MemTotal, hosts.reduce((n, h) => n + h.Capacity.MemoryBytes, 0));
    for (const host of HOSTS) {
      assert.ok(info.Labels.some((l) => l.startsWith(`berth.host.${host.name}=healthy ${addressOf.get(host.name)}`)), `${host.name} in ${info.Labels.join('; ')}`);
      assert.ok(info.SystemStatus.some(([k, v]) => k.trim() === host.name && v === addressOf.get(host.name)));
    }
    const printed = await dockerOk(tenant, ['info']);
    assert.match(printed, /berth\.host\.ct-a=healthy/);

    await dockerOk(tenant, ['create', '--name', 'where', '-e', 'constraint:node==ct-c', BUSYBOX_IMAGE, 'true']);
    const node = JSON.parse(await dockerOk(tenant, ['inspect', '--format', '{{json .Node}}', 'where'])) as { Name: string; IP: string; ID: string; Labels: Record<string, string> };
    assert.equal(node.Name, 'ct-c');
    assert.equal(node.IP, addressOf.get('ct-c'));
    assert.equal(node.Labels.region, 'eu');
    await rmAll(['where']);
  });

  test('a published port answers on the host that runs the container, at the address docker port and ps show', async () => {
    for (const host of ['ct-a', 'ct-b']) {
      const name = `web-${host}`;
      await dockerOk(tenant, ['run', '-d', '--name', name, '-p', '18080:80', '-e', `constraint:node==${host}`, BUSYBOX_IMAGE, 'sh', '-c', `mkdir -p /www && echo served-by-${host} > /www/index.html && exec httpd -f -p 80 -h /www`]);
      const port = (await dockerOk(tenant, ['port', name, '80'])).trim().split('\n');
      assert.deepEqual(port, [`${addressOf.get(host)}:18080`]);
      const ps = (await dockerOk(tenant, ['ps', '--filter', `name=${name}`, '--format', '{{.Ports}}'])).trim();
      assert.equal(ps, `${addressOf.get(host)}:18080->80/tcp`);
      const body = await pollFor(`httpd on ${host}`, async () => httpGet(`http://${addressOf.get(host)}:18080/`).catch(() => undefined), 15_000);
      assert.equal(body.trim(), `served-by-${host}`);
    }
    await rmAll(['web-ct-a', 'web-ct-b']);
  });

  test('logs, exec, attach and cp work for containers on every host', async () => {
    for (const { name: host } of HOSTS) {
      const name = `io-${host}`;
      await dockerOk(tenant, ['run', '-d', '--name', name, '-e', `constraint:node==${host}`, BUSYBOX_IMAGE, 'sh', '-c', `echo hello-from-${host}; exec sleep 300`]);
      assert.equal(await nodeOf(name), host);
      const logs = await pollFor('logs', async () => {
        const out = await dockerOk(tenant, ['logs', name]);
        return out.includes('hello') ? out : undefined;
      });
      assert.equal(logs.trim(), `hello-from-${host}`);
      assert.equal((await dockerOk(tenant, ['exec', name, 'sh', '-c', 'echo $((6*7))'])).trim(), '42');
      const exitCode = await docker(tenant, ['exec', name, 'sh', '-c', 'exit 3']);
      assert.equal(exitCode.code, 3);
      // exec with stdin (attached both ways, the half-close ends cat).
      const echoed = await dockerOk(tenant, ['exec', '-i', name, 'cat'], { input: `stdin-to-${host}\n` });
      assert.equal(echoed.trim(), `stdin-to-${host}`);
      // cp both ways.
      const local = join(work, `${host}.txt`);
      await writeFile(local, `file-for-${host}\n`);
      await dockerOk(tenant, ['cp', local, `${name}:/tmp/in.txt`]);
      assert.equal((await dockerOk(tenant, ['exec', name, 'cat', '/tmp/in.txt'])).trim(), `file-for-${host}`);
      const back = join(work, `${host}-back.txt`);
      await dockerOk(tenant, ['cp', `${name}:/tmp/in.txt`, back]);
      assert.equal((await readFile(back, 'utf8')).trim(), `file-for-${host}`);
      // docker run -i: attach with stdin, then wait, --rm.
      const run = await dockerOk(tenant, ['run', '--rm', '-i', '-e', `constraint:node==${host}`, BUSYBOX_IMAGE, 'sh', '-c', 'read line; echo got-$line'], { input: 'x\n' });
      assert.equal(run.trim(), 'got-x');
    }
    const listed = (await dockerOk(tenant, ['ps', '--format', '{{.Names}}'])).trim().split('\n').sort();
    assert.deepEqual(listed, HOSTS.map((h) => `io-${h.name}`).sort(), 'ps merges every host; the --rm containers are gone');
    await dockerOk(tenant, ['rm', '-f', ...HOSTS.map((h) => `io-${h.name}`)]);
    assert.equal((await dockerOk(tenant, ['ps', '-a', '-q'])).trim(), '');
  });

  test('names are unique per tenant across hosts; rename moves the name; another tenant sees nothing', async () => {
    await dockerOk(tenant, ['create', '--name', 'uniq', '-e', 'constraint:node==ct-a', BUSYBOX_IMAGE, 'true']);
    const dup = await docker(tenant, ['create', '--name', 'uniq', '-e', 'constraint:node==ct-b', BUSYBOX_IMAGE, 'true']);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /Conflict\. The container name "\/uniq" is already in use/);
    await dockerOk(tenant, ['rename', 'uniq', 'renamed']);
    assert.equal((await dockerOk(tenant, ['inspect', '--format', '{{.Name}}', 'renamed'])).trim(), '/renamed');
    await dockerOk(tenant, ['create', '--name', 'uniq', '-e', 'constraint:node==ct-b', BUSYBOX_IMAGE, 'true']);
    const other = await cluster.createTenantClient('ct-other');
    const seen = await docker(other, ['inspect', 'renamed']);
    assert.equal(seen.code, 1);
    assert.match(seen.stderr, /No such object: renamed|No such container: renamed/);
    assert.equal((await dockerOk(other, ['ps', '-a', '-q'])).trim(), '');
    await rmAll(['renamed', 'uniq']);
  });
});

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: 3000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString()) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
