/**
 * Test images built on this machine, without a registry or the internet.
 *
 * Each function returns the path of a `docker save`-style archive (legacy manifest.json and
 * OCI index.json in one tar, as Docker 25+ writes) that `docker load` accepts on Berth and on
 * a real dockerd. Archives are cached under <repo>/.cache/images/ (gitignored), keyed by what
 * they are built from, so a machine builds each once. Builds are deterministic (fixed times,
 * sorted entries, numeric owners): the image id is the same on every run and every machine
 * with the same Debian packages.
 *
 * - busyboxImageTar(): `berth-test/busybox:latest`, one layer: /bin/busybox from Debian's
 *   busybox-static with a symlink per applet, a minimal /etc/passwd and /etc/group, /tmp 1777.
 * - debianImageTar(): `berth-test/debian:bookworm`, one layer: an mmdebstrap minbase rootfs.
 * - seededVolumeImageTar(): `berth-test/seeded:latest`, busybox plus /data (owner 1000:1000,
 *   mode 0770, a file `seed` and a directory `sub` owned 1001) declared as `VOLUME /data`, and a
 *   HEALTHCHECK (`test -f /tmp/healthy` every 500 ms, 2 retries).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { writeImageArchive } from '../../src/agent/images/archive-writer.js';
import { sha256Digest } from '../../src/agent/images/digest.js';

const run = promisify(execFile);

export const BUSYBOX_IMAGE = 'berth-test/busybox:latest';
export const DEBIAN_IMAGE = 'berth-test/debian:bookworm';

/** Bumped whenever the recipe changes, so stale cache entries are not reused. */
const RECIPE_VERSION = '1';
const CREATED = '2024-01-01T00:00:00Z';
const MTIME = new Date(CREATED);
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DEBIAN_MIRROR = 'http://deb.debian.org/debian';

/** <repo>/.cache/images, or $BERTH_TEST_IMAGE_CACHE. */
export function imageCacheDir(): string {
  // Compiled to dist/test/support/, three levels below the repository.
  return process.env.BERTH_TEST_IMAGE_CACHE ?? fileURLToPath(new URL('../../../.cache/images/', import.meta.url));
}

const building = new Map<string, Promise<string>>();

/** Runs `build` once per cache key per process, and once per machine thanks to the file cache. */
async function cached(fileName: string, build: (tmpPath: string) => Promise<void>): Promise<string> {
  const dir = imageCacheDir();
  const path = join(dir, fileName);
  let pending = building.get(path);
  if (pending === undefined) {
    pending = (async () => {
      try {
        await stat(path);
        return path;
      } catch {
        // Not built yet.
      }
      await mkdir(dir, { recursive: true });
      // A private temp name plus rename: concurrent test processes never see a half-written file.
      const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
      try {
        await build(tmp);
        await rename(tmp, path);
      } catch (err) {
        await rm(tmp, { force: true, recursive: true });
        throw err;
      }
      return path;
    })();
    building.set(path, pending);
    pending.catch(() => building.delete(path));
  }
  return pending;
}

/** The image config JSON exactly as written; its digest is the image id. */
function imageConfig(diffId: string, config: Record<string, unknown>, createdBy: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      config,
      created: CREATED,
      history: [{ created: CREATED, created_by: createdBy }],
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [diffId] },
    }),
  );
}

async function writeSingleLayerArchive(out: string, layer: Buffer, configBytes: Buffer, tag: string): Promise<void> {
  await writeImageArchive(
    [
      {
        configBytes,
        repoTags: [tag],
        layers: [{ diffId: sha256Digest(layer), size: layer.length, open: async () => Readable.from([layer]) }],
      },
    ],
    createWriteStream(out),
  );
}

interface Entry {
  name: string;
  type?: tar.Header['type'];
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  pax?: Record<string, string>;
  data?: Buffer;
}

