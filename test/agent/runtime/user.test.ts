import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isKind } from '../../../src/common/errors.js';
import { resolveUser, type ResolvedUser } from '../../../src/agent/runtime/user.js';

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment line
app:x:1000:1000:App:/home/app:/bin/sh
nohome:x:1001:1001::/:/bin/sh
`;
const GROUP = `root:x:0:
daemon:x:1:
wheel:x:10:app,daemon
audio:x:29:app
app:x:1000:
staff:x:50:
`;

describe('resolveUser', () => {
  let tmp: string;
  let rootfs: string;
  let empty: string;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'berth-user-'));
    rootfs = path.join(tmp, 'rootfs');
    empty = path.join(tmp, 'empty');
    await mkdir(path.join(rootfs, 'etc'), { recursive: true });
    await mkdir(empty);
    await writeFile(path.join(rootfs, 'etc', 'passwd'), PASSWD);
    await writeFile(path.join(rootfs, 'etc', 'group'), GROUP);
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  // The primary gid always leads the supplementary list (dockerd's containerd spec options do the same).
  const cases: { name: string; user: string; want?: ResolvedUser; err?: string; rootfs?: 'empty' }[] = [
    { name: 'empty is root with its passwd home', user: '', want: { uid: 0, gid: 0, additionalGids: [0], home: '/root' } },
    { name: 'name', user: 'app', want: { uid: 1000, gid: 1000, additionalGids: [1000, 10, 29], home: '/home/app' } },
    { name: 'uid in passwd', user: '1000', want: { uid: 1000, gid: 1000, additionalGids: [1000, 10, 29], home: '/home/app' } },
    { name: 'uid not in passwd', user: '4242', want: { uid: 4242, gid: 0, additionalGids: [0], home: '/' } },
    { name: 'uid:gid numeric, both unknown', user: '4242:4343', want: { uid: 4242, gid: 4343, additionalGids: [4343], home: '/' } },
    { name: 'name:group replaces gid, no supplementary', user: 'app:staff', want: { uid: 1000, gid: 50, additionalGids: [50], home: '/home/app' } },
    { name: 'name:numeric gid', user: 'daemon:7', want: { uid: 1, gid: 7, additionalGids: [7], home: '/usr/sbin' } },
    { name: 'supplementary groups of daemon', user: 'daemon', want: { uid: 1, gid: 1, additionalGids: [1, 10], home: '/usr/sbin' } },
    { name: 'root name', user: 'root', want: { uid: 0, gid: 0, additionalGids: [0], home: '/root' } },
    { name: 'unknown name', user: 'nobody', err: 'unable to find user nobody: no matching entries in passwd file' },
    { name: 'unknown group name', user: 'app:nogroup', err: 'unable to find group nogroup: no matching entries in group file' },
    { name: 'negative uid', user: '-1', err: 'uids and gids must be in range 0-2147483647' },
    { name: 'uid too large', user: '2147483648', err: 'uids and gids must be in range 0-2147483647' },
    { name: 'no passwd: empty is root', user: '', rootfs: 'empty', want: { uid: 0, gid: 0, additionalGids: [0], home: '/' } },
    { name: 'no passwd: uid', user: '33:44', rootfs: 'empty', want: { uid: 33, gid: 44, additionalGids: [44], home: '/' } },
    { name: 'no passwd: name', user: 'app', rootfs: 'empty', err: 'unable to find user app: no matching entries in passwd file' },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const root = c.rootfs === 'empty' ? empty : rootfs;
      if (c.err !== undefined) {
        await assert.rejects(resolveUser(root, c.user), (err: unknown) => {
          assert.ok(isKind(err, 'InvalidArgument'), String(err));
          assert.equal((err as Error).message, c.err);
          return true;
        });
      } else {
        assert.deepEqual(await resolveUser(root, c.user), c.want);
      }
    });
  }

  test('symlinks resolve inside the rootfs, never outside', async () => {
    // Outside the rootfs: a passwd that must never be read.
    await mkdir(path.join(tmp, 'outside'), { recursive: true });
    await writeFile(path.join(tmp, 'outside', 'passwd'), 'outsider:x:7:7::/out:/bin/sh\n');
    const cases: { name: string; link: string; inside?: string; user: string; want?: number; err?: boolean }[] = [
      { name: 'relative link climbing out', link: '../../../../../../../../outside/passwd', user: 'outsider', err: true },
      { name: 'relative link climbing out lands in rootfs', link: '../../../../../../../../outside/passwd', inside: 'outside/passwd', user: 'insider', want: 8 },
      { name: 'absolute link is rootfs-relative', link: path.join(tmp, 'outside', 'passwd'), user: 'outsider', err: true },
      { name: 'absolute link to a file in rootfs', link: '/data/pw', inside: 'data/pw', user: 'insider', want: 8 },
    ];
    for (const [i, s] of cases.entries()) {
      const root = path.join(tmp, `linked-${i}`);
      await mkdir(path.join(root, 'etc'), { recursive: true });
      await symlink(s.link, path.join(root, 'etc', 'passwd'));
      if (s.inside) {
        await mkdir(path.dirname(path.join(root, s.inside)), { recursive: true });
        await writeFile(path.join(root, s.inside), 'insider:x:8:8::/in:/bin/sh\n');
      }
      if (s.err) {
        await assert.rejects(resolveUser(root, s.user), /unable to find user outsider/, s.name);
      } else {
        assert.equal((await resolveUser(root, s.user)).uid, s.want, s.name);
      }
    }
  });

  test('a symlinked /etc directory and a symlink loop', async () => {
    const root = path.join(tmp, 'etc-link');
    await mkdir(path.join(root, 'real'), { recursive: true });
    await writeFile(path.join(root, 'real', 'passwd'), PASSWD);
    await symlink('/real', path.join(root, 'etc'));
    assert.equal((await resolveUser(root, 'app')).uid, 1000);

    const loop = path.join(tmp, 'loop');
    await mkdir(path.join(loop, 'etc'), { recursive: true });
    await symlink('/etc/passwd', path.join(loop, 'etc', 'passwd'));
    await assert.rejects(resolveUser(loop, 'app'), (err: unknown) => isKind(err, 'InvalidArgument'));
  });

  test('a FIFO as /etc/group does not hang and counts as absent', async () => {
    const root = path.join(tmp, 'fifo');
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await writeFile(path.join(root, 'etc', 'passwd'), PASSWD);
    execFileSync('mkfifo', [path.join(root, 'etc', 'group')]);
    assert.deepEqual(await resolveUser(root, 'app'), { uid: 1000, gid: 1000, additionalGids: [1000], home: '/home/app' });
  });
});
