/**
 * A multi-service application through Debian's docker-compose 1.29 against Berth: its own
 * network with name resolution by service, a named volume two services share, a published
 * port on 127.0.0.1, a healthcheck that gates `depends_on`, scaling, logs, and `down -v`
 * leaving no container, network, volume, bridge or mount behind.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { dockerOk } from '../support/docker-cli.js';
import { mountsUnder } from '../support/cleanup.js';
import { freePort } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

const execFileAsync = promisify(execFile);
const COMPOSE = '/usr/bin/docker-compose';

let berth: BerthInstance;
let project: string;
let port: number;

async function compose(args: string[], timeoutMs = 120_000): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(COMPOSE, ['-p', 'shop', ...args], {
      cwd: project,
      env: { ...berth.env, COMPOSE_INTERACTIVE_NO_CLI: '1' },
      timeout: timeoutMs,
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

async function composeOk(args: string[]): Promise<string> {
  const result = await compose(args);
  assert.equal(result.code, 0, `docker-compose ${args.join(' ')}:\n${result.out}`);
  return result.out;
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

/** This Berth's bridges and host veth ends (their names carry the instance id, docs/networking.md). */
async function hostLinksOf(instance: BerthInstance): Promise<string[]> {
  const id = (await readFile(join(instance.dataRoot, 'network', 'instance-id'), 'utf8')).trim();
  const { stdout } = await execFileAsync('ip', ['-o', 'link', 'show']);
  return stdout
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '')
    .filter((name) => name.startsWith(`br-${id}`) || name.startsWith(`vb${id}`));
}

describe('docker-compose 1.29 on Berth', () => {
  before(async () => {
    berth = await startBerth();
    await dockerOk(berth.env, ['load', '-i', await busyboxImageTar()]);
    project = await mkdtemp(join(tmpdir(), 'berth-compose-'));
    port = await freePort();
    await writeFile(
      join(project, 'docker-compose.yml'),
      `version: "3.8"
services:
  web:
    image: ${BUSYBOX_IMAGE}
    command: sh -c "mkdir -p /www && echo hello-from-web > /www/index.html && httpd -f -p 8080 -h /www"
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 2s
      retries: 20
    networks: [back]
    ports:
      - "127.0.0.1:${port}:8080"
  worker:
    image: ${BUSYBOX_IMAGE}
    command: sh -c "wget -q -O- http://web:8080/ >> /data/seen && echo worker-done && sleep 3600"
    depends_on:
      web:
        condition: service_healthy
    volumes:
      - shared:/data
    networks: [back]
  reader:
    image: ${BUSYBOX_IMAGE}
    command: sh -c "sleep 3600"
    volumes:
      - shared:/data:ro
    networks: [back]
volumes:
  shared:
networks:
  back:
`,
    );
  });
  after(async () => {
    if (project) {
      await compose(['down', '-v', '--remove-orphans']).catch(() => undefined);
      await rm(project, { recursive: true, force: true });
    }
    await berth?.stop();
  });

  test('up: the web service gets healthy first, the worker reaches it by name and writes the shared volume', async () => {
    const up = await composeOk(['up', '-d']);
    assert.match(up, /Creating network "shop_back"/);
    assert.match(up, /Creating volume "shop_shared"/);
    const ps = await composeOk(['ps']);
    assert.match(ps, /shop_web_1 .* Up \(healthy\)\s+127\.0\.0\.1:\d+->8080\/tcp/);
    assert.equal(await httpGet(`http://127.0.0.1:${port}/`), 'hello-from-web\n');
    // The worker started only after web was healthy, so its one request succeeded.
    let logs = '';
    for (let i = 0; i < 50 && !logs.includes('worker-done'); i++) {
      logs = await composeOk(['logs', 'worker']);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(logs, /worker-done/);
    assert.equal((await dockerOk(berth.env, ['exec', 'shop_reader_1', 'cat', '/data/seen'])).trim(), 'hello-from-web');
    const refused = await compose(['exec', '-T', 'reader', 'sh', '-c', 'echo x > /data/seen']);
    assert.notEqual(refused.code, 0, 'the read-only mount accepted a write');
  });

  test('scale: more workers, each resolving the service names of the project', async () => {
    await composeOk(['up', '-d', '--scale', 'worker=3']);
    const ids = (await composeOk(['ps', '-q', 'worker'])).trim().split('\n');
    assert.equal(ids.length, 3);
    for (const name of ['shop_worker_2', 'shop_worker_3']) {
      const resolved = await dockerOk(berth.env, ['exec', name, 'nslookup', 'web']);
      assert.match(resolved, /Address: \d+\.\d+\.\d+\.\d+/);
    }
    const seen = (await dockerOk(berth.env, ['exec', 'shop_reader_1', 'cat', '/data/seen'])).trim().split('\n');
    assert.ok(seen.length >= 3, seen.join('|'));
  });

  test('down -v removes containers, network and volume, and nothing stays on the host', async () => {
    const mountsBefore = (await mountsUnder(berth.dataRoot)).length;
    assert.ok(mountsBefore > 0);
    await composeOk(['down', '-v']);
    assert.equal((await dockerOk(berth.env, ['ps', '-a', '-q'])).trim(), '');
    assert.doesNotMatch(await dockerOk(berth.env, ['network', 'ls', '--format', '{{.Name}}']), /shop_back/);
    assert.equal((await dockerOk(berth.env, ['volume', 'ls', '-q'])).trim(), '');
    assert.deepEqual(await mountsUnder(berth.dataRoot), []);
    // Only the default bridge network's bridge stays (as docker0 does); no veth of the project.
    const leftover = await hostLinksOf(berth);
    assert.ok(leftover.length <= 1 && leftover.every((l) => l.startsWith('br-')), `left on the host: ${leftover.join(', ')}`);
    await assert.rejects(httpGet(`http://127.0.0.1:${port}/`));
    // The project's file is untouched and can come up again.
    assert.match(await readFile(join(project, 'docker-compose.yml'), 'utf8'), /services:/);
  });
});
