/**
 * Tenants and their credentials, end to end: the operator creates tenants with the berth CLI
 * over the local socket; each tenant drives Berth with the unmodified docker CLI over mutual
 * TLS, through the `docker context create` line the berth CLI prints, and sees only its own
 * containers, images and events. Revoked certificates and tokens and disabled tenants are
 * refused with Docker-shaped errors; a client without a certificate never gets past TLS.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { docker, dockerOk } from '../support/docker-cli.js';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

let t: TenantBerth;
let work: string;
let port: number;
const berthCli = (args: string[]) => t.berthCli(args);
const berthOk = (args: string[]) => t.berthOk(args);

function credentialIds(inspectJson: string, kind: string): string[] {
  const view = JSON.parse(inspectJson) as { Credentials: { ID: string; Kind: string }[] };
  return view.Credentials.filter((c) => c.Kind === kind).map((c) => c.ID);
}

describe('tenancy: identity, credentials and scoping', () => {
  let acme: NodeJS.ProcessEnv;
  let globex: NodeJS.ProcessEnv;

  before(async () => {
    t = await startTenantBerth();
    work = t.work;
    port = t.port;
    acme = await t.createTenant('acme');
    globex = await t.createTenant('globex');
  });
  after(async () => {
    await t?.stop();
  });

  test('berth tenant create hands out a cert folder and a docker context line that works', async () => {
    const out = await berthOk(['tenant', 'create', 'initech', '--cert-dir', join(work, 'initech-certs')]);
    for (const file of ['ca.pem', 'cert.pem', 'key.pem']) assert.ok((await readFile(join(work, 'initech-certs', file), 'utf8')).includes('-----BEGIN'));
    const line = /docker context create (.+)$/m.exec(out)?.[1];
    assert.ok(line, out);
    // A fresh docker config of the tenant's user; only the context line points it at Berth.
    const { DOCKER_CONFIG } = await t.tenantEnv(join(work, 'initech-certs'));
    const env = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG };
    // The printed line, run as a user would paste it (the shell strips its quotes).
    const args = ['context', 'create', ...line.split(' ', 1), line.slice(line.indexOf(' ') + 1).replace(/^--docker "(.*)"$/, '--docker=$1')];
    await dockerOk(env, args);
    assert.equal((await dockerOk(env, ['--context', 'initech', 'ps', '-a', '-q'])).trim(), '');
    const listed = await berthOk(['tenant', 'ls']);
    assert.match(listed, /^initech\s+active\s+1\s+0\s+/m);
    await berthOk(['tenant', 'rm', 'initech']);
    assert.doesNotMatch(await berthOk(['tenant', 'ls', '-q']), /initech/);
    const refused = await docker(env, ['--context', 'initech', 'ps']);
    assert.notEqual(refused.code, 0);
    // The tenant is gone and its credentials with it.
    assert.match(refused.stderr, /the client certificate is not known to this Berth/);
  });

  test("one tenant's containers, images and events do not exist for another", async () => {
    await dockerOk(acme, ['load', '-i', await busyboxImageTar()]);
    const id = (await dockerOk(acme, ['run', '-d', '--name', 'web', BUSYBOX_IMAGE, 'sleep', '300'])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal((await dockerOk(acme, ['ps', '--format', '{{.Names}}'])).trim(), 'web');

    assert.equal((await dockerOk(globex, ['ps', '-a', '-q'])).trim(), '');
    assert.equal((await dockerOk(globex, ['images', '-q'])).trim(), '');
    for (const ref of [id, id.slice(0, 12), 'web']) {
      for (const args of [
        ['inspect', '--type', 'container', ref],
        ['stop', ref],
        ['kill', ref],
        ['start', ref],
        ['restart', ref],
        ['pause', ref],
        ['logs', ref],
        ['exec', ref, 'true'],
        ['rename', ref, 'stolen'],
        ['top', ref],
        ['rm', ref],
      ]) {
        const result = await docker(globex, args);
        assert.notEqual(result.code, 0, `globex ${args.join(' ')} succeeded`);
        assert.match(result.stderr, /No such container|No such object/, `globex ${args.join(' ')}: ${result.stderr}`);
      }
    }
    const imageId = (await dockerOk(acme, ['image', 'inspect', '--format', '{{.Id}}', BUSYBOX_IMAGE])).trim();
    for (const ref of [imageId, BUSYBOX_IMAGE]) {
      const result = await docker(globex, ['image', 'inspect', ref]);
      assert.match(result.stderr, /No such image/, result.stderr);
      assert.match((await docker(globex, ['rmi', ref])).stderr, /No such image/);
    }
    // `rm -f` of a missing container succeeds quietly in the CLI; acme's must still be there.
    await dockerOk(globex, ['rm', '-f', id, 'web']);
    // A name is unique per tenant only: globex may use "web" too.
    await dockerOk(globex, ['load', '-i', await busyboxImageTar()]);
    await dockerOk(globex, ['create', '--name', 'web', BUSYBOX_IMAGE, 'true']);
    const globexEvents = await dockerOk(globex, ['events', '--since', '0', '--until', String(Math.floor(Date.now() / 1000) + 1), '--format', '{{.Actor.ID}}']);
    assert.ok(!globexEvents.includes(id), 'globex sees an event of acme');
    // Nothing of acme's changed.
    assert.equal((await dockerOk(acme, ['inspect', '--format', '{{.Name}} {{.State.Status}} {{.RestartCount}}', 'web'])).trim(), '/web running 0');
    await dockerOk(acme, ['rm', '-f', 'web']);
    await dockerOk(globex, ['rm', 'web']);
  });

  test('the admin API refuses tenants; the operator socket keeps its own scope', async () => {
    const certs = join(work, 'acme-certs');
    const status = await new Promise<string>((resolve, reject) => {
      const socket = connect(
        {
          host: '127.0.0.1',
          port,
          ca: [],
          rejectUnauthorized: false,
          cert: '',
          key: '',
        },
        () => undefined,
      );
      socket.on('error', (err) => resolve(`error: ${err.message}`));
      socket.on('close', () => resolve('closed'));
      socket.on('secureConnect', () => socket.write('GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n'));
      socket.on('data', (d: Buffer) => resolve(d.toString()));
      setTimeout(() => reject(new Error('no answer')), 10_000).unref();
    });
    // Without a client certificate the handshake fails: no HTTP answer at all.
    assert.doesNotMatch(status, /^HTTP\//, status);

    const viaTls = await new Promise<{ status: number; body: string }>(async (resolve, reject) => {
      const [ca, cert, key] = await Promise.all(['ca.pem', 'cert.pem', 'key.pem'].map((f) => readFile(join(certs, f), 'utf8')));
      const socket = connect({ host: '127.0.0.1', port, ca, cert, key, servername: 'localhost' }, () => {
        socket.write('GET /berth/v1/tenants HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      });
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) }));
      socket.on('error', reject);
    });
    assert.equal(viaTls.status, 403);
    assert.match(viaTls.body, /"message":"the admin API is served to the operator only/);

    const operator = { ...t.berth.env };
    assert.equal((await dockerOk(operator, ['ps', '-a', '-q'])).trim(), '');
  });

  test('revoked certificates, disabled tenants and tokens', async () => {
    await berthOk(['tenant', 'create', 'hooli', '--require-token', '--cert-dir', join(work, 'hooli-certs')]);
    const noToken = await t.tenantEnv(join(work, 'hooli-certs'));
    const missing = await docker(noToken, ['ps']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /tenant hooli requires an API token/);

    const tokenOut = await berthOk(['tenant', 'token', 'hooli', '--description', 'ci']);
    const token = /^(berth_[0-9a-f]{16}_\S+)$/m.exec(tokenOut)?.[1];
    assert.ok(token, tokenOut);
    const withToken = await t.tenantEnv(join(work, 'hooli-certs'), { Authorization: `Bearer ${token}` });
    assert.equal((await dockerOk(withToken, ['ps', '-q'])).trim(), '');

    // A token of another tenant does not open hooli's door, nor a forged one.
    const acmeToken = /^(berth_\S+)$/m.exec(await berthOk(['tenant', 'token', 'acme']))?.[1];
    const crossed = await t.tenantEnv(join(work, 'hooli-certs'), { Authorization: `Bearer ${acmeToken}` });
    assert.match((await docker(crossed, ['ps'])).stderr, /belongs to another tenant/);
    const forged = await t.tenantEnv(join(work, 'hooli-certs'), { Authorization: `Bearer ${token!.slice(0, -4)}AAAA` });
    assert.match((await docker(forged, ['ps'])).stderr, /the API token is not valid/);

    const [tokenId] = credentialIds(await berthOk(['tenant', 'inspect', 'hooli']), 'token');
    await berthOk(['tenant', 'revoke', 'hooli', tokenId!]);
    assert.match((await docker(withToken, ['ps'])).stderr, /the API token was revoked/);

    // Disabling refuses every request; enabling serves again. Revoking a certificate is final.
    assert.equal((await dockerOk(acme, ['ps', '-q'])).trim(), '');
    await berthOk(['tenant', 'disable', 'acme']);
    const disabled = await docker(acme, ['ps']);
    assert.match(disabled.stderr, /tenant acme is disabled/);
    await berthOk(['tenant', 'enable', 'acme']);
    await dockerOk(acme, ['ps']);
    const [certId] = credentialIds(await berthOk(['tenant', 'inspect', 'acme']), 'certificate');
    await berthOk(['tenant', 'revoke', 'acme', certId!]);
    assert.match((await docker(acme, ['ps'])).stderr, /the client certificate was revoked/);

    // Bad operator input: a clear error and no tenant made.
    const bad = await berthCli(['tenant', 'create', 'Bad_Name']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid tenant name "Bad_Name"/);
    const dup = await berthCli(['tenant', 'create', 'globex']);
    assert.match(dup.stderr, /tenant globex already exists/);
    assert.doesNotMatch(await berthOk(['tenant', 'ls', '-q']), /Bad_Name/);
  });

  test('tenants and credentials survive a SIGKILL of Berth', async () => {
    await t.berth.kill();
    await t.berth.restart();
    assert.equal((await dockerOk(globex, ['ps', '-a', '-q'])).trim(), '');
    assert.match((await docker(acme, ['ps'])).stderr, /the client certificate was revoked/);
    assert.match(await berthOk(['tenant', 'ls', '-q']), /^acme\nglobex\nhooli$/m);
  });
});