async function packEntries(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const { data, ...fields } of entries) {
    const header: Partial<tar.Header> & { name: string } = { uid: 0, gid: 0, ...fields, mtime: MTIME };
    await new Promise<void>((resolve, reject) => {
      const callback = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (data === undefined) pack.entry(header, callback);
      else pack.entry(header, data, callback);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

async function busyboxLayer(busybox: Buffer, applets: string[], extra: Entry[] = []): Promise<Buffer> {
  const file = (name: string, text: string, mode = 0o644): Entry => ({ name, mode, data: Buffer.from(text) });
  const dir = (name: string, mode = 0o755): Entry => ({ name, type: 'directory', mode });
  const links = [...new Set(applets)]
    .filter((a) => a !== 'busybox' && /^[a-z0-9_.[-]+$/.test(a))
    .sort()
    .map((a): Entry => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox', mode: 0o777 }));
  return packEntries([
    dir('bin/'),
    { name: 'bin/busybox', mode: 0o755, data: busybox },
    ...links,
    dir('dev/'),
    dir('etc/'),
    file('etc/group', 'root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n'),
    file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n'),
    dir('home/'),
    dir('proc/'),
    dir('root/', 0o700),
    dir('sys/'),
    dir('tmp/', 0o1777),
    dir('usr/'),
    dir('usr/bin/'),
    dir('var/'),
    ...extra,
  ]);
}

/** The path of a cached archive holding `berth-test/busybox:latest` (see the module comment). */
export async function busyboxImageTar(): Promise<string> {
  const busybox = await readFile('/bin/busybox');
  const key = createHash('sha256').update(RECIPE_VERSION).update(busybox).digest('hex').slice(0, 16);
  return cached(`busybox-${key}.tar`, async (tmp) => {
    const { stdout } = await run('/bin/busybox', ['--list']);
    const layer = await busyboxLayer(busybox, stdout.split('\n').filter((l) => l !== ''));
    const config = imageConfig(sha256Digest(layer), { Env: [PATH_ENV], Cmd: ['sh'] }, 'berth test image: busybox-static');
    await writeSingleLayerArchive(tmp, layer, config, BUSYBOX_IMAGE);
  });
}

/**
 * Rewrites mmdebstrap's rootfs tar ("./bin", device nodes in ./dev) into a layer as Docker
 * writes them: names without "./", no device nodes (the runtime mounts /dev), fixed times.
 */
async function rootfsToLayer(rootfsTar: string): Promise<Buffer> {
  const extract = tar.extract();
  const entries: Entry[] = [];
  const reading = pipeline(createReadStream(rootfsTar), extract);
  for await (const entry of extract) {
    const header = entry.header;
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    const name = header.name.replace(/^\.\//, '');
    if (name === '' || name === '.' || (name.startsWith('dev/') && name !== 'dev/')) continue;
    const linkname = header.type === 'link' ? header.linkname?.replace(/^\.\//, '') : header.linkname;
    entries.push({
      name,
      type: header.type,
      mode: header.mode,
      uid: header.uid,
      gid: header.gid,
      linkname,
      ...(header.type === 'file' || header.type === 'contiguous-file' ? { data: Buffer.concat(chunks) } : {}),
      ...(header.pax && Object.keys(header.pax).some((k) => k.startsWith('SCHILY.xattr.'))
        ? { pax: Object.fromEntries(Object.entries(header.pax).filter(([k]) => k.startsWith('SCHILY.xattr.'))) }
        : {}),
    });
  }
  await reading;
  return packEntries(entries);
}

/** The path of a cached archive holding `berth-test/debian:bookworm` (mmdebstrap minbase). */
export async function debianImageTar(): Promise<string> {
  const key = createHash('sha256').update(`${RECIPE_VERSION} bookworm minbase ${DEBIAN_MIRROR}`).digest('hex').slice(0, 16);
  return cached(`debian-bookworm-${key}.tar`, async (tmp) => {
    const rootfs = `${tmp}.rootfs.tar`;
    try {
      await run(
        'mmdebstrap',
        ['--quiet', '--variant=minbase', '--format=tar', 'bookworm', rootfs, DEBIAN_MIRROR],
        { env: { ...process.env, SOURCE_DATE_EPOCH: String(MTIME.getTime() / 1000) }, maxBuffer: 64 * 1024 * 1024 },
      );
      const layer = await rootfsToLayer(rootfs);
      const config = imageConfig(sha256Digest(layer), { Env: [PATH_ENV], Cmd: ['bash'] }, 'berth test image: mmdebstrap --variant=minbase bookworm');
      await writeSingleLayerArchive(tmp, layer, config, DEBIAN_IMAGE);
    } finally {
      await rm(rootfs, { force: true });
    }
  });
}

export const SEEDED_IMAGE = 'berth-test/seeded:latest';

/** The path of a cached archive holding `berth-test/seeded:latest` (see the module comment). */
export async function seededVolumeImageTar(): Promise<string> {
  const busybox = await readFile('/bin/busybox');
  const key = createHash('sha256').update(RECIPE_VERSION).update('seeded-1').update(busybox).digest('hex').slice(0, 16);
  return cached(`seeded-${key}.tar`, async (tmp) => {
    const { stdout } = await run('/bin/busybox', ['--list']);
    const layer = await busyboxLayer(busybox, stdout.split('\n').filter((l) => l !== ''), [
      { name: 'data/', type: 'directory', mode: 0o770, uid: 1000, gid: 1000 },
      { name: 'data/seed', mode: 0o640, uid: 1000, gid: 1000, data: Buffer.from('seeded by the image\n') },
      { name: 'data/sub/', type: 'directory', mode: 0o750, uid: 1001, gid: 1001 },
    ]);
    const config = imageConfig(
      sha256Digest(layer),
      {
        Env: [PATH_ENV],
        Cmd: ['sh'],
        Volumes: { '/data': {} },
        Healthcheck: { Test: ['CMD-SHELL', 'test -f /tmp/healthy'], Interval: 500_000_000, Retries: 2 },
      },
      'berth test image: busybox with a seeded VOLUME and a HEALTHCHECK',
    );
    await writeSingleLayerArchive(tmp, layer, config, SEEDED_IMAGE);
  });
}
