import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, type BigIntStats } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { BerthError, errnoCode, invalidArgument } from '../../common/errors.js';
import { toHostId, toImageId, type IdRange } from '../../agent/userns/id-range.js';
import { cleanEntryName, resolveInContainer, type FileMount } from './archive-paths.js';

const run = promisify(execFile);

/**
 * Tar in and out of a container's filesystem for `docker cp`, plus Docker's path stat.
 *
 * Out: `packPath` archives one host path (file, link or directory tree) with entry names
 * rebased onto the name the user asked for, never following symlinks below the top.
 * In: `extractInto` unpacks a tar below a directory of the container; every entry's parent is
 * resolved in the container's scope (see archive-paths.ts), the entry itself is never followed
 * (an existing link is replaced, not written through), so nothing lands outside the root.
 */

/** Go's os.FileMode type bits, which Docker's ContainerPathStat.mode carries. */
const GO_MODE = {
  dir: 2 ** 31,
  symlink: 2 ** 27,
  device: 2 ** 26,
  namedPipe: 2 ** 25,
  socket: 2 ** 24,
  setuid: 2 ** 23,
  setgid: 2 ** 22,
  charDevice: 2 ** 21,
  sticky: 2 ** 20,
} as const;

/** The JSON Docker sends base64-encoded in X-Docker-Container-Path-Stat. */
export interface ContainerPathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

export function goFileMode(st: { mode: number | bigint; isDirectory(): boolean; isSymbolicLink(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): number {
  const mode = Number(st.mode);
  let out = mode & 0o777;
  if (st.isDirectory()) out += GO_MODE.dir;
  else if (st.isSymbolicLink()) out += GO_MODE.symlink;
  else if (st.isFIFO()) out += GO_MODE.namedPipe;
  else if (st.isSocket()) out += GO_MODE.socket;
  else if (st.isCharacterDevice()) out += GO_MODE.device + GO_MODE.charDevice;
  else if (st.isBlockDevice()) out += GO_MODE.device;
  if (mode & 0o4000) out += GO_MODE.setuid;
  if (mode & 0o2000) out += GO_MODE.setgid;
  if (mode & 0o1000) out += GO_MODE.sticky;
  return out;
}

/** Go's time.Time JSON form (RFC 3339, fraction without trailing zeros), in UTC. */
export function goTime(ns: bigint): string {
  const seconds = ns / 1_000_000_000n;
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  const iso = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  return `${iso}${frac ? `.${frac}` : ''}Z`;
}

export function pathStatOf(name: string, st: BigIntStats, linkTarget: string): ContainerPathStat {
  return { name, size: Number(st.size), mode: goFileMode(st), mtime: goTime(st.mtimeNs), linkTarget };
}

/**
 * Archives `hostPath` as a tar stream. The top entry is named `topName` and the others
 * `topName/<relative path>` ("." gives "./a", "/" gives "/a", as dockerd names them). Nothing is
 * followed: the caller resolves the top path first when it wants a link's target archived.
 */
export function packPath(hostPath: string, topName: string, idRange?: IdRange): Readable {
  const pack = tar.pack();
  const hardLinks = new Map<string, string>();
  // Docker's names: "<top>/<rel>"; for "." (contents of a directory) "./<rel>", which the CLI
  // rebases onto the destination name; for "/" absolute names.
  const nameFor = (rel: string): string => {
    if (topName === '/') return `/${rel}`;
    return rel === '' ? topName : `${topName}/${rel}`;
  };

  const add = async (full: string, rel: string): Promise<void> => {
    const st = await lstat(full, { bigint: true });
    const name = nameFor(rel);
    const common = {
      mode: Number(st.mode) & 0o7777,
      // A tenant's files are stored with host ids; the archive has the container's.
      uid: toImageId(idRange, Number(st.uid)),
      gid: toImageId(idRange, Number(st.gid)),
      mtime: new Date(Number(st.mtimeMs)),
    };
    if (st.isDirectory()) {
      await entry(pack, { ...common, name: name.endsWith('/') ? name : `${name}/`, type: 'directory' });
      const children = (await readdir(full)).sort();
      for (const child of children) await add(path.join(full, child), rel === '' ? child : `${rel}/${child}`);
      return;
    }
    if (st.isSymbolicLink()) {
      await entry(pack, { ...common, name, type: 'symlink', linkname: await readlink(full) });
      return;
    }
    if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1n ? hardLinks.get(key) : undefined;
      if (first !== undefined) {
        await entry(pack, { ...common, name, type: 'link', linkname: first });
        return;
      }
      if (st.nlink > 1n) hardLinks.set(key, name);
      const size = Number(st.size);
      const sink = pack.entry({ ...common, name, type: 'file', size });
      if (size === 0) {
        await new Promise<void>((resolve, reject) => {
          sink.on('finish', () => resolve());
          sink.on('error', reject);
          sink.end(Buffer.alloc(0));
        });
        return;
      }
      // A running container may grow the file meanwhile: send exactly the size in the header.
      await pipeline(createReadStream(full, { start: 0, end: size - 1 }), sink);
      return;
    }
    if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
      // Linux dev_t: major in bits 8-19 and 32+, minor in bits 0-7 and 20+.
      const rdev = st.rdev;
      await entry(pack, {
        ...common,
        name,
        type: st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'character-device' : 'block-device',
        devmajor: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
        devminor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
      });
    }
    // Sockets are skipped, as Docker's archiver does.
  };

  add(hostPath, '').then(
    () => pack.finalize(),
    (err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))),
  );
  // tar-stream's streams are streamx streams, which Node's pipe/pipeline accept as Readables.
  return pack as unknown as Readable;
}

