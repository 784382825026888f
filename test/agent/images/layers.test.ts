import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, lstat, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { ContentStore } from '../../../src/agent/images/content-store.js';
import { chainIds, sha256Digest } from '../../../src/agent/images/digest.js';
import { LayerStore } from '../../../src/agent/images/layer-store.js';
import { AutoDecompress, cleanMemberName } from '../../../src/agent/images/layer-unpack.js';
import { OverlayRootfs, relativeToCommonDir } from '../../../src/agent/images/overlay-rootfs.js';
import { isKind } from '../../../src/common/errors.js';

const run = promisify(execFile);

type Spec = { name: string; type?: 'file' | 'directory' | 'symlink'; data?: string; linkname?: string; mode?: number };

async function makeTar(entries: Spec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const header = { name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644), mtime: new Date(0) };
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (e.data !== undefined) pack.entry(header, e.data, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('digests: chain ids follow the OCI definition', () => {
  const a = sha256Digest('a');
  const b = sha256Digest('b');
  assert.deepEqual(chainIds([a, b]), [a, sha256Digest(`${a} ${b}`)]);
  assert.deepEqual(chainIds([]), []);
});

test('member names: cleaned, and escapes refused', () => {
  const cases = [
    { name: 'plain', input: 'bin/sh', want: 'bin/sh' },
    { name: 'dot slash', input: './etc/passwd', want: 'etc/passwd' },
    { name: 'absolute', input: '/usr/bin/', want: 'usr/bin' },
    { name: 'inner dotdot', input: 'a/../b', want: 'b' },
    { name: 'root', input: './', want: '' },
    { name: 'escape clamped to the root', input: '../../etc/passwd', want: 'etc/passwd' },
  ];
  for (const c of cases) assert.equal(cleanMemberName(c.input), c.want, c.name);
});

test('AutoDecompress passes plain data and gunzips gzip, refuses zstd', async () => {
  const data = Buffer.from('x'.repeat(100_000));
  assert.deepEqual(await collect(Readable.from([data]).pipe(new AutoDecompress())), data);
  const gz = gzipSync(data);
  // Split the gzip magic across chunks to exercise the sniffing.
  assert.deepEqual(await collect(Readable.from([gz.subarray(0, 1), gz.subarray(1, 3), gz.subarray(3)]).pipe(new AutoDecompress())), data);
  assert.deepEqual(await collect(Readable.from([Buffer.from('ab')]).pipe(new AutoDecompress())), Buffer.from('ab'));
  const zstd = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]);
  await assert.rejects(collect(Readable.from([zstd]).pipe(new AutoDecompress())), /zstd/);
});

