import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { internal } from '../../common/errors.js';
import { toImageId, type IdRange } from '../userns/id-range.js';
import { capabilityForLayer } from '../userns/file-caps.js';
import { OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX } from './layer-unpack.js';

const run = promisify(execFile);

/**
 * A container's changes as an OCI layer: the overlayfs upper directory written as a tar.
 *
 * Terms (image-spec layer.md): a deleted path is a whiteout — overlayfs marks it with a 0/0
 * character device, the layer with an empty file `.wh.<name>`; a directory that hides
 * everything below it is opaque — overlayfs marks it with the `trusted.overlay.opaque` xattr,
 * the layer with an empty `.wh..wh..opq` inside it. Owners, modes, times, hard links and
 * xattrs (other than overlayfs' own `trusted.overlay.*`) are kept.
 *
 * `skip` leaves out paths the runtime created as mount points (/proc, /dev, /etc/hosts, ...):
 * dockerd keeps those in a separate init layer that is never part of an image.
 */
export interface LayerDiffOptions {
  /** Leave this path (and what is below it) out. */
  skip?: (path: string, isDirectory: boolean, size: number) => boolean;
  /**
   * Whether a directory that holds nothing kept is only a copy-up (it exists below with the
   * same owner and mode), so it can be left out too.
   */
  onlyCopiedUp?: (path: string, st: { mode: number; uid: number; gid: number }) => Promise<boolean>;
  /**
   * The ID range the upper dir's owners are stored in (a tenant's container): members carry
   * the ids the container saw, so a layer is the same whichever tenant made it.
   */
  idRange?: IdRange;
}

export interface LayerDiffResult {
  /** Members written (0: the container changed nothing, the layer is empty). */
  members: number;
}

interface Member {
  path: string;
  abs: string;
  st: Stats;
}

/** Writes the diff of `upperDir` to `tarPath` (uncompressed). */
export async function writeLayerDiff(upperDir: string, tarPath: string, options: LayerDiffOptions = {}): Promise<LayerDiffResult> {
  const xattrs = await readXattrs(upperDir);
  const members = await collect(upperDir, '', options, xattrs);
  const pack = tar.pack();
  const writing = pipeline(pack, createWriteStream(tarPath, { mode: 0o600 }));
  const linkTargets = new Map<string, string>();

  /** Adds a member; a regular file's body comes from `file` (none: empty). */
  const add = (header: Partial<tar.Header> & { name: string; pax?: Record<string, string> }, file?: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (file !== undefined) {
        createReadStream(file).on('error', reject).pipe(pack.entry(header, done));
      } else if (header.type === 'file') {
        // tar-stream waits for the body of a file entry, even an empty one.
        pack.entry(header, Buffer.alloc(0), done);
      } else {
        pack.entry(header, done);
      }
    });

  try {
    for (const { path, abs, st } of members) {
      const slash = path.lastIndexOf('/');
      const parent = slash === -1 ? '' : path.slice(0, slash + 1);
      const name = path.slice(slash + 1);
      const mtime = st.mtime;
      const base = { uid: toImageId(options.idRange, st.uid), gid: toImageId(options.idRange, st.gid), mtime, mode: st.mode & 0o7777 };
      const pax = paxXattrs(xattrs.get(abs), options.idRange);
      const withPax = pax ? { pax } : {};
      if (st.isCharacterDevice() && st.rdev === 0) {
        await add({ name: `${parent}${WHITEOUT_PREFIX}${name}`, type: 'file', size: 0, mode: 0, uid: 0, gid: 0, mtime });
      } else if (st.isDirectory()) {
        await add({ ...base, ...withPax, name: `${path}/`, type: 'directory' });
        if (xattrs.get(abs)?.get(OVERLAY_OPAQUE_XATTR) === 'y') {
          await add({ name: `${path}/${OPAQUE_MARKER}`, type: 'file', size: 0, mode: 0, uid: 0, gid: 0, mtime });
        }
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? linkTargets.get(key) : undefined;
        if (first !== undefined) {
          await add({ ...base, name: path, type: 'link', linkname: first });
        } else {
          if (st.nlink > 1) linkTargets.set(key, path);
          // An empty file has no body to stream (tar-stream ends its entry at once).
          await add({ ...base, ...withPax, name: path, type: 'file', size: st.size }, st.size > 0 ? abs : undefined);
        }
      } else if (st.isSymbolicLink()) {
        await add({ ...base, ...withPax, name: path, type: 'symlink', linkname: await readlink(abs) });
      } else if (st.isFIFO()) {
        await add({ ...base, name: path, type: 'fifo' });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const devmajor = Math.floor(st.rdev / 256) & 0xfff;
        const devminor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
        await add({ ...base, name: path, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor, devminor });
      }
    }
    pack.finalize();
    await writing;
  } catch (err) {
    pack.destroy(err as Error);
    await writing.catch(() => undefined);
    throw internal('writing the layer diff failed', err);
  }
  return { members: members.length };
}

