import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import {
  absoluteContainerPath,
  cleanEntryName,
  goBase,
  resolveInContainer,
} from '../../../src/server/containers/archive-paths.js';
import { extractInto, goFileMode, goTime, packPath } from '../../../src/server/containers/archive-tar.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A small container root with links that try to leave it, and a host file they aim at. */
async function fixture(): Promise<{ base: string; root: string; outside: string }> {
  const base = await mkdtemp(join(tmpdir(), 'berth-io-archive-'));
  dirs.push(base);
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'data/sub'), { recursive: true });
  await mkdir(outside);
  await writeFile(join(outside, 'secret'), 'host secret');
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nfoo:x:1000:1000::/home/foo:/bin/sh\n');
  await writeFile(join(root, 'data/sub/file'), 'inside');
  await symlink('/', join(root, 'rootlink'));
  await symlink('../../../../../../..', join(root, 'climb'));
  await symlink('/etc/passwd', join(root, 'abs'));
  await symlink(join(outside, 'secret'), join(root, 'hostabs'));
  await symlink('loop2', join(root, 'loop1'));
  await symlink('loop1', join(root, 'loop2'));
  return { base, root, outside };
}

test('resolution follows links inside the root and never leaves it', async () => {
  const { root, outside } = await fixture();
  const cases: { name: string; path: string; followLast: boolean; container: string }[] = [
    { name: 'plain', path: '/data/sub/file', followLast: false, container: '/data/sub/file' },
    { name: 'dot-dot above root stops at root', path: '/../../data', followLast: false, container: '/data' },
    { name: 'absolute link in the middle restarts at root', path: '/rootlink/etc/passwd', followLast: false, container: '/etc/passwd' },
    { name: 'climbing link stops at root', path: '/climb/etc/passwd', followLast: false, container: '/etc/passwd' },
    { name: 'last link kept when not following', path: '/abs', followLast: false, container: '/abs' },
    { name: 'last link followed', path: '/abs', followLast: true, container: '/etc/passwd' },
    { name: 'link to a host path stays in root', path: '/hostabs', followLast: true, container: `${outside}/secret` },
    { name: 'missing parts kept lexically', path: '/data/nope/x', followLast: true, container: '/data/nope/x' },
  ];
  for (const c of cases) {
    const got = await resolveInContainer(root, c.path, { followLast: c.followLast });
    assert.equal(got.containerPath, c.container, c.name);
    assert.equal(got.hostPath, join(root, c.container), c.name);
    assert.ok(got.hostPath.startsWith(`${root}/`) || got.hostPath === root, c.name);
  }
  await assert.rejects(resolveInContainer(root, '/loop1', { followLast: true }), /too many levels of symbolic links/);
});

test('file mounts shadow the rootfs at their destination', async () => {
  const { base, root } = await fixture();
  const hosts = join(base, 'hosts');
  await writeFile(hosts, '127.0.0.1 localhost\n');
  const got = await resolveInContainer(root, '/rootlink/etc/hosts', { followLast: true, mounts: [{ destination: '/etc/hosts', source: hosts }] });
  assert.deepEqual(got, { containerPath: '/etc/hosts', hostPath: hosts });
});

test('user paths become Docker absolute paths, keeping "/" and "/." markers', () => {
  const cases: [string, string][] = [
    ['etc', '/etc'],
    ['/etc/', '/etc/'],
    ['/etc/.', '/etc/.'],
    ['/a/../b', '/b'],
    ['/', '/'],
    ['.', '/.'],
  ];
  for (const [input, want] of cases) assert.equal(absoluteContainerPath(input), want, input);
  assert.equal(goBase('/etc/.'), '.');
  assert.equal(goBase('/etc/'), 'etc');
  assert.equal(goBase('/'), '/');
});

test('tar entry names that climb out are refused', () => {
  assert.equal(cleanEntryName('./a/b/'), 'a/b');
  assert.equal(cleanEntryName('/abs/x'), 'abs/x');
  assert.equal(cleanEntryName('.'), '');
  assert.throws(() => cleanEntryName('../x'), /outside of the extraction point/);
  assert.throws(() => cleanEntryName('a/../../x'), /outside of the extraction point/);
});

test('Go file modes and times match what the docker CLI decodes', () => {
  const fake = (mode: number, kind: string) => ({
    mode,
    isDirectory: () => kind === 'dir',
    isSymbolicLink: () => kind === 'link',
    isFIFO: () => false,
    isSocket: () => false,
    isCharacterDevice: () => false,
    isBlockDevice: () => false,
  });
  assert.equal(goFileMode(fake(0o40755, 'dir')), 2 ** 31 + 0o755);
  assert.equal(goFileMode(fake(0o120777, 'link')), 2 ** 27 + 0o777);
  assert.equal(goFileMode(fake(0o104755, 'file')), 2 ** 23 + 0o755);
  assert.equal(goTime(1_700_000_000_123_000_000n), '2023-11-14T22:13:20.123Z');
  assert.equal(goTime(1_700_000_000_000_000_000n), '2023-11-14T22:13:20Z');
});

