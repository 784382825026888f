import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { takeInventory } from '../../../../src/agent/inventory/index.js';
import { COMPLIANCE_CHECKS, runComplianceChecks } from '../../../../src/server/advisor/compliance/index.js';
import type { ComplianceSubject, RuntimeState } from '../../../../src/server/advisor/model.js';
import { unpackImageRootfs, type UnpackedImage } from '../../../support/image-rootfs.js';
import { busyboxImageTar, debianImageTar } from '../../../support/test-images.js';

const run = promisify(execFile);

/**
 * One failing and one passing subject for every check id. Image subjects are the busybox
 * test image's real rootfs plus the files a variant adds (as a Dockerfile's COPY/RUN would),
 * with a real inventory taken of it; container subjects add a HostConfig and runtime state.
 */

let busybox: UnpackedImage;
let scratch = '';
let variants = 0;

before(async () => {
  busybox = await unpackImageRootfs(await busyboxImageTar(), 'berth-compliance-busybox-');
  scratch = await mkdtemp(join(tmpdir(), 'berth-compliance-'));
});
after(async () => {
  await busybox?.cleanup();
  await rm(scratch, { recursive: true, force: true });
});

type FileSpec = string | { content: string; mode: number };

/** A copy of the busybox rootfs with `files` added (mode given → chmod, e.g. setuid). */
async function imageVariant(files: Record<string, FileSpec> = {}): Promise<string> {
  const root = join(scratch, `variant-${++variants}`);
  await run('cp', ['-a', busybox.rootfs, root]);
  for (const [path, spec] of Object.entries(files)) {
    const file = join(root, path);
    await mkdir(dirname(file), { recursive: true });
    // Replace, never write through: busybox's /bin/su is a symlink to /bin/busybox.
    await rm(file, { force: true });
    await writeFile(file, typeof spec === 'string' ? spec : spec.content);
    if (typeof spec !== 'string') await chmod(file, spec.mode);
  }
  return root;
}

const HEALTHY = { Test: ['CMD', 'true'] };
const RUNTIME_IDLE: RuntimeState = { processes: [{ pid: 10, user: 'app', command: 'node server.js' }], listening: [], drift: { added: [], changed: [], deleted: [] } };
/** A HostConfig that passes every runtime check (Docker's inspect shape). */
const HARDENED = { Privileged: false, CapAdd: null, CapDrop: ['ALL'], NetworkMode: 'bridge', PidMode: '', IpcMode: 'private', UTSMode: '', Binds: null, Mounts: [], Memory: 536870912, PidsLimit: 100, ReadonlyRootfs: true };

async function image(files: Record<string, FileSpec> = {}, config: ComplianceSubject['config'] = { User: 'app', Healthcheck: HEALTHY }): Promise<ComplianceSubject> {
  const rootfs = await imageVariant(files);
  return { rootfs, config, inventory: await takeInventory(rootfs) };
}

async function container(hostConfig: Record<string, unknown>, runtime: RuntimeState = RUNTIME_IDLE, config: ComplianceSubject['config'] = { User: 'app', Healthcheck: HEALTHY }): Promise<ComplianceSubject> {
  return { ...(await image({}, config)), hostConfig: { ...HARDENED, ...hostConfig }, runtime };
}

const dpkgStatus = (...names: string[]): string =>
  names.map((n) => `Package: ${n}\nStatus: install ok installed\nVersion: 1:9.2p1-2+deb12u1\nArchitecture: amd64\nSource: openssh\n`).join('\n');

interface Case {
  id: string;
  fail: () => Promise<ComplianceSubject>;
  pass: () => Promise<ComplianceSubject>;
  /** Text the failing finding's detail must contain. */
  detail?: string;
}

