/**
 * Known container escapes, tried from inside a tenant's container (root in the container, the
 * tenant's default policy), each asserting its specific failure. Raw syscalls go through tiny
 * static probes (test/support/syscall-probe.ts) that exit with the errno the kernel gave, so
 * the assertion is the kernel's answer itself; the rest uses busybox and the docker CLI.
 *
 * Root in these containers is the tenant's own unprivileged host uid (user-namespace ID
 * ranges, proven in userns.test.ts). Cross-tenant and host reachability over the tenant
 * networks is probed here and in network-tenancy.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { docker, dockerOk } from '../support/docker-cli.js';
import { readTar, tarOf } from '../support/tar-files.js';
import { SYS, syscallProbeElf, type SyscallArg } from '../support/syscall-probe.js';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

const EPERM = 1;
const ENOSYS = 38;

const CLONE_NEWNS = 0x20000;
const CLONE_NEWUSER = 0x10000000;
const LINUX_REBOOT_MAGIC1 = 0xfee1dead;
const LINUX_REBOOT_MAGIC2 = 672274793;
const AF_VSOCK = 40;

/** [what is attempted, syscall, args, expected errno] */
const SYSCALL_ESCAPES: [string, number, SyscallArg[], number][] = [
  ['mount a tmpfs', SYS.mount, ['none', '/mnt', 'tmpfs', 0, 0], EPERM],
  ['mount the host cgroup hierarchy (release_agent)', SYS.mount, ['cgroup', '/mnt', 'cgroup', 0, 'memory'], EPERM],
  ['unmount /proc to get past its masks', SYS.umount2, ['/proc/kcore', 0], EPERM],
  ['pivot_root out of the rootfs', SYS.pivot_root, ['/', '/mnt'], EPERM],
  ['load a kernel module (init_module)', SYS.init_module, [0, 0, ''], EPERM],
  ['load a kernel module (finit_module)', SYS.finit_module, [0, '', 0], EPERM],
  ['unload a kernel module', SYS.delete_module, ['nf_tables', 0], EPERM],
  ['kexec a new kernel', SYS.kexec_load, [0, 0, 0, 0], EPERM],
  ['reboot the host', SYS.reboot, [LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, 0, 0], EPERM],
  ['load a BPF program', SYS.bpf, [5, 0, 0], EPERM],
  ['open a perf event on the host', SYS.perf_event_open, [0, -1, 0, -1, 0], EPERM],
  ['read the kernel keyring', SYS.keyctl, [0, 0, 0, 0, 0], EPERM],
  ['add a key to the kernel keyring', SYS.add_key, ['user', 'k', 0, 0, 0], EPERM],
  ['open a host file by handle (shocker)', SYS.open_by_handle_at, [3, 0, 0], EPERM],
  ['make a user namespace for new privileges', SYS.unshare, [CLONE_NEWUSER], EPERM],
  ['make a mount namespace', SYS.unshare, [CLONE_NEWNS], EPERM],
  ['enter another namespace', SYS.setns, [0, 0], EPERM],
  ['clone3 (flags unreadable to seccomp)', SYS.clone3, [0, 0], ENOSYS],
  ['turn on a swap file', SYS.swapon, ['/tmp/swap', 0], EPERM],
  ['set the host clock', SYS.settimeofday, [0, 0], EPERM],
  ['set the host clock (clock_settime)', SYS.clock_settime, [0, 0], EPERM],
  ['raise the I/O privilege level', SYS.iopl, [3], EPERM],
  ['open I/O ports', SYS.ioperm, [0x80, 1, 1], EPERM],
  ['turn on process accounting to a host file', SYS.acct, ['/tmp/acct'], EPERM],
  ['read the kernel log', SYS.syslog, [3, 0, 0], EPERM],
  ['change disk quotas', SYS.quotactl, [0, '/', 0, 0], EPERM],
  ['disable address randomisation', SYS.personality, [0x0040000], EPERM],
  ['reach the hypervisor through vsock', SYS.socket, [AF_VSOCK, 1, 0], EPERM],
  ['set up io_uring', SYS.io_uring_setup, [1, 0], EPERM],
  ['open a filesystem context (new mount API)', SYS.fsopen, ['tmpfs', 0], EPERM],
  ['clone a mount tree (new mount API)', SYS.open_tree, [-100, '/', 1], EPERM],
  ['change the hostname of the host UTS namespace', SYS.sethostname, ['pwned', 5], EPERM],
];

