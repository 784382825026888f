import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { readRuntimeState } from '../../../src/agent/inventory/index.js';
import { readOverlayDrift } from '../../../src/agent/inventory/drift.js';
import { parseSocketTable } from '../../../src/agent/inventory/runtime-state.js';
import { sleep } from '../../support/cleanup.js';

const run = promisify(execFile);

let scratch = '';
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'berth-runtime-state-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

/**
 * A stand-in for a container: `unshare --pid --net --fork` runs a node program as pid 1 of new
 * pid and network namespaces. It brings up lo, listens on TCP 127.0.0.1:4321, TCP6 [::]:4322
 * and UDP 127.0.0.1:4323, opens an outgoing (non-listening) TCP connection to itself, and
 * starts a second process as uid 1234. The host pid of that init is what Berth knows of a
 * container (conmon reports it).
 */
describe('runtime state of a process tree in its own pid and network namespaces', () => {
  let unshare: ChildProcess;
  let initPid = 0;
  let rootfs = '';

  before(async () => {
    rootfs = join(scratch, 'rootfs');
    await mkdir(join(rootfs, 'etc'), { recursive: true });
    await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nappuser:x:1234:1234::/home/app:/bin/sh\n');
    const program = `
      const net = require('node:net'); const dgram = require('node:dgram'); const cp = require('node:child_process');
      cp.execFileSync('ip', ['link', 'set', 'lo', 'up']);
      const server = net.createServer(() => {}).listen(4321, '127.0.0.1', () => {
        net.createServer(() => {}).listen(4322, '::', () => {
          dgram.createSocket('udp4').bind(4323, '127.0.0.1', () => {
            net.connect(4321, '127.0.0.1', () => {
              cp.spawn('setpriv', ['--reuid=1234', '--regid=1234', '--clear-groups', 'sleep', '300'], { stdio: 'ignore' });
              setTimeout(() => console.log('ready'), 200);
            });
          });
        });
      });
      setInterval(() => {}, 1000);
    `;
    unshare = spawn('unshare', ['--pid', '--net', '--fork', '--kill-child', process.execPath, '-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      unshare.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      unshare.on('exit', (code) => reject(new Error(`unshare exited with ${code}`)));
    });
    const children = (await readFile(`/proc/${unshare.pid}/task/${unshare.pid}/children`, 'utf8')).trim().split(/\s+/);
    initPid = Number(children[0]);
    assert.notEqual(await readlink(`/proc/${initPid}/ns/pid`), await readlink('/proc/self/ns/pid'));
  });

  after(async () => {
    // --kill-child: killing unshare (which we started) takes the namespace's processes with it.
    unshare?.kill('SIGKILL');
    await sleep(100);
  });

  test('lists the namespace\'s processes with users from the container\'s passwd, and its listening sockets only', async () => {
    const state = await readRuntimeState({ pid: initPid, rootfs });
    const commands = state.processes.map((p) => [p.user, p.command.split(' ')[0]]);
    assert.deepEqual(commands, [
      ['root', process.execPath],
      ['appuser', 'sleep'],
    ]);
    assert.equal(state.processes[0]!.pid, initPid);
    assert.ok(!state.processes.some((p) => p.pid === unshare.pid), 'unshare itself is outside the namespace');
    assert.deepEqual(state.listening, [
      { protocol: 'tcp', address: '127.0.0.1', port: 4321 },
      { protocol: 'tcp6', address: '::', port: 4322 },
      { protocol: 'udp', address: '127.0.0.1', port: 4323 },
    ]);
    assert.deepEqual(state.drift, { added: [], changed: [], deleted: [] });
  });
});

test('socket tables: addresses in the kernel\'s byte order, TCP LISTEN and unconnected UDP only', () => {
  const tcp6 = [
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0',
    '   1: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0',
    '   2: 0000000000000000FFFF00000100007F:0051 0000000000000000FFFF00000100007F:C000 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0',
  ].join('\n');
  assert.deepEqual(parseSocketTable(tcp6, 'tcp6'), [
    { protocol: 'tcp6', address: '::1', port: 8080 },
    { protocol: 'tcp6', address: '::ffff:127.0.0.1', port: 80 },
  ]);
  const udp = [
    '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
    '  1: 0100007F:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0',
    '  2: 0100007F:14EA 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0',
  ].join('\n');
  assert.deepEqual(parseSocketTable(udp, 'udp'), [{ protocol: 'udp', address: '127.0.0.1', port: 5353 }]);
});

describe('drift from a real overlay mount', () => {
  let base = '';
  let merged = '';
  before(async () => {
    // Berth's layout (overlay-rootfs.ts): upper, work, merged and a `lower` file listing the layers.
    base = join(scratch, 'overlay');
    const lower = join(scratch, 'layer');
    for (const d of ['etc', 'opt/app', 'var/lib']) await mkdir(join(lower, d), { recursive: true });
    for (const d of ['upper', 'work', 'merged']) await mkdir(join(base, d), { recursive: true });
    await writeFile(join(base, 'lower'), `${lower}\n`);
    await writeFile(join(lower, 'etc/config'), 'original\n');
    await writeFile(join(lower, 'etc/removed'), 'x\n');
    await writeFile(join(lower, 'opt/app/old'), 'x\n');
    await writeFile(join(lower, 'var/lib/kept'), 'x\n');
    merged = join(base, 'merged');
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}`, merged]);
    // What a process in the container would do.
    await writeFile(join(merged, 'etc/config'), 'changed\n');
    await rm(join(merged, 'etc/removed'));
    await rm(join(merged, 'opt/app'), { recursive: true });
    await mkdir(join(merged, 'opt/app')); // now opaque: the image's /opt/app content is hidden
    await writeFile(join(merged, 'opt/app/new'), 'x\n');
    await mkdir(join(merged, 'srv/www'), { recursive: true });
    await writeFile(join(merged, 'srv/www/index.html'), 'x\n');
    await writeFile(join(merged, 'var/lib/added'), 'x\n');
    await writeFile(join(merged, 'etc/hostname'), 'runtime file\n');
  });
  after(async () => {
    if (merged !== '') await run('umount', [merged]).catch(() => undefined);
  });

  test('added, changed (incl. opaque directories) and deleted paths', async () => {
    const drift = await readOverlayDrift(join(base, 'upper'), [join(scratch, 'layer')]);
    assert.deepEqual(drift, {
      added: ['/opt/app/new', '/srv', '/var/lib/added'],
      changed: ['/etc/config', '/opt/app'],
      deleted: ['/etc/removed'],
    });
  });

  test('readRuntimeState finds the lower dirs in Berth\'s `lower` file next to the upper dir', async () => {
    const state = await readRuntimeState({ pid: process.pid, rootfs: merged, upperDir: join(base, 'upper') });
    assert.deepEqual(state.drift.changed, ['/etc/config', '/opt/app']);
    assert.deepEqual(state.drift.added, ['/opt/app/new', '/srv', '/var/lib/added']);
  });
});

test('a pid that is not running is NotFound; a bad pid is InvalidArgument', async () => {
  // Pids are at most 2^22 on Linux; this one cannot exist.
  await assert.rejects(readRuntimeState({ pid: 2 ** 23, rootfs: scratch }), (err: Error & { kind?: string }) => err.kind === 'NotFound');
  await assert.rejects(readRuntimeState({ pid: -1, rootfs: scratch }), (err: Error & { kind?: string }) => err.kind === 'InvalidArgument');
});
