import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir } from 'node:fs/promises';
import { posix } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { errnoCode, invalidArgument } from '../../common/errors.js';
import { AutoDecompress } from '../../agent/images/layer-unpack.js';
import { resolveUser } from '../../agent/runtime/user.js';
import { resolveInContainer } from '../containers/archive-paths.js';
import { extractInto, packPath } from '../containers/archive-tar.js';

/**
 * COPY and ADD as the classic builder does them, into a mounted root filesystem.
 *
 * Sources are paths (or Go-style globs) below a source root — the build context or, with
 * `--from`, another stage's or image's filesystem — resolved there without ever leaving it
 * (symlinks are followed as inside that root). Destinations are resolved inside the target
 * root the same way, so a symlink in an image cannot point a copy at the host. A directory
 * source copies its contents; several sources need a destination ending in "/"; files get
 * root (or --chown) as owner and keep their mode and times. ADD also unpacks local tar
 * archives (plain, gzip, bzip2, xz) into the destination directory.
 */
export interface SourceFile {
  /** The path as the user wrote it (for messages). */
  given: string;
  hostPath: string;
  isDirectory: boolean;
}

const GLOB = /[*?[]/;

export async function resolveSources(root: string, patterns: readonly string[], instruction: 'COPY' | 'ADD', fromContext: boolean): Promise<SourceFile[]> {
  const out: SourceFile[] = [];
  for (const pattern of patterns) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(pattern)) {
      if (instruction === 'ADD') {
        throw invalidArgument(`ADD from a URL is not supported: Berth builds have no network access; download ${pattern} into the build context and COPY it`);
      }
      throw invalidArgument(`COPY failed: source can't be a URL for COPY`);
    }
    const clean = posix.normalize(`/${pattern}`);
    if (GLOB.test(clean)) {
      const matches = await glob(root, clean);
      for (const match of matches) out.push(await sourceAt(root, match, pattern));
      continue;
    }
    try {
      out.push(await sourceAt(root, clean, pattern));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err;
      const shown = clean.slice(1);
      throw invalidArgument(
        fromContext
          ? `${instruction} failed: file not found in build context or excluded by .dockerignore: stat ${shown}: file does not exist`
          : `${instruction} failed: stat ${shown}: file does not exist`,
      );
    }
  }
  if (out.length === 0) throw invalidArgument(`${instruction} failed: no source files were specified`);
  return out;
}

async function sourceAt(root: string, path: string, given: string): Promise<SourceFile> {
  const { hostPath } = await resolveInContainer(root, path, { followLast: true });
  const st = await lstat(hostPath);
  return { given, hostPath, isDirectory: st.isDirectory() };
}

/** Paths below `root` matching an absolute Go filepath.Match pattern, in lexical order. */
async function glob(root: string, pattern: string): Promise<string[]> {
  const parts = pattern.split('/').filter((p) => p !== '');
  let candidates = ['/'];
  for (const part of parts) {
    const next: string[] = [];
    for (const dir of candidates) {
      if (!GLOB.test(part)) {
        next.push(posix.join(dir, part));
        continue;
      }
      const re = segmentRegex(part);
      const { hostPath } = await resolveInContainer(root, dir, { followLast: true });
      const names = await readdir(hostPath).catch(() => [] as string[]);
      for (const name of names.sort()) if (re.test(name)) next.push(posix.join(dir, name));
    }
    candidates = next;
  }
  const existing: string[] = [];
  for (const candidate of candidates) {
    const { hostPath } = await resolveInContainer(root, candidate, { followLast: true });
    if (await lstat(hostPath).then(() => true, () => false)) existing.push(candidate);
  }
  return existing;
}

