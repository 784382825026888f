import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, invalidArgument } from '../../common/errors.js';

/**
 * Path resolution inside a container's root filesystem, for `docker cp` (archive routes).
 *
 * Terms:
 * - root: the host directory holding the container's root filesystem (its overlay mount).
 * - container path: an absolute path as a process in the container sees it ("/etc/hosts").
 * - host path: where that file lives on the host.
 * - file mounts: single files Berth binds into the container (/etc/hosts, /etc/resolv.conf,
 *   /etc/hostname); a container path equal to a mount destination is read from its source.
 *
 * Invariant (safety): symlinks met on the way are resolved as the container would resolve them
 * — an absolute target restarts at the root, ".." stops at the root — so a resolved host path
 * is always inside the root (or is a file mount's source). Link loops end with an error after
 * MAX_SYMLINKS links, as the kernel's ELOOP.
 *
 * A running container may change its files while we resolve them; the result is only as fresh
 * as the moment it was computed (Docker shares this limitation outside its chroot helpers).
 */

const MAX_SYMLINKS = 255;

export interface FileMount {
  /** Absolute container path of the mounted file. */
  destination: string;
  /** Host path of the file mounted there. */
  source: string;
}

export interface ResolvedPath {
  /** Cleaned absolute container path after following symlinks. */
  containerPath: string;
  /** Where that path lives on the host. */
  hostPath: string;
}

/**
 * Resolves `target` (absolute container path) under `root`. With `followLast` false the last
 * component is not followed when it is a symlink (stat and archive it as a link); earlier
 * components always are. Components that do not exist are kept lexically.
 */
export async function resolveInContainer(
  root: string,
  target: string,
  options: { followLast: boolean; mounts?: FileMount[] },
): Promise<ResolvedPath> {
  const done: string[] = [];
  let todo = target.split('/').filter((part) => part !== '' && part !== '.');
  let followed = 0;
  while (todo.length > 0) {
    const part = todo.shift() as string;
    if (part === '..') {
      done.pop();
      continue;
    }
    const isLast = todo.length === 0;
    const hostPath = path.join(root, ...done, part);
    let isLink = false;
    try {
      isLink = (await lstat(hostPath)).isSymbolicLink();
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
    // A file mount shadows whatever the rootfs holds at its destination, links included.
    const mounted = options.mounts?.some((m) => m.destination === `/${[...done, part].join('/')}`) ?? false;
    if (!isLink || mounted || (isLast && !options.followLast)) {
      done.push(part);
      continue;
    }
    if (++followed > MAX_SYMLINKS) throw invalidArgument(`too many levels of symbolic links: ${target}`);
    const link = await readlink(hostPath);
    if (link.startsWith('/')) done.length = 0;
    todo = [...link.split('/').filter((p) => p !== '' && p !== '.'), ...todo];
  }
  const containerPath = `/${done.join('/')}`;
  const mount = options.mounts?.find((m) => m.destination === containerPath);
  return { containerPath, hostPath: mount ? mount.source : path.join(root, ...done) };
}

/**
 * Docker's absolute form of a user's path: joined to "/" and cleaned, keeping a trailing "/" or
 * "/." because they mean "the directory itself, followed" / "the directory's contents".
 */
export function absoluteContainerPath(userPath: string): string {
  let abs = path.posix.join('/', userPath).replace(/(.)\/+$/, '$1');
  if (userPath.endsWith('/.') || userPath === '.') {
    abs = abs === '/' ? '/.' : `${abs}/.`;
  } else if (userPath.endsWith('/') && abs !== '/') {
    abs = `${abs}/`;
  }
  return abs;
}

/** True when the path names a directory's contents ("/x/." ) or the directory itself ("/x/"). */
export function hasTrailingDirMarker(abs: string): boolean {
  return abs.endsWith('/') || abs.endsWith('/.');
}

/** Go's filepath.Base, which Docker uses for names in stat and archives. */
export function goBase(abs: string): string {
  if (abs === '') return '.';
  const trimmed = abs.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  const i = trimmed.lastIndexOf('/');
  return i < 0 ? trimmed : trimmed.slice(i + 1);
}

/**
 * Cleans a tar entry name for extraction below a directory. Leading "/" and "./" are dropped, as
 * tar does; a name that climbs out ("../x", "a/../../x") is refused like Docker's breakout check.
 */
export function cleanEntryName(name: string): string {
  const cleaned = path.posix.normalize(`/${name}`).replace(/^\/+/, '');
  const climbs = path.posix.normalize(name.replace(/^\/+/, '')).split('/')[0] === '..';
  if (climbs) throw invalidArgument(`invalid archive entry: "${name}" is outside of the extraction point`);
  return cleaned === '.' ? '' : cleaned.replace(/\/+$/, '');
}
