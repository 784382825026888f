import { constants as fsConstants, type Dirent, type Stats } from 'node:fs';
import { lstat, open, readdir, readlink, realpath } from 'node:fs/promises';
import { posix } from 'node:path';
import { errnoCode, isKind } from '../../common/errors.js';
import { resolveInRoot } from '../mounts/scoped-path.js';

/**
 * Reading an untrusted root filesystem (an image's layers, a live container's root) as root on
 * the host, without being led out of it.
 *
 * Every file here is chosen by whoever built the image or runs the container: /etc/os-release
 * may be a symlink to /etc/shadow on the host, a status file may be a FIFO or 10 GiB, and a
 * live container may swap a directory for a symlink while we read. So:
 * - paths are resolved component by component as if the rootfs were `/` (resolveInRoot:
 *   absolute links restart at the rootfs, `..` stops there);
 * - the final open uses O_NOFOLLOW (a link swapped in after resolution fails with ELOOP) and
 *   O_NONBLOCK (a FIFO never blocks), and only a regular file is read, up to a size limit;
 * - after opening, /proc/self/fd/<fd> names the file actually opened; if a concurrent swap of a
 *   directory component took the open outside the rootfs, it is refused. What is read is
 *   exactly what that descriptor points at, so the check cannot be raced.
 * - directories are opened with O_NOFOLLOW, checked the same way through /proc/self/fd, and
 *   listed through that descriptor; walks descend only into entries readdir types as
 *   directories, never into symlinks.
 */

/** Metadata files are small; a bigger one is hostile or broken and is skipped. */
export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;

/** The rootfs as the kernel names it (so /proc/self/fd targets can be compared with it). */
export async function canonicalRoot(rootfs: string): Promise<string> {
  return realpath(rootfs);
}

/** Whether `hostPath` is `root` or below it (both canonical). */
export function isInside(root: string, hostPath: string): boolean {
  return hostPath === root || hostPath.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/**
 * The contents of the regular file at `path` (as the container sees it) inside `root`, or
 * undefined when it is missing, not a regular file, a dangling or escaping link, or larger
 * than `maxBytes`. `root` must be canonical (see canonicalRoot).
 */
export async function readFileInRoot(root: string, path: string, maxBytes = DEFAULT_MAX_FILE_BYTES): Promise<Buffer | undefined> {
  const hostPath = await resolveSafely(root, path);
  return hostPath === undefined ? undefined : readResolvedFile(root, hostPath, maxBytes);
}

export async function readTextInRoot(root: string, path: string, maxBytes = DEFAULT_MAX_FILE_BYTES): Promise<string | undefined> {
  return (await readFileInRoot(root, path, maxBytes))?.toString('utf8');
}

/**
 * Reads a host path already known to lie inside `root` (from a walk), never following a final
 * symlink and re-checking where the descriptor points.
 */
export async function readResolvedFile(root: string, hostPath: string, maxBytes = DEFAULT_MAX_FILE_BYTES): Promise<Buffer | undefined> {
  if (!isInside(root, hostPath)) return undefined;
  // Not even opened unless it is a regular file: opening a device node an image planted (a
  // tape, a terminal) can have effects of its own. The stat after open settles races.
  if (!(await lstatOrUndefined(hostPath))?.isFile()) return undefined;
  let handle;
  try {
    handle = await open(hostPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENXIO' || code === 'EACCES') return undefined;
    throw err;
  }
  try {
    const opened = await readlink(`/proc/self/fd/${handle.fd}`);
    if (!isInside(root, opened)) return undefined;
    const st = await handle.stat();
    if (!st.isFile() || st.size > maxBytes) return undefined;
    // At most the size seen now: a live container may keep the file growing.
    const buffer = Buffer.alloc(st.size);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

/** lstat that answers undefined for a missing path. */
export async function lstatOrUndefined(hostPath: string): Promise<Stats | undefined> {
  try {
    return await lstat(hostPath);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES') return undefined;
    throw err;
  }
}

/**
 * The entries of the directory at `path` inside `root` (resolved safely), or [] when it is not
 * a directory. Entry types come from readdir and are never followed.
 */
export async function listDirInRoot(root: string, path: string): Promise<{ hostPath: string; entries: Dirent[] }> {
  const hostPath = await resolveSafely(root, path);
  return hostPath === undefined ? { hostPath: root, entries: [] } : { hostPath, entries: await listResolvedDir(root, hostPath) };
}

/** resolveInRoot, with a symlink loop counting as "not there". */
async function resolveSafely(root: string, path: string): Promise<string | undefined> {
  try {
    return await resolveInRoot(root, path);
  } catch (err) {
    if (isKind(err, 'InvalidArgument')) return undefined;
    throw err;
  }
}

/**
 * Entries of a directory found by a walk, [] if it vanished, was swapped for a link, or (by a
 * swapped parent) now lies outside `root`: the directory is opened with O_NOFOLLOW, the
 * descriptor checked like a file's, and listed through that descriptor.
 */
export async function listResolvedDir(root: string, hostPath: string): Promise<Dirent[]> {
  if (!isInside(root, hostPath)) return [];
  let handle;
  try {
    handle = await open(hostPath, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'EACCES') return [];
    throw err;
  }
  try {
    const opened = `/proc/self/fd/${handle.fd}`;
    if (!isInside(root, await readlink(opened))) return [];
    return await readdir(opened, { withFileTypes: true });
  } finally {
    await handle.close();
  }
}

/** The path inside the container that a host path under `root` stands for: `/usr/lib/...`. */
export function containerPath(root: string, hostPath: string): string {
  const rel = posix.relative(root, hostPath);
  return rel === '' ? '/' : `/${rel}`;
}
