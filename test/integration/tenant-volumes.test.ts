/**
 * Volumes under tenancy, through tenants' docker CLIs over mutual TLS: each tenant sees and
 * touches only its own volumes (equal names do not meet, on disk either), and a local volume
 * that would bind a host path (`--opt o=bind --opt device=…`) is refused like a bind mount.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readdir } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { docker, dockerOk } from '../support/docker-cli.js';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

describe('tenant volumes', () => {
  let t: TenantBerth;
  let acme: NodeJS.ProcessEnv;
  let umbrella: NodeJS.ProcessEnv;

  before(async () => {
    t = await startTenantBerth();
    acme = await t.createTenant('acme');
    umbrella = await t.createTenant('umbrella');
    const tar = await busyboxImageTar();
    await dockerOk(acme, ['load', '-i', tar]);
    await dockerOk(umbrella, ['load', '-i', tar]);
    await dockerOk(t.berth.env, ['load', '-i', tar]);
  });
  after(async () => {
    await t?.stop();
  });

  test('tenants own their volumes; equal names are different volumes', async () => {
    await dockerOk(t.berth.env, ['volume', 'create', 'shared-name']);
    await dockerOk(t.berth.env, ['run', '--rm', '-v', 'shared-name:/d', BUSYBOX_IMAGE, 'sh', '-c', 'echo operator > /d/who']);
    for (const [env, who] of [[acme, 'acme'], [umbrella, 'umbrella']] as const) {
      assert.equal((await dockerOk(env, ['volume', 'ls', '-q'])).trim(), '', `${who} sees no one else's volume`);
      const inspect = await docker(env, ['volume', 'inspect', 'shared-name']);
      assert.match(inspect.stderr, /get shared-name: no such volume/);
      const rm = await docker(env, ['volume', 'rm', 'shared-name']);
      assert.match(rm.stderr, /no such volume/);
      await dockerOk(env, ['run', '--rm', '-v', 'shared-name:/d', BUSYBOX_IMAGE, 'sh', '-c', `echo ${who} > /d/who`]);
      assert.equal(await dockerOk(env, ['run', '--rm', '-v', 'shared-name:/d', BUSYBOX_IMAGE, 'cat', '/d/who']), `${who}\n`);
    }
    assert.equal(await dockerOk(t.berth.env, ['run', '--rm', '-v', 'shared-name:/d', BUSYBOX_IMAGE, 'cat', '/d/who']), 'operator\n');
    // On disk: the operator's under volumes/<name>, each tenant's under its own hashed directory.
    const entries = await readdir(join(t.berth.dataRoot, 'volumes'));
    assert.ok(entries.includes('shared-name'));
    assert.equal(entries.filter((e) => e.startsWith('@')).length, 2, String(entries));
    const acmeMountpoint = (await dockerOk(acme, ['volume', 'inspect', '-f', '{{.Mountpoint}}', 'shared-name'])).trim();
    assert.match(acmeMountpoint, /\/volumes\/@[0-9a-f]{16}\/shared-name\/_data$/);
    for (const env of [acme, umbrella, t.berth.env]) await dockerOk(env, ['volume', 'rm', 'shared-name']);
  });

  test('a volume binding a host path is refused for tenants, as a bind mount is', async () => {
    const create = await docker(acme, ['volume', 'create', '--opt', 'type=none', '--opt', 'o=bind', '--opt', 'device=/etc', 'etc-vol']);
    assert.equal(create.code, 1);
    assert.match(create.stderr, /the volume option device= is not allowed for tenants: .*the operator can allow "bind-mounts"/);
    const mount = await docker(acme, ['run', '--rm', '--mount', 'type=volume,source=etc-vol2,target=/x,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/etc', BUSYBOX_IMAGE, 'true']);
    assert.notEqual(mount.code, 0);
    assert.match(mount.stderr, /the volume option device= of --mount source=etc-vol2 is not allowed for tenants/);
    // A tmpfs volume is fine.
    await dockerOk(acme, ['volume', 'create', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=1m', 'scratch']);
    assert.equal(await dockerOk(acme, ['run', '--rm', '-v', 'scratch:/s', BUSYBOX_IMAGE, 'sh', '-c', 'grep -c " /s tmpfs" /proc/mounts']), '1\n');
    assert.equal((await dockerOk(acme, ['volume', 'ls', '-q'])).trim(), 'scratch');
    await dockerOk(acme, ['volume', 'rm', 'scratch']);
  });
});