function entry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, (err) => (err ? reject(err) : resolve()));
  });
}


export interface ExtractOptions {
  /** Host directory of the container's root filesystem. */
  root: string;
  /** Container path of the (existing, resolved) directory to extract into. */
  destination: string;
  noOverwriteDirNonDir: boolean;
  /** Owner for every entry (copyUIDGID); otherwise each entry keeps the tar header's. */
  owner?: { uid: number; gid: number };
  mounts?: FileMount[];
  /** A tenant's container: owners are stored shifted into its range. */
  idRange?: IdRange;
}

/** Unpacks `input` below `options.destination`. Resolves when every entry is written. */
export async function extractInto(input: Readable, options: ExtractOptions): Promise<void> {
  const extract = tar.extract();
  const dirTimes: { hostPath: string; mtime: Date }[] = [];
  const consume = (async () => {
    for await (const source of extract) {
      const item = source as unknown as Readable & { header: tar.Header };
      try {
        await extractEntry(item, options, dirTimes);
      } finally {
        item.resume();
      }
    }
  })();
  // The stream is the client's: a malformed archive is bad input, not a Berth failure. The
  // parser's error reaches both the pipeline and the entry loop; whichever comes first counts.
  let malformed: unknown;
  extract.once('error', (err: unknown) => {
    malformed = err;
  });
  try {
    await Promise.all([pipeline(input, extract), consume]);
  } catch (err) {
    if (err instanceof BerthError) throw err;
    if (malformed !== undefined) throw invalidArgument(`invalid tar archive: ${(malformed as Error).message}`, malformed);
    throw err;
  }
  // Directory times last: creating their children changed them.
  for (const { hostPath, mtime } of dirTimes.reverse()) await utimes(hostPath, mtime, mtime).catch(() => undefined);
}

async function extractEntry(item: Readable & { header: tar.Header }, options: ExtractOptions, dirTimes: { hostPath: string; mtime: Date }[]): Promise<void> {
  const header = item.header;
  const rel = cleanEntryName(header.name);
  const type = header.type ?? 'file';
  const containerPath = path.posix.join(options.destination, rel);
  if (rel === '') return; // "." is the destination itself, which exists
  const parentContainer = path.posix.dirname(containerPath);
  const parent = await resolveInContainer(options.root, parentContainer, { followLast: true, mounts: options.mounts });
  await mkdir(parent.hostPath, { recursive: true, mode: 0o755 });
  const base = path.posix.basename(containerPath);
  const finalContainer = path.posix.join(parent.containerPath, base);
  const mount = options.mounts?.find((m) => m.destination === finalContainer);
  const target = mount ? mount.source : path.join(parent.hostPath, base);
  if (!mount) assertInside(options.root, target);

  const existing = await lstat(target).catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  });
  const isDirEntry = type === 'directory';
  if (existing) {
    if (options.noOverwriteDirNonDir && existing.isDirectory() && !isDirEntry) {
      throw invalidArgument(`cannot overwrite directory "${finalContainer}" with non-directory "${header.name}"`);
    }
    if (options.noOverwriteDirNonDir && !existing.isDirectory() && isDirEntry) {
      throw invalidArgument(`cannot overwrite non-directory "${finalContainer}" with directory "${header.name}"`);
    }
    // A file mount is written in place: replacing it would cut it off from the container.
    if (!(existing.isDirectory() && isDirEntry) && !(mount && type === 'file')) await rm(target, { recursive: true, force: true });
  }

  const mode = (header.mode ?? 0o644) & 0o7777;
  const uid = toHostId(options.idRange, options.owner?.uid ?? header.uid ?? 0);
  const gid = toHostId(options.idRange, options.owner?.gid ?? header.gid ?? 0);
  const mtime = header.mtime ?? new Date();
  switch (type) {
    case 'directory':
      if (!existing?.isDirectory()) await mkdir(target, { mode: 0o700 });
      dirTimes.push({ hostPath: target, mtime });
      break;
    case 'file':
    case 'contiguous-file': {
      // "wx" never follows a link: whatever was there has been removed above.
      const flags = mount ? 'w' : 'wx';
      await pipeline(item, createWriteStream(target, { flags, mode: 0o600 }));
      break;
    }
    case 'symlink':
      await symlink(header.linkname ?? '', target);
      break;
    case 'link': {
      const linkRel = cleanEntryName(header.linkname ?? '');
      const source = await resolveInContainer(options.root, path.posix.join(options.destination, linkRel), { followLast: false });
      assertInside(options.root, source.hostPath);
      await link(source.hostPath, target);
      break;
    }
    case 'fifo':
      await run('mkfifo', [target]);
      break;
    case 'character-device':
    case 'block-device':
      await run('mknod', [target, type === 'character-device' ? 'c' : 'b', String(header.devmajor ?? 0), String(header.devminor ?? 0)]);
      break;
    default:
      return; // GNU long-name records are folded in by tar-stream; anything else is skipped, as tar does
  }
  await lchown(target, uid, gid);
  if (type !== 'symlink') {
    await chmod(target, mode);
    if (type !== 'directory' && type !== 'link') await utimes(target, mtime, mtime);
  } else {
    await lutimes(target, mtime, mtime).catch(() => undefined);
  }
}

function assertInside(root: string, hostPath: string): void {
  const rel = path.relative(root, hostPath);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw invalidArgument(`invalid archive entry: ${hostPath} is outside of the container`);
  }
}