const CASES: Case[] = [
  { id: 'BERTH-PASSWORD-MAX-DAYS', fail: () => image({ 'etc/login.defs': 'PASS_MAX_DAYS\t99999\nPASS_MIN_DAYS 1\n' }), pass: () => image({ 'etc/login.defs': '# PASS_MAX_DAYS 99999\nPASS_MAX_DAYS 60\nPASS_MIN_DAYS 1\n' }), detail: '/etc/login.defs:1: PASS_MAX_DAYS 99999' },
  { id: 'BERTH-PASSWORD-MIN-DAYS', fail: () => image({ 'etc/login.defs': 'PASS_MAX_DAYS 60\nPASS_MIN_DAYS 0\n' }), pass: () => image({ 'etc/login.defs': 'PASS_MAX_DAYS 60\nPASS_MIN_DAYS 1\n' }), detail: 'PASS_MIN_DAYS 0' },
  {
    id: 'BERTH-PASSWORD-MIN-LENGTH',
    fail: () => image({ 'etc/pam.d/common-password': 'password\trequisite\tpam_pwquality.so retry=3 minlen=6\npassword\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok yescrypt\n' }),
    pass: () => image({ 'etc/pam.d/common-password': 'password\trequisite\tpam_pwquality.so retry=3 minlen=12\npassword\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok yescrypt\n' }),
    detail: '/etc/pam.d/common-password:1: minimum password length 6',
  },
  { id: 'BERTH-SSH-SERVER-INSTALLED', fail: () => image({ 'var/lib/dpkg/status': dpkgStatus('openssh-client', 'openssh-server') }), pass: () => image({ 'var/lib/dpkg/status': dpkgStatus('openssh-client') }), detail: 'openssh-server' },
  {
    id: 'BERTH-SSH-SERVER-RUNNING',
    fail: () => container({}, { ...RUNTIME_IDLE, processes: [...RUNTIME_IDLE.processes, { pid: 11, user: 'root', command: '/usr/sbin/sshd -D -e' }] }),
    pass: () => container({}),
    detail: '/usr/sbin/sshd -D -e',
  },
  {
    id: 'BERTH-SSH-ROOT-LOGIN',
    // Debian's layout: the main file includes sshd_config.d/*.conf first; the first value wins.
    fail: () => image({ 'etc/ssh/sshd_config': 'Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\nPasswordAuthentication no\n', 'etc/ssh/sshd_config.d/10-root.conf': 'PermitRootLogin yes\n' }),
    pass: () => image({ 'etc/ssh/sshd_config': 'PermitRootLogin no\nPermitRootLogin yes\nPasswordAuthentication no\nMatch User admin\n  PermitRootLogin yes\n' }),
    detail: '/etc/ssh/sshd_config.d/10-root.conf:1: PermitRootLogin yes',
  },
  { id: 'BERTH-SSH-PASSWORD-AUTH', fail: () => image({ 'etc/ssh/sshd_config': 'PermitRootLogin no\n' }), pass: () => image({ 'etc/ssh/sshd_config': 'PasswordAuthentication=no\n' }), detail: "sshd's default is yes" },
  { id: 'BERTH-SSH-EMPTY-PASSWORDS', fail: () => image({ 'etc/ssh/sshd_config': 'PasswordAuthentication no\npermitemptypasswords YES\n' }), pass: () => image({ 'etc/ssh/sshd_config': 'PasswordAuthentication no\n' }), detail: 'sshd_config:2' },
  {
    id: 'BERTH-UID0-NON-ROOT',
    fail: () => image({ 'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n' }),
    pass: () => image({ 'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' }),
    detail: '/etc/passwd:2: account toor has UID 0',
  },
  {
    id: 'BERTH-EMPTY-PASSWORD',
    fail: () => image({ 'etc/shadow': 'root:$y$j9T$secrethash:19000:0:99999:7:::\nguest::19000:0:99999:7:::\n' }),
    pass: () => image({ 'etc/shadow': 'root:$y$j9T$secrethash:19000:0:99999:7:::\nguest:!:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n' }),
    detail: '/etc/shadow:2: account guest',
  },
  { id: 'BERTH-IMAGE-USER-ROOT', fail: () => image({}, { User: '0:0', Healthcheck: HEALTHY }), pass: () => image({}, { User: '1000:1000', Healthcheck: HEALTHY }), detail: 'USER is "0:0"' },
  {
    id: 'BERTH-IMAGE-USER-ROOT',
    fail: () => image({ 'etc/passwd': 'root:x:0:0::/root:/bin/sh\nadmin:x:0:0::/root:/bin/sh\n' }, { User: 'admin', Healthcheck: HEALTHY }),
    pass: () => image({ 'etc/passwd': 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' }, { User: 'app', Healthcheck: HEALTHY }),
    detail: 'USER is "admin", which has UID 0 (/etc/passwd:2)',
  },
  {
    id: 'BERTH-SETUID-UNEXPECTED',
    fail: () => image({ 'usr/local/bin/helper': { content: '#!/bin/sh\n', mode: 0o4755 }, 'usr/bin/passwd': { content: 'x', mode: 0o4755 } }),
    // Debian's own setuid and setgid programs, in merged-/usr and classic places.
    pass: () => image({ 'usr/bin/passwd': { content: 'x', mode: 0o4755 }, 'bin/su': { content: 'x', mode: 0o4755 }, 'usr/sbin/unix_chkpwd': { content: 'x', mode: 0o2755 }, 'usr/local/bin/tool': { content: 'x', mode: 0o755 } }),
    detail: '/usr/local/bin/helper: setuid, mode 4755, owner 0:0',
  },
  {
    id: 'BERTH-ENV-SECRET',
    fail: () => image({}, { User: 'app', Healthcheck: HEALTHY, Env: ['PATH=/usr/bin:/bin', 'DB_PASSWORD=hunter2'] }),
    pass: () =>
      image({}, {
        User: 'app',
        Healthcheck: HEALTHY,
        Env: ['PATH=/usr/bin:/bin', 'GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D', 'POSTGRES_PASSWORD_FILE=/run/secrets/db', 'API_TOKEN=', 'LANG=C.UTF-8', 'TOKENIZERS_PARALLELISM=false', 'KEYBOARD=us', 'PASSENGER_APP_ENV=production', 'SSL_KEY_DIR=/etc/ssl/private'],
      }),
    detail: 'environment variable DB_PASSWORD',
  },
  { id: 'BERTH-HEALTHCHECK-MISSING', fail: () => image({}, { User: 'app', Healthcheck: { Test: ['NONE'] } }), pass: () => image({}, { User: 'app', Healthcheck: { Test: ['CMD-SHELL', 'wget -q -O- localhost'] } }), detail: 'NONE' },
  { id: 'BERTH-RUNTIME-PRIVILEGED', fail: () => container({ Privileged: true }), pass: () => container({}) },
  { id: 'BERTH-RUNTIME-CAPABILITIES', fail: () => container({ CapAdd: ['net_admin', 'CAP_CHOWN'], CapDrop: null }), pass: () => container({ CapAdd: ['CHOWN'], CapDrop: ['NET_RAW'] }), detail: 'capabilities added: CAP_NET_ADMIN' },
  { id: 'BERTH-RUNTIME-HOST-NAMESPACE', fail: () => container({ PidMode: 'host' }), pass: () => container({ PidMode: 'container:abc', NetworkMode: 'none' }), detail: 'HostConfig.PidMode' },
  { id: 'BERTH-RUNTIME-SENSITIVE-MOUNT', fail: () => container({ Binds: ['/var/run/docker.sock:/var/run/docker.sock'] }), pass: () => container({ Binds: ['data:/data', '/srv/www:/usr/share/nginx/html:ro'] }), detail: '/var/run/docker.sock' },
  { id: 'BERTH-RUNTIME-HOST-MOUNT', fail: () => container({ Mounts: [{ Type: 'bind', Source: '/srv/www', Target: '/www' }] }), pass: () => container({ Mounts: [{ Type: 'volume', Source: 'data', Target: '/data' }] }), detail: 'host path /srv/www is mounted at /www' },
  { id: 'BERTH-RUNTIME-NO-MEMORY-LIMIT', fail: () => container({ Memory: 0 }), pass: () => container({ Memory: 67108864 }) },
  { id: 'BERTH-RUNTIME-NO-PIDS-LIMIT', fail: () => container({ PidsLimit: null }), pass: () => container({ PidsLimit: 64 }) },
  { id: 'BERTH-RUNTIME-WRITABLE-ROOTFS', fail: () => container({ ReadonlyRootfs: false }), pass: () => container({ ReadonlyRootfs: true }) },
];

test('every check id has a failing and a passing case here, and a section in docs/advisor-checks.md', async () => {
  const docs = await readFile(fileURLToPath(new URL('../../../../../docs/advisor-checks.md', import.meta.url)), 'utf8');
  assert.deepEqual([...new Set(CASES.map((c) => c.id))].sort(), COMPLIANCE_CHECKS.map((c) => c.id).sort());
  for (const { id } of COMPLIANCE_CHECKS) assert.match(docs, new RegExp(`^## ${id}$`, 'm'), `docs/advisor-checks.md documents ${id}`);
  assert.equal(new Set(COMPLIANCE_CHECKS.map((c) => c.id)).size, COMPLIANCE_CHECKS.length);
});

describe('each check', () => {
  for (const [n, c] of CASES.entries()) {
    test(`${c.id} (case ${n + 1}): fails its failing subject, passes its passing one`, async () => {
      const failing = (await runComplianceChecks(await c.fail())).filter((f) => f.checkId === c.id);
      assert.ok(failing.length > 0, `${c.id} found nothing in its failing subject`);
      const meta = COMPLIANCE_CHECKS.find((m) => m.id === c.id)!;
      for (const finding of failing) {
        assert.equal(finding.title, meta.title);
        assert.ok(finding.remediation.length > 10);
      }
      if (c.detail !== undefined) assert.ok(failing.some((f) => f.detail.includes(c.detail!)), `${JSON.stringify(failing)} names ${c.detail}`);
      const passing = (await runComplianceChecks(await c.pass())).filter((f) => f.checkId === c.id);
      assert.deepEqual(passing, []);
    });
  }
});

test('secret values never appear in findings', async () => {
  const secrets = ['hunter2', 'AKIAIOSFODNN7EXAMPLE', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', 'secrethash', 'ghp_x', 'sk_x'];
  const subject = await image(
    { 'etc/shadow': 'root:$y$j9T$secrethash:19000:0:99999:7:::\nguest::1:0:99999:7:::\n' },
    { Env: ['DB_PASSWORD=hunter2', 'SOME_ID=AKIAIOSFODNN7EXAMPLE', 'GITHUB_TOKEN=ghp_x', 'AWS_ACCESS_KEY_ID=x', 'STRIPE_API_KEY=sk_x', `TLS=-----BEGIN RSA PRIVATE KEY-----\n${secrets[2]}\n-----END RSA PRIVATE KEY-----`] },
  );
  const findings = await runComplianceChecks(subject);
  const envFindings = findings.filter((f) => f.checkId === 'BERTH-ENV-SECRET').map((f) => f.detail);
  assert.deepEqual(envFindings, [
    'environment variable DB_PASSWORD (its name suggests a secret; value not shown)',
    'environment variable SOME_ID (its value looks like an AWS access key id; value not shown)',
    'environment variable GITHUB_TOKEN (its name suggests a secret; value not shown)',
    'environment variable AWS_ACCESS_KEY_ID (its name suggests a secret; value not shown)',
    'environment variable STRIPE_API_KEY (its name suggests a secret; value not shown)',
    'environment variable TLS (its value is a private key; value not shown)',
  ]);
  const text = JSON.stringify(findings);
  for (const secret of secrets) assert.ok(!text.includes(secret), `findings leak ${secret}`);
});

test('an image is not judged by container-only checks, and a bare busybox image passes the file checks', async () => {
  const findings = await runComplianceChecks({ rootfs: busybox.rootfs, config: {}, inventory: await takeInventory(busybox.rootfs) });
  assert.deepEqual(findings.map((f) => f.checkId).sort(), ['BERTH-HEALTHCHECK-MISSING', 'BERTH-IMAGE-USER-ROOT']);
});

test('the Debian bookworm image: Debian\'s weak password defaults, and no setuid file outside Debian\'s own', async () => {
  const debian = await unpackImageRootfs(await debianImageTar(), 'berth-compliance-bookworm-');
  try {
    const subject = { rootfs: debian.rootfs, config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] }, inventory: await takeInventory(debian.rootfs) };
    const start = performance.now();
    const findings = await runComplianceChecks(subject);
    console.log(`# compliance checks of the bookworm image: ${(performance.now() - start).toFixed(0)} ms`);
    assert.deepEqual(findings.map((f) => `${f.checkId}: ${f.detail}`).sort(), [
      'BERTH-HEALTHCHECK-MISSING: no HEALTHCHECK is set',
      'BERTH-IMAGE-USER-ROOT: no USER is set, so the process runs as root',
      'BERTH-PASSWORD-MAX-DAYS: /etc/login.defs:165: PASS_MAX_DAYS 99999',
      'BERTH-PASSWORD-MIN-DAYS: /etc/login.defs:166: PASS_MIN_DAYS 0',
      'BERTH-PASSWORD-MIN-LENGTH: /etc/pam.d/common-password:25 (pam_unix default): minimum password length 6',
    ]);
  } finally {
    await debian.cleanup();
  }
});

test('a hostile rootfs: links to host files are read inside the rootfs', async () => {
  // The host's /etc/shadow has a root hash; followed, BERTH-EMPTY-PASSWORD would not see the
  // rootfs's own empty password and /etc/passwd would list host accounts.
  const root = await imageVariant({ 'srv/shadow': 'guest::1:0:99999:7:::\n' });
  await rm(join(root, 'etc/passwd'));
  await run('ln', ['-s', '/srv/shadow', join(root, 'etc/shadow')]);
  await run('ln', ['-s', '../../../../../../../../etc/passwd', join(root, 'etc/passwd')]);
  const findings = await runComplianceChecks({ rootfs: root, config: { User: 'app', Healthcheck: HEALTHY }, inventory: await takeInventory(root) });
  assert.deepEqual(findings.map((f) => f.detail), ['/etc/shadow:1: account guest has an empty password field']);
});