let t: TenantBerth;
let tenant: NodeJS.ProcessEnv;
let other: NodeJS.ProcessEnv;

/** Copies a probe into the container through stdin and runs it; its exit status is the errno. */
async function probe(container: string, elf: Buffer, user?: string): Promise<number> {
  const name = `/tmp/probe-${Math.random().toString(36).slice(2)}`;
  await dockerOk(tenant, ['exec', '-i', container, 'sh', '-c', `cat > ${name} && chmod 755 ${name}`], { input: elf });
  const result = await docker(tenant, ['exec', ...(user ? ['-u', user] : []), container, name]);
  return result.code;
}

async function sh(container: string, script: string, env = tenant): Promise<{ code: number; out: string }> {
  const result = await docker(env, ['exec', container, 'sh', '-c', script]);
  return { code: result.code, out: result.stdout + result.stderr };
}

/** The uncompressed layer of a `docker save` archive whose bytes hash to `diffId`. */
async function tarMember(archivePath: string, diffId: string): Promise<Buffer> {
  const member = (await readTar(archivePath)).find((e) => `sha256:${createHash('sha256').update(e.data).digest('hex')}` === diffId);
  if (member === undefined) throw new Error(`no member of ${archivePath} hashes to ${diffId}`);
  return member.data;
}