/** The upper dir's members in tar order (a directory before what it holds), sockets left out. */
async function collect(upperDir: string, rel: string, options: LayerDiffOptions, xattrs: Map<string, Map<string, string>>): Promise<Member[]> {
  const out: Member[] = [];
  for (const name of (await readdir(join(upperDir, rel))).sort()) {
    const path = rel === '' ? name : `${rel}/${name}`;
    const abs = join(upperDir, path);
    const st = await lstat(abs);
    if (st.isSocket()) continue; // not part of a layer, as in Docker
    if (options.skip?.(path, st.isDirectory(), st.size)) continue;
    if (!st.isDirectory()) {
      out.push({ path, abs, st });
      continue;
    }
    const below = await collect(upperDir, path, options, xattrs);
    const opaque = xattrs.get(abs)?.get(OVERLAY_OPAQUE_XATTR) === 'y';
    const seen = { mode: st.mode, uid: toImageId(options.idRange, st.uid), gid: toImageId(options.idRange, st.gid) };
    if (below.length === 0 && !opaque && options.onlyCopiedUp !== undefined && (await options.onlyCopiedUp(path, seen))) continue;
    out.push({ path, abs, st }, ...below);
  }
  return out;
}

/** Extended attributes below `dir`, by absolute path (one getfattr run for the whole tree). */
async function readXattrs(dir: string): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>();
  let stdout: string;
  try {
    ({ stdout } = await run('getfattr', ['-R', '-P', '-d', '-m', '-', '-e', 'hex', '--absolute-names', dir], { maxBuffer: 256 * 1024 * 1024 }));
  } catch (err) {
    // getfattr exits non-zero when some file has no readable attributes; keep what it printed.
    stdout = (err as { stdout?: string }).stdout ?? '';
  }
  let current: Map<string, string> | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = new Map();
      out.set(unescapeGetfattr(line.slice('# file: '.length)), current);
      continue;
    }
    const eq = line.indexOf('=');
    if (current === undefined || eq <= 0) continue;
    const name = line.slice(0, eq);
    const raw = line.slice(eq + 1);
    const value = raw.startsWith('0x') ? Buffer.from(raw.slice(2), 'hex').toString('latin1') : raw.replace(/^"|"$/g, '');
    current.set(name, value);
  }
  return out;
}

/** getfattr escapes unusual bytes in names as backslash and three octal digits. */
function unescapeGetfattr(name: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < name.length; i++) {
    if (name[i] === '\\' && /^[0-7]{3}$/.test(name.slice(i + 1, i + 4))) {
      bytes.push(parseInt(name.slice(i + 1, i + 4), 8));
      i += 3;
    } else {
      bytes.push(...Buffer.from(name[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** PAX records for the attributes a layer carries (overlayfs' own are left out). */
function paxXattrs(attrs: Map<string, string> | undefined, idRange: IdRange | undefined): Record<string, string> | undefined {
  if (attrs === undefined) return undefined;
  const pax: Record<string, string> = {};
  for (const [name, value] of attrs) {
    if (name.startsWith('trusted.overlay.')) continue;
    pax[`SCHILY.xattr.${name}`] = name === 'security.capability' ? capabilityForLayer(value, idRange) : value;
  }
  return Object.keys(pax).length > 0 ? pax : undefined;
}

/** The digest of a (layer) file: its diff id when the file is an uncompressed layer tar. */
export async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}
