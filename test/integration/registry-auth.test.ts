/**
 * docker login/logout, push and pull through Berth against registries that demand
 * credentials: htpasswd (Basic) and a bearer-token issuer (the registry's `auth: token`).
 * Messages are dockerd 20.10's, observed against the same registries.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { startRegistry, type RegistryInstance } from '../support/registry-harness.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

let berth: BerthInstance;

before(async () => {
  berth = await startBerth();
  await dockerOk(berth.env, ['load', '-i', await busyboxImageTar()]);
});
after(() => berth?.stop());

/** POST /images/create on Berth's socket without X-Registry-Auth (an SDK after a login). */
function pullWithoutAuthHeader(fromImage: string, tag: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const path = `/v1.47/images/create?fromImage=${encodeURIComponent(fromImage)}&tag=${encodeURIComponent(tag)}`;
    const req = request({ socketPath: berth.socket, path, method: 'POST' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

const cases = [
  {
    auth: 'basic' as const,
    anonymousPull: (host: string) => `Error response from daemon: Head "http://${host}/v2/app/manifests/v1": no basic auth credentials`,
    anonymousPush: 'no basic auth credentials',
    badLogin: (host: string) => `Error response from daemon: login attempt to http://${host}/v2/ failed with status: 401 Unauthorized`,
  },
  {
    auth: 'token' as const,
    anonymousPull: (host: string) => `Error response from daemon: Head "http://${host}/v2/app/manifests/v1": unauthorized`,
    anonymousPush: 'unauthorized',
    badLogin: (host: string) => `Error response from daemon: Get "http://${host}/v2/": unauthorized`,
  },
];

for (const c of cases) {
  describe(`${c.auth} auth`, () => {
    let registry: RegistryInstance;
    before(async () => {
      registry = await startRegistry({ auth: c.auth, users: { alice: 'open sesame' } });
    });
    after(() => registry?.stop());

    test('anonymous push and pull are refused; a bad login says why; a good one works until logout', async () => {
      const ref = `${registry.host}/app:v1`;
      await dockerOk(berth.env, ['tag', BUSYBOX_IMAGE, ref]);

      const push = await docker(berth.env, ['push', ref]);
      assert.equal(push.code, 1);
      assert.match(push.stderr, new RegExp(`${c.anonymousPush}$`, 'm'));

      for (const [user, password] of [
        ['alice', 'wrong'],
        ['mallory', 'open sesame'],
      ]) {
        const bad = await docker(berth.env, ['login', '-u', user!, '--password-stdin', registry.host], { input: password });
        assert.equal(bad.code, 1);
        assert.equal(bad.stderr.trim(), c.badLogin(registry.host));
      }

      const login = await docker(berth.env, ['login', '-u', 'alice', '--password-stdin', registry.host], { input: 'open sesame' });
      assert.equal(login.code, 0, login.stderr);
      assert.match(login.stdout, /^Login Succeeded$/m);

      const pushed = await dockerOk(berth.env, ['push', ref]);
      assert.match(pushed, /^v1: digest: sha256:[0-9a-f]{64} size: \d+$/m);
      const id = (await dockerOk(berth.env, ['image', 'inspect', '--format', '{{.Id}}', ref])).trim();
      await dockerOk(berth.env, ['rmi', ref]);
      await dockerOk(berth.env, ['pull', ref]);
      assert.equal((await dockerOk(berth.env, ['image', 'inspect', '--format', '{{.Id}}', ref])).trim(), id);
      if (c.auth === 'token') {
        assert.ok(registry.tokenRequests.some((r) => r.status === 200 && r.account === 'alice' && r.scope.includes('repository:app:')));
      }

      // Berth kept the login: a client that sends no X-Registry-Auth pulls with it.
      await dockerOk(berth.env, ['rmi', ref]);
      const sdk = await pullWithoutAuthHeader(`${registry.host}/app`, 'v1');
      assert.equal(sdk.status, 200);
      assert.match(sdk.body, /"status":"Status: Downloaded newer image for /);

      // The CLI forgets the login and pulls anonymously (it sends an empty X-Registry-Auth).
      assert.match(await dockerOk(berth.env, ['logout', registry.host]), /Removing login credentials/);
      await dockerOk(berth.env, ['rmi', ref]);
      const pull = await docker(berth.env, ['pull', ref]);
      assert.equal(pull.code, 1);
      assert.equal(pull.stderr.trim(), c.anonymousPull(registry.host));
    });
  });
}

test('token auth with refresh tokens: the CLI keeps an identity token and Berth trades it for access', async () => {
  const registry = await startRegistry({ auth: 'token', users: { alice: 'open sesame' }, refreshTokens: true });
  try {
    const ref = `${registry.host}/ident:v1`;
    await dockerOk(berth.env, ['tag', BUSYBOX_IMAGE, ref]);
    await dockerOk(berth.env, ['login', '-u', 'alice', '--password-stdin', registry.host], { input: 'open sesame' });
    const config = JSON.parse(await readFile(join(berth.env.DOCKER_CONFIG!, 'config.json'), 'utf8')) as { auths: Record<string, { identitytoken?: string }> };
    assert.ok(config.auths[registry.host]?.identitytoken, 'the CLI stored the identity token Berth returned');
    await dockerOk(berth.env, ['push', ref]);
    await dockerOk(berth.env, ['rmi', ref]);
    await dockerOk(berth.env, ['pull', ref]);
    const refreshed = registry.tokenRequests.filter((r) => r.grant === 'refresh_token');
    assert.ok(refreshed.length > 0 && refreshed.every((r) => r.status === 200 && r.account === 'alice'), JSON.stringify(registry.tokenRequests));
    await dockerOk(berth.env, ['logout', registry.host]);
    await dockerOk(berth.env, ['rmi', ref]);
  } finally {
    await registry.stop();
  }
});

test('POST /auth without a body is a 400 in Docker\'s shape', async () => {
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ socketPath: berth.socket, path: '/v1.47/auth', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(answer.status, 400);
  assert.ok(typeof (JSON.parse(answer.body) as { message?: unknown }).message === 'string');
});

test('login to a registry that is not there says so', async () => {
  const result = await docker(berth.env, ['login', '-u', 'alice', '--password-stdin', '127.0.0.1:1'], { input: 'x' });
  assert.equal(result.code, 1);
  assert.equal(result.stderr.trim(), 'Error response from daemon: Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused');
});