function segmentRegex(part: string): RegExp {
  let re = '';
  for (let i = 0; i < part.length; i++) {
    const c = part[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = part.indexOf(']', i + 1);
      if (end === -1) re += '\\[';
      else {
        re += `[${part.slice(i + 1, end).replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < part.length) re += escapeRegex(part[++i]!);
    else re += escapeRegex(c);
  }
  return new RegExp(`^${re}$`);
}

const escapeRegex = (c: string): string => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** `--chown=user[:group]`: a user alone also names the group, as dockerd reads it. */
export async function resolveChown(root: string, chown: string | undefined): Promise<{ uid: number; gid: number }> {
  if (chown === undefined || chown === '') return { uid: 0, gid: 0 };
  const [user = '', group] = chown.split(':');
  const resolved = await resolveUser(root, `${user}:${group ?? user}`);
  return { uid: resolved.uid, gid: resolved.gid };
}

export interface CopyOptions {
  /** Container path of the destination as written (absolute, after WORKDIR). */
  dest: string;
  owner: { uid: number; gid: number };
  /** ADD: unpack local archives. */
  extractArchives: boolean;
  instruction: 'COPY' | 'ADD';
}

export async function copyInto(root: string, sources: readonly SourceFile[], options: CopyOptions): Promise<void> {
  const dest = options.dest;
  const destEndsWithSlash = dest.endsWith('/') || dest.endsWith('/.');
  const resolvedDest = await resolveInContainer(root, dest, { followLast: true });
  const destIsExistingDir = await lstat(resolvedDest.hostPath).then((st) => st.isDirectory(), () => false);
  if (sources.length > 1 && !destEndsWithSlash && !destIsExistingDir) {
    throw invalidArgument(`When using ${options.instruction} with more than one source file, the destination must be a directory and end with a /`);
  }
  const destIsDir = destEndsWithSlash || destIsExistingDir || sources.length > 1;
  for (const source of sources) {
    if (source.isDirectory) {
      await ensureDir(root, resolvedDest.containerPath);
      await extractInto(packPath(source.hostPath, '.'), { root, destination: resolvedDest.containerPath, noOverwriteDirNonDir: false, owner: options.owner });
      continue;
    }
    if (options.extractArchives) {
      const archive = await archiveStream(source.hostPath);
      if (archive !== undefined) {
        await ensureDir(root, resolvedDest.containerPath);
        // Entries keep the archive's owners, as dockerd's ADD does.
        await extractInto(archive, { root, destination: resolvedDest.containerPath, noOverwriteDirNonDir: false });
        continue;
      }
    }
    const target = destIsDir ? posix.join(resolvedDest.containerPath, posix.basename(source.hostPath)) : resolvedDest.containerPath;
    const parent = posix.dirname(target);
    await ensureDir(root, parent);
    await extractInto(packPath(source.hostPath, posix.basename(target)), { root, destination: (await resolveInContainer(root, parent, { followLast: true })).containerPath, noOverwriteDirNonDir: false, owner: options.owner });
  }
}

/** Creates a directory (and its parents, root-owned 0755) inside the root. */
async function ensureDir(root: string, containerPath: string): Promise<void> {
  const { hostPath } = await resolveInContainer(root, containerPath, { followLast: true });
  const st = await lstat(hostPath).catch(() => undefined);
  if (st?.isDirectory()) return;
  if (st !== undefined) throw invalidArgument(`cannot copy to ${containerPath}: it exists and is not a directory`);
  await mkdir(hostPath, { recursive: true, mode: 0o755 });
}

/** The tar inside a local file when it is an archive ADD unpacks, else undefined. */
async function archiveStream(hostPath: string): Promise<Readable | undefined> {
  const handle = await open(hostPath, 'r');
  const head = Buffer.alloc(512);
  let length: number;
  try {
    ({ bytesRead: length } = await handle.read(head, 0, 512, 0));
  } finally {
    await handle.close();
  }
  if (length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return createReadStream(hostPath).pipe(new AutoDecompress());
  if (length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return decompressWith('bzip2', hostPath);
  if (length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return decompressWith('xz', hostPath);
  if (length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return createReadStream(hostPath);
  return undefined;
}

function decompressWith(command: string, hostPath: string): Readable {
  const child = spawn(command, ['-dc', hostPath], { stdio: ['ignore', 'pipe', 'ignore'] });
  // Read at once: Node drains (and drops) a child's unread stdout when the child exits.
  const out = new PassThrough();
  child.stdout.pipe(out);
  child.on('error', (err) => out.destroy(err));
  child.on('close', (code) => {
    if (code !== 0) out.destroy(invalidArgument(`ADD could not unpack ${posix.basename(hostPath)}: ${command} exited with ${code}`));
  });
  return out;
}
