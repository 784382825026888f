/**
 * The restricted API, driven by a tenant's docker CLI over mutual TLS: every escape hatch is
 * refused in Docker's error shape with a message naming the option, and leaves nothing
 * behind; containers get the tenant's default memory and pids limits; the operator loosens
 * a rule for one tenant with `berth tenant policy`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { docker, dockerOk } from '../support/docker-cli.js';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

let t: TenantBerth;
let tenant: NodeJS.ProcessEnv;

const ESCAPES: [string[], RegExp][] = [
  [['--privileged'], /--privileged is not allowed for tenants/],
  [['--cap-add', 'SYS_ADMIN'], /--cap-add (CAP_)?SYS_ADMIN is not allowed for tenants/],
  [['--cap-add', 'ALL'], /--cap-add (CAP_)?ALL is not allowed for tenants/],
  [['--network', 'host'], /--network host is not allowed for tenants/],
  [['--pid', 'host'], /--pid host is not allowed for tenants/],
  [['--ipc', 'host'], /--ipc host is not allowed for tenants/],
  [['--uts', 'host'], /--uts host is not allowed for tenants/],
  [['--userns', 'host'], /--userns host is not allowed for tenants/],
  [['-v', '/etc:/host-etc'], /the bind mount -v \/etc:\/host-etc is not allowed for tenants/],
  [['--mount', 'type=bind,source=/,target=/host'], /type=bind,source=\/ is not allowed for tenants/],
  [['--device', '/dev/mem'], /--device is not allowed for tenants/],
  [['--security-opt', 'seccomp=unconfined'], /--security-opt seccomp=unconfined is not allowed/],
  [['--security-opt', 'apparmor=unconfined'], /--security-opt apparmor=unconfined is not allowed/],
  [['--security-opt', 'no-new-privileges=false'], /--security-opt no-new-privileges=false is not allowed/],
  [['--security-opt', 'systempaths=unconfined'], /--security-opt systempaths=unconfined is not allowed/],
  [['--cgroup-parent', '/'], /--cgroup-parent \/ is not allowed/],
  [['--oom-score-adj', '-1000'], /--oom-score-adj -1000 is not allowed/],
  [['--runtime', 'runsc'], /--runtime runsc is not allowed/],
];

describe('tenant policy: the restricted API', () => {
  before(async () => {
    t = await startTenantBerth();
    tenant = await t.createTenant('acme');
    await dockerOk(tenant, ['load', '-i', await busyboxImageTar()]);
  });
  after(async () => {
    await t?.stop();
  });

  test('every escape hatch is refused with the option named, and nothing is created', async () => {
    for (const [flags, message] of ESCAPES) {
      const result = await docker(tenant, ['run', '--rm', ...flags, BUSYBOX_IMAGE, 'true']);
      assert.notEqual(result.code, 0, `docker run ${flags.join(' ')} succeeded`);
      assert.match(result.stderr, message, `docker run ${flags.join(' ')}`);
      assert.match(result.stderr, /the operator can allow/);
    }
    // What the docker CLI itself refuses to send, a raw client can: Berth refuses it too.
    const raw = await t.request(join(t.work, 'acme-certs'), 'POST', '/v1.47/containers/create', {
      Image: BUSYBOX_IMAGE,
      HostConfig: { Sysctls: { 'kernel.core_pattern': '|/tmp/x' } },
    });
    assert.equal(raw.status, 403);
    assert.match(JSON.parse(raw.body).message, /^--sysctl kernel.core_pattern is not allowed for tenants/);
    assert.equal((await dockerOk(tenant, ['ps', '-a', '-q'])).trim(), '');

    await dockerOk(tenant, ['run', '-d', '--name', 'box', BUSYBOX_IMAGE, 'sleep', '300']);
    const exec = await docker(tenant, ['exec', '--privileged', 'box', 'true']);
    assert.match(exec.stderr, /docker exec --privileged is not allowed for tenants/);
  });

  test('containers get the tenant default limits, and update cannot lift them', async () => {
    assert.equal(
      (await dockerOk(tenant, ['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}', 'box'])).trim(),
      `${1024 ** 3} 1024`,
    );
    await dockerOk(tenant, ['update', '--pids-limit', '-1', 'box']);
    assert.equal((await dockerOk(tenant, ['inspect', '--format', '{{.HostConfig.PidsLimit}}', 'box'])).trim(), '1024');
    // Limits the tenant names stand.
    await dockerOk(tenant, ['run', '-d', '--name', 'small', '--memory', '64m', '--pids-limit', '50', BUSYBOX_IMAGE, 'sleep', '300']);
    assert.equal((await dockerOk(tenant, ['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}', 'small'])).trim(), `${64 * 1024 ** 2} 50`);

    await t.berthOk(['tenant', 'policy', 'acme', '--default-memory', '256m', '--default-pids', '200']);
    await dockerOk(tenant, ['run', '-d', '--name', 'later', BUSYBOX_IMAGE, 'sleep', '300']);
    assert.equal((await dockerOk(tenant, ['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}', 'later'])).trim(), `${256 * 1024 ** 2} 200`);
    await dockerOk(tenant, ['rm', '-f', 'box', 'small', 'later']);
  });

  test('the operator loosens one rule for one tenant', async () => {
    const netAdmin = ['run', '--rm', '--cap-add', 'NET_ADMIN', BUSYBOX_IMAGE, 'grep', 'CapEff', '/proc/self/status'];
    assert.match((await docker(tenant, netAdmin)).stderr, /--cap-add (CAP_)?NET_ADMIN is not allowed/);
    await t.berthOk(['tenant', 'policy', 'acme', '--allow', 'cap:NET_ADMIN']);
    const capEff = BigInt(`0x${(await dockerOk(tenant, netAdmin)).trim().split(/\s+/)[1]}`);
    assert.ok((capEff >> 12n) & 1n, 'CAP_NET_ADMIN (bit 12) is effective');
    // Only that rule: the rest stays shut.
    assert.match((await docker(tenant, ['run', '--rm', '--privileged', BUSYBOX_IMAGE, 'true'])).stderr, /--privileged is not allowed/);
    const bad = await t.berthCli(['tenant', 'policy', 'acme', '--allow', 'everything']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unknown policy rule "everything"/);
    await t.berthOk(['tenant', 'policy', 'acme', '--allow', 'none']);
    assert.match((await docker(tenant, netAdmin)).stderr, /--cap-add (CAP_)?NET_ADMIN is not allowed/);
  });
});