describe('escape battery: known container escapes from a tenant container', () => {
  before(async () => {
    t = await startTenantBerth();
    tenant = await t.createTenant('mallory');
    other = await t.createTenant('victim');
    for (const env of [tenant, other]) await dockerOk(env, ['load', '-i', await busyboxImageTar()]);
    await dockerOk(tenant, ['run', '-d', '--name', 'jail', BUSYBOX_IMAGE, 'sleep', '3600']);
    await dockerOk(other, ['run', '-d', '--name', 'bystander', BUSYBOX_IMAGE, 'sleep', '3600']);
  });
  after(async () => {
    await t?.stop();
  });

  test('raw syscalls that escape or reach the host kernel are refused', async () => {
    const results: string[] = [];
    for (const [what, nr, args, errno] of SYSCALL_ESCAPES) {
      const got = await probe('jail', syscallProbeElf(nr, args));
      if (got !== errno) results.push(`${what}: errno ${got}, want ${errno}`);
    }
    assert.deepEqual(results, []);
    assert.ok(SYSCALL_ESCAPES.length >= 25);
  });

  test('/proc and /sys: read-only where writable would escape, masked where readable would leak', async () => {
    for (const path of ['/proc/sys/kernel/core_pattern', '/sys/kernel/uevent_helper', '/proc/sys/vm/drop_caches', '/proc/sys/kernel/panic']) {
      const { code, out } = await sh('jail', `echo x > ${path}`);
      assert.notEqual(code, 0, path);
      assert.match(out, /Read-only file system/, path);
    }
    // Kernels without magic SysRq have no trigger file at all; where it exists it is read-only.
    const sysrq = await sh('jail', 'echo b > /proc/sysrq-trigger');
    assert.notEqual(sysrq.code, 0);
    assert.match(sysrq.out, /Read-only file system|nonexistent directory/);
    // cgroup limits cannot be raised from inside (the cgroup filesystem is read-only).
    const cgroup = await sh('jail', 'for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max; do [ -e $f ] && echo max > $f; done; exit 0');
    assert.match(cgroup.out, /Read-only file system/);
    // Masked paths read as empty (kernels built without a file simply lack it).
    for (const path of ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug']) {
      assert.equal((await sh('jail', `[ ! -e ${path} ] || wc -c < ${path}`)).out.trim() || '0', '0', path);
    }
    assert.equal((await sh('jail', 'ls /sys/firmware | wc -l')).out.trim(), '0');
  });

  test('raw devices: no host disks or memory, and a made device node cannot be opened', async () => {
    const listed = (await sh('jail', 'ls /dev')).out.split(/\s+/);
    for (const device of ['mem', 'kmem', 'port', 'sda', 'vda', 'kmsg']) assert.ok(!listed.includes(device), `/dev/${device} is visible`);
    // CAP_MKNOD is one of Docker's defaults; the device cgroup is what stops the node's use.
    const made = await sh('jail', 'mknod /tmp/disk b 8 0 && head -c 1 /tmp/disk');
    assert.notEqual(made.code, 0);
    assert.match(made.out, /Operation not permitted/);
    const kmem = await sh('jail', 'mknod /tmp/kmem c 1 2 && head -c 1 /tmp/kmem');
    assert.match(kmem.out, /Operation not permitted/);
  });

  test('a setuid-root program gains nothing for a non-root user (no-new-privileges)', async () => {
    const GETEUID = 107;
    const name = '/tmp/suid-probe';
    await dockerOk(tenant, ['exec', '-i', 'jail', 'sh', '-c', `cat > ${name} && chmod 4755 ${name}`], { input: syscallProbeElf(GETEUID) });
    // The probe exits with (-euid) & 0xff: 0 would mean it ran as root.
    const result = await docker(tenant, ['exec', '-u', '1000', 'jail', name]);
    assert.equal(result.code, -1000 & 0xff);
  });

  test('docker cp does not follow a symlink out of the container, in either direction', async () => {
    await dockerOk(tenant, ['exec', 'jail', 'ln', '-s', '/', '/tmp/root-link']);
    await dockerOk(tenant, ['exec', 'jail', 'ln', '-s', '/etc/hostname', '/tmp/hostname-link']);
    const work = await mkdtemp(join(tmpdir(), 'berth-escape-'));
    try {
      const marker = join(work, 'berth-escape-marker');
      await writeFile(marker, 'escaped?');
      await dockerOk(tenant, ['cp', marker, 'jail:/tmp/root-link/']);
      assert.ok(!existsSync('/berth-escape-marker'), 'docker cp wrote to the host root');
      assert.equal((await sh('jail', 'cat /berth-escape-marker')).out, 'escaped?');
      const read = await dockerOk(tenant, ['cp', 'jail:/tmp/root-link/etc/hostname', '-']);
      const containerHostname = (await sh('jail', 'cat /etc/hostname')).out.trim();
      assert.ok(read.includes(containerHostname), 'read something else than the container file');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  test('a shared image layer changed by one tenant is unchanged for another', async () => {
    await dockerOk(tenant, ['exec', 'jail', 'sh', '-c', 'echo "mallory::0:0::/:/bin/sh" >> /etc/passwd && echo tampered > /bin/tampered']);
    const seen = await sh('bystander', 'grep -c mallory /etc/passwd; ls /bin/tampered', other);
    assert.match(seen.out, /^0\n/);
    assert.match(seen.out, /No such file/);
    // Neither a new container of the same tenant.
    const fresh = await docker(tenant, ['run', '--rm', BUSYBOX_IMAGE, 'grep', '-c', 'mallory', '/etc/passwd']);
    assert.equal(fresh.stdout.trim(), '0');
  });

  test("a docker load archive cannot claim another tenant's layer by naming its diff id", async () => {
    // The victim's private layer: a file only its image holds.
    await dockerOk(other, ['exec', 'bystander', 'sh', '-c', 'echo victim-secret > /secret']);
    await dockerOk(other, ['commit', 'bystander', 'victim/private:1']);
    const diffIds = JSON.parse(await dockerOk(other, ['inspect', '--format', '{{json .RootFS.Layers}}', 'victim/private:1'])) as string[];
    assert.equal(diffIds.length, 2);
    // Mallory's archive names both diff ids but brings an empty tar for the private one.
    const config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['cat', '/secret'] }, rootfs: { type: 'layers', diff_ids: diffIds } }),
    );
    const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
    const busyboxLayer = await tarMember(await busyboxImageTar(), diffIds[0]!);
    const archive = await tarOf({
      'manifest.json': JSON.stringify([{ Config: configName, RepoTags: ['stolen:1'], Layers: ['l0/layer.tar', 'l1/layer.tar'] }]),
      [configName]: config,
      'l0/layer.tar': busyboxLayer,
      'l1/layer.tar': Buffer.alloc(1024),
    });
    const load = await docker(tenant, ['load'], { input: archive });
    assert.notEqual(load.code, 0);
    assert.match(load.stderr, /digest mismatch: expected sha256:[0-9a-f]{64}/);
    assert.equal((await dockerOk(tenant, ['images', '-q', 'stolen'])).trim(), '');
    // The same archive with the real bytes of a layer Mallory already has is fine: the check
    // is on the bytes, not on who holds the layer.
    const honest = await docker(tenant, ['load'], {
      input: await tarOf({
        'manifest.json': JSON.stringify([{ Config: 'c.json', RepoTags: ['honest:1'], Layers: ['l0/layer.tar'] }]),
        'c.json': JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffIds[0]] } }),
        'l0/layer.tar': busyboxLayer,
      }),
    });
    assert.equal(honest.code, 0, honest.stderr);
  });

  test("another tenant's container cannot be named, signalled or joined", async () => {
    const victimId = (await dockerOk(other, ['inspect', '--format', '{{.Id}}', 'bystander'])).trim();
    for (const args of [
      ['exec', victimId, 'true'],
      ['kill', victimId],
      ['run', '--rm', '--pid', `container:${victimId}`, BUSYBOX_IMAGE, 'true'],
      ['run', '--rm', '--network', `container:${victimId}`, BUSYBOX_IMAGE, 'true'],
      ['run', '--rm', '--ipc', `container:${victimId}`, BUSYBOX_IMAGE, 'true'],
      ['run', '--rm', '--volumes-from', victimId, BUSYBOX_IMAGE, 'true'],
    ]) {
      const result = await docker(tenant, args);
      assert.notEqual(result.code, 0, args.join(' '));
    }
    // No process of the victim is visible from the jail (private pid namespace).
    const pids = (await sh('jail', 'ls /proc | grep -c "^[0-9]"')).out.trim();
    assert.ok(Number(pids) <= 4, `jail sees ${pids} processes`);
    assert.equal((await dockerOk(other, ['inspect', '--format', '{{.State.Running}}', 'bystander'])).trim(), 'true');
  });

  test("another tenant's containers are out of reach over the network", async () => {
    // A server in the victim's container, and its address as the victim sees it.
    await dockerOk(other, ['exec', 'bystander', 'httpd', '-p', '7777', '-h', '/tmp']);
    const address = (await dockerOk(other, ['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', 'bystander'])).trim();
    assert.match(address, /^\d+\.\d+\.\d+\.\d+$/);
    // The victim itself reaches it (the server is up)...
    assert.match((await sh('bystander', `nc -w 2 ${address} 7777 </dev/null && echo CONNECTED`, other)).out, /CONNECTED/);
    // ...the attacker does not, by address, nor by name through its DNS.
    const attempt = await sh('jail', `nc -w 2 ${address} 7777 </dev/null && echo CONNECTED; nslookup bystander 2>&1 | tail -2; exit 0`);
    assert.doesNotMatch(attempt.out, /CONNECTED/);
    assert.doesNotMatch(attempt.out, new RegExp(address.replace(/\./g, '\\.')));
  });

  test("the host's services are out of reach", async () => {
    let connections = 0;
    const listener: Server = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '0.0.0.0', resolve));
    const port = (listener.address() as { port: number }).port;
    try {
      // 127.0.0.1 inside is the container's own loopback; any route out must not lead to the host.
      const attempt = await sh(
        'jail',
        `nc -w 2 127.0.0.1 ${port} </dev/null; gw=$(ip route 2>/dev/null | awk '/default/ {print $3}'); [ -n "$gw" ] && nc -w 2 "$gw" ${port} </dev/null; exit 0`,
      );
      assert.equal(connections, 0, attempt.out);
      // Nor Berth's own socket or state.
      assert.match((await sh('jail', 'ls /var/run/berth.sock /run/berth 2>&1')).out, /No such file/);
    } finally {
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    }
  });
});