async function tarEntries(stream: Readable): Promise<{ name: string; type: string; linkname?: string; body: string }[]> {
  const out: { name: string; type: string; linkname?: string; body: string }[] = [];
  const extract = tar.extract();
  stream.pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract) {
    const parts: Buffer[] = [];
    for await (const chunk of entry) parts.push(chunk as Buffer);
    out.push({ name: entry.header.name, type: entry.header.type, ...(entry.header.linkname ? { linkname: entry.header.linkname } : {}), body: Buffer.concat(parts).toString() });
  }
  return out;
}

test('packPath archives a tree under the requested name and keeps links as links', async () => {
  const { root } = await fixture();
  await symlink('../../etc/passwd', join(root, 'data/sub/rel'));
  const named = await tarEntries(packPath(join(root, 'data'), 'data'));
  assert.deepEqual(
    named.map((e) => [e.name, e.type]),
    [
      ['data/', 'directory'],
      ['data/sub/', 'directory'],
      ['data/sub/file', 'file'],
      ['data/sub/rel', 'symlink'],
    ],
  );
  assert.equal(named.find((e) => e.name === 'data/sub/file')?.body, 'inside');
  const contents = await tarEntries(packPath(join(root, 'data'), '.'));
  assert.deepEqual(contents.map((e) => e.name), ['./', './sub/', './sub/file', './sub/rel']);
  const link = await tarEntries(packPath(join(root, 'hostabs'), 'hostabs'));
  assert.equal(link[0]?.type, 'symlink');
});

function tarOf(entries: { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; body?: string; linkname?: string; uid?: number }[]): Readable {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', mode: 0o644, uid: e.uid ?? 0, gid: 0, ...(e.linkname ? { linkname: e.linkname } : {}) }, e.body ?? '');
  pack.finalize();
  return pack as unknown as Readable;
}

test('extraction writes through no link: entries land inside the root', async () => {
  const { root, outside } = await fixture();
  // /data/esc points at the host directory; writing "esc/secret" must not reach it.
  await symlink(outside, join(root, 'data/esc'));
  await extractInto(
    tarOf([
      { name: 'esc/secret', body: 'pwned' },
      { name: 'newdir/', type: 'directory' },
      { name: 'newdir/f', body: 'x' },
      { name: 'l', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'h', type: 'link', linkname: 'newdir/f' },
    ]),
    { root, destination: '/data', noOverwriteDirNonDir: false },
  );
  assert.equal(await readFile(join(outside, 'secret'), 'utf8'), 'host secret');
  // The link names a host path, which the container sees below its own root.
  assert.equal(await readFile(join(root, outside, 'secret'), 'utf8'), 'pwned');
  assert.equal(await readFile(join(root, 'data/newdir/f'), 'utf8'), 'x');
  assert.equal(await readlink(join(root, 'data/l')), '/etc/passwd');
  assert.equal((await lstat(join(root, 'data/h'))).nlink, 2);
});

test('extraction replaces an existing link instead of writing through it', async () => {
  const { root, outside } = await fixture();
  await extractInto(tarOf([{ name: 'hostabs', body: 'replaced' }]), { root, destination: '/', noOverwriteDirNonDir: false });
  assert.equal(await readFile(join(outside, 'secret'), 'utf8'), 'host secret');
  assert.equal(await readFile(join(root, 'hostabs'), 'utf8'), 'replaced');
});

test('noOverwriteDirNonDir refuses to swap a directory and a file; climbing names are refused', async () => {
  const { root } = await fixture();
  await assert.rejects(
    extractInto(tarOf([{ name: 'sub', body: 'file' }]), { root, destination: '/data', noOverwriteDirNonDir: true }),
    /cannot overwrite directory "\/data\/sub" with non-directory "sub"/,
  );
  await assert.rejects(
    extractInto(tarOf([{ name: 'sub/file/', type: 'directory' }]), { root, destination: '/data', noOverwriteDirNonDir: true }),
    /cannot overwrite non-directory/,
  );
  await assert.rejects(extractInto(tarOf([{ name: '../../escape', body: 'x' }]), { root, destination: '/data', noOverwriteDirNonDir: false }), /outside of the extraction point/);
});

test('an owner override replaces the tar header owner', async () => {
  const { root } = await fixture();
  await extractInto(tarOf([{ name: 'owned', body: 'x', uid: 4242 }]), { root, destination: '/data', noOverwriteDirNonDir: false, owner: { uid: 1000, gid: 1000 } });
  const st = await lstat(join(root, 'data/owned'));
  assert.equal(st.uid, 1000);
  await extractInto(tarOf([{ name: 'kept', body: 'x', uid: 4242 }]), { root, destination: '/data', noOverwriteDirNonDir: false });
  assert.equal((await lstat(join(root, 'data/kept'))).uid, 4242);
});