test('content store verifies digests at commit and leaves nothing on mismatch', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-content-'));
  try {
    const store = new ContentStore(root);
    const { digest, size } = await store.ingest(Readable.from([Buffer.from('hello')]));
    assert.equal(digest, sha256Digest('hello'));
    assert.equal(size, 5);
    assert.equal((await store.read(digest)).toString(), 'hello');
    await assert.rejects(store.ingest(Readable.from([Buffer.from('other')]), sha256Digest('nope')), (e) => isKind(e, 'InvalidArgument'));
    assert.deepEqual(await readdir(join(root, 'ingest')), []);
    assert.equal(await store.has(sha256Digest('other')), false);
    await store.delete(digest);
    assert.equal(await store.has(digest), false);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('layers: whiteouts become overlay whiteouts and the overlay rootfs shows the merged view', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-layers-'));
  const rootfs = new OverlayRootfs({ dataRoot: root, layersFor: async () => lowerPaths });
  let lowerPaths: string[] = [];
  const containerId = 'c'.repeat(64);
  try {
    const content = new ContentStore(join(root, 'content'));
    const layers = new LayerStore(join(root, 'layers'), content);
    const bottom = await makeTar([
      { name: 'a/', type: 'directory' },
      { name: 'a/gone', data: 'bye' },
      { name: 'a/kept', data: 'kept' },
      { name: 'd/', type: 'directory' },
      { name: 'd/hidden', data: 'hidden' },
      { name: 'link', type: 'symlink', linkname: 'a/kept' },
    ]);
    const top = await makeTar([
      { name: 'a/', type: 'directory' },
      { name: 'a/.wh.gone', data: '' },
      { name: 'd/', type: 'directory' },
      { name: 'd/.wh..wh..opq', data: '' },
      { name: 'd/new', data: 'new' },
    ]);
    const diffIds: string[] = [];
    for (const layer of [bottom, gzipSync(top)]) {
      const { digest } = await content.ingest(Readable.from([layer]).pipe(new AutoDecompress()));
      diffIds.push(digest);
    }
    assert.equal(diffIds[1], sha256Digest(top), 'the diff id is the digest of the uncompressed tar');
    const chains = chainIds(diffIds);
    for (let i = 0; i < chains.length; i++) await layers.commit(chains[i]!, diffIds[i]!);
    await layers.commit(chains[0]!, diffIds[0]!); // idempotent

    const topDiff = layers.diffDir(chains[1]!);
    const whiteout = await lstat(join(topDiff, 'a/gone'));
    assert.ok(whiteout.isCharacterDevice() && whiteout.rdev === 0, 'a 0/0 character device');
    await assert.rejects(lstat(join(topDiff, 'a/.wh.gone')));
    const { stdout } = await run('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', join(topDiff, 'd')]);
    assert.equal(stdout, 'y');
    assert.equal((await layers.scan(diffIds[0]!)).size, 'bye'.length + 'kept'.length + 'hidden'.length);

    lowerPaths = chains.map((c) => join(layers.root, layers.shortName(c))).reverse();
    const merged = await rootfs.prepare(containerId, 'sha256:' + 'f'.repeat(64));
    assert.deepEqual((await readdir(join(merged, 'a'))).sort(), ['kept']);
    assert.deepEqual(await readdir(join(merged, 'd')), ['new']);
    assert.equal(await readFile(join(merged, 'link'), 'utf8'), 'kept');
    assert.equal(await rootfs.mount(containerId), merged, 'mount is idempotent');

    await writeFile(join(merged, 'a/kept'), 'changed!');
    await mkdir(join(merged, 'added'));
    await writeFile(join(merged, 'added/file'), '12345');
    await rm(join(merged, 'd/new'));
    assert.deepEqual(await rootfs.changes(containerId), [
      { Path: '/a', Kind: 0 },
      { Path: '/a/kept', Kind: 0 },
      { Path: '/added', Kind: 1 },
      { Path: '/added/file', Kind: 1 },
      { Path: '/d', Kind: 0 },
      { Path: '/d/new', Kind: 2 },
    ]);
    assert.equal(await rootfs.sizeRw(containerId), 'changed!'.length + 5);

    const exported = await collect(await rootfs.exportTar(containerId));
    const names: string[] = [];
    const extract = tar.extract();
    const reading = (async () => {
      for await (const entry of extract) {
        names.push(entry.header.name);
        entry.resume();
      }
    })();
    Readable.from([exported]).pipe(extract);
    await reading;
    assert.ok(names.includes('a/kept') && names.includes('added/file') && !names.includes('a/gone') && !names.includes('d/hidden'), names.join(','));

    await rootfs.unmount(containerId);
    assert.deepEqual(await readdir(merged), []);
    await rootfs.remove(containerId);
    await rootfs.remove(containerId);
    await assert.rejects(lstat(join(root, 'containers', containerId, 'upper')));

    await layers.remove(chains[1]!);
    assert.equal(await layers.has(chains[1]!), false);
    assert.equal(await layers.has(chains[0]!), true);
  } finally {
    await rootfs.remove(containerId).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
});

test('a layer whose member escapes through a symlink is refused and leaves no layer', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-layers-'));
  const victim = await mkdtemp(join(tmpdir(), 'berth-victim-'));
  try {
    const content = new ContentStore(join(root, 'content'));
    const layers = new LayerStore(join(root, 'layers'), content);
    const evil = await makeTar([
      { name: 'x', type: 'symlink', linkname: victim },
      { name: 'x/pwned', data: 'pwned' },
    ]);
    const { digest } = await content.ingest(Readable.from([evil]));
    await assert.rejects(layers.commit(digest, digest), (e) => isKind(e, 'InvalidArgument'));
    assert.deepEqual(await readdir(victim), []);
    assert.equal(await layers.has(digest), false);
    assert.deepEqual((await readdir(join(root, 'layers'))).filter((n) => n.startsWith('tmp-')), []);
  } finally {
    await rm(root, { recursive: true, force: true });
    await rm(victim, { recursive: true, force: true });
  }
});

test('many lower dirs in one directory mount with short relative names', () => {
  const paths = Array.from({ length: 120 }, (_, i) => `/var/lib/berth/images/layers/l/${String(i).padStart(20, '0')}`);
  const { cwd, names } = relativeToCommonDir(paths);
  assert.equal(cwd, '/var/lib/berth/images/layers/l');
  assert.ok(names.join(':').length < 4096 - 300);
  assert.deepEqual(relativeToCommonDir(['/a/x', '/b/y']), { cwd: '/', names: ['/a/x', '/b/y'] });
});
