/**
 * A multi-service application through Debian's docker-compose 1.29 against Berth: three
 * services Berth builds from local Dockerfiles (an HTTP service, a worker, a store), their own
 * network with name resolution by service, a named volume two services share, a published
 * port on 127.0.0.1, a healthcheck that gates `depends_on`, a SIGKILL and restart of Berth in
 * the middle, scaling, logs, and `down -v` leaving no container, network, volume, veth or
 * mount behind.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
    // Three services built by Berth from local Dockerfiles: an HTTP service, a worker, a store.
    for (const [dir, dockerfile] of [
      ['web', `FROM ${BUSYBOX_IMAGE}\nRUN mkdir -p /www && echo hello-from-web > /www/index.html\nEXPOSE 8080\nCMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n`],
      ['worker', `FROM ${BUSYBOX_IMAGE}\nCOPY work.sh /work.sh\nCMD ["sh", "/work.sh"]\n`],
      ['store', `FROM ${BUSYBOX_IMAGE}\nVOLUME /data\nCMD ["sleep", "3600"]\n`],
    ] as const) {
      await mkdir(join(project, dir));
      await writeFile(join(project, dir, 'Dockerfile'), dockerfile);
    }
    await writeFile(join(project, 'worker', 'work.sh'), 'wget -q -O- http://web:8080/ >> /data/seen && echo worker-done\nexec sleep 3600\n');
    await writeFile(
      join(project, 'docker-compose.yml'),
      `version: "3.8"
services:
  web:
    build: ./web
    init: true
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 2s
      retries: 20
    networks: [back]
    ports:
      - "127.0.0.1:${port}:8080"
  worker:
    build: ./worker
    init: true
    stop_grace_period: 1s
    depends_on:
      web:
        condition: service_healthy
    volumes:
      - shared:/data
    networks: [back]
  store:
    build: ./store
    init: true
    stop_grace_period: 1s
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

  test('up: builds the services, web gets healthy first, the worker reaches it by name and writes the shared volume', async () => {
    const up = await composeOk(['up', '-d', '--build']);
    assert.match(up, /Successfully built/);
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
    assert.equal((await dockerOk(berth.env, ['exec', 'shop_store_1', 'cat', '/data/seen'])).trim(), 'hello-from-web');
    const refused = await compose(['exec', '-T', 'store', 'sh', '-c', 'echo x > /data/seen']);
    assert.notEqual(refused.code, 0, 'the read-only mount accepted a write');
  });

  test('a SIGKILL of Berth in the middle: the application keeps serving, and Compose carries on after the restart', async () => {
    await berth.kill();
    // Published ports are kernel rules and the containers belong to their monitors: still served.
    assert.equal(await httpGet(`http://127.0.0.1:${port}/`), 'hello-from-web\n');
    await berth.restart();
    const ps = await composeOk(['ps']);
    assert.match(ps, /shop_web_1 .* Up \(healthy\)/);
    assert.match(ps, /shop_worker_1 .* Up/);
    assert.match(ps, /shop_store_1 .* Up/);
    assert.equal(await httpGet(`http://127.0.0.1:${port}/`), 'hello-from-web\n');
  });

  test('scale: more workers, each resolving the service names of the project', async () => {
    await composeOk(['up', '-d', '--scale', 'worker=3']);
    const ids = (await composeOk(['ps', '-q', 'worker'])).trim().split('\n');
    assert.equal(ids.length, 3);
    for (const name of ['shop_worker_2', 'shop_worker_3']) {
      const resolved = await dockerOk(berth.env, ['exec', name, 'nslookup', 'web']);
      assert.match(resolved, /Address: \d+\.\d+\.\d+\.\d+/);
    }
    const seen = (await dockerOk(berth.env, ['exec', 'shop_store_1', 'cat', '/data/seen'])).trim().split('\n');
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
