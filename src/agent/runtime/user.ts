import { constants as fsConstants } from 'node:fs';
import { lstat, open, readlink } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, invalidArgument } from '../../common/errors.js';

/**
 * Resolution of `docker run -u` against a container's own /etc/passwd and /etc/group.
 *
 * Terms: the user spec is "user[:group]", each part a name or a number. A number never has to
 * exist in the files; a name must. The result is what the process runs as: uid, primary gid,
 * supplementary gids and the home directory (for HOME).
 *
 * Rules (Docker's, via libcontainer's user package):
 * - "" means uid 0 (and its passwd entry, if any); gid 0 unless a group is given.
 * - A numeric user is always a uid (not a name made of digits); the first passwd line with that
 *   uid supplies gid and home. Without one, gid stays 0 and home is "/".
 * - An explicit group replaces the primary gid and disables supplementary groups. Without one,
 *   supplementary groups are every /etc/group entry whose member list holds the matched
 *   user's name (the primary group may appear there too, as with Docker).
 * - ids must lie in 0..2147483647.
 *
 * Safety: the rootfs belongs to an image, i.e. to a tenant. Its /etc/passwd may be a symlink
 * to anywhere; every path is resolved as if the rootfs were "/" (absolute links restart at the
 * rootfs, ".." stops at it), the final file is opened with O_NOFOLLOW and only a regular file
 * is read, so neither a symlink nor a FIFO escapes or hangs the agent.
 */

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

const MAX_ID = 2147483647;
const MAX_SYMLINKS = 255;
/** Real passwd files are a few KiB; refuse to buffer a giant one from a hostile image. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export async function resolveUser(rootfs: string, user: string): Promise<ResolvedUser> {
  const [userArg = '', groupArg = ''] = user.split(':');
  const uidArg = parseId(userArg);
  const gidArg = parseId(groupArg);

  const passwdText = await readFileInRoot(rootfs, '/etc/passwd');
  const passwd = passwdText === undefined ? [] : parsePasswd(passwdText);

  const match = passwd.find((e) => {
    if (userArg === '') return e.uid === 0;
    if (uidArg !== undefined) return e.uid === uidArg;
    return e.name === userArg;
  });

  let uid = 0;
  let gid = 0;
  let home = '/';
  if (match) {
    ({ uid, gid } = match);
    home = match.home === '' ? '/' : match.home;
  } else if (userArg !== '') {
    if (uidArg === undefined) {
      throw invalidArgument(`unable to find user ${userArg}: no matching entries in passwd file`);
    }
    uid = checkRange(uidArg);
  }

  let additionalGids: number[] = [];
  if (groupArg !== '' || match) {
    const groupText = await readFileInRoot(rootfs, '/etc/group');
    const groups = groupText === undefined ? [] : parseGroup(groupText);
    if (groupArg !== '') {
      const g = groups.find((e) => (gidArg !== undefined ? e.gid === gidArg : e.name === groupArg));
      if (g) {
        gid = g.gid;
      } else if (gidArg !== undefined) {
        gid = checkRange(gidArg);
      } else {
        throw invalidArgument(`unable to find group ${groupArg}: no matching entries in group file`);
      }
    } else if (match) {
      additionalGids = groups.filter((e) => e.members.includes(match.name)).map((e) => e.gid);
    }
  }

  // The primary group is always in the supplementary list, as containerd's spec options put it
  // for dockerd: `id` inside shows groups=<gid> even for a bare uid:gid.
  return { uid, gid, additionalGids: [...new Set([gid, ...additionalGids])], home };
}

/**
 * Resolves `--group-add` entries (names or numbers) against the rootfs's /etc/group. A name
 * that is not there is refused with Docker's message; a number needs no entry.
 */
export async function resolveGroups(rootfs: string, names: string[]): Promise<number[]> {
  if (names.length === 0) return [];
  const groupText = await readFileInRoot(rootfs, '/etc/group');
  const groups = groupText === undefined ? [] : parseGroup(groupText);
  return names.map((name) => {
    const entry = groups.find((g) => g.name === name);
    if (entry) return entry.gid;
    if (/^\d+$/.test(name)) return checkRange(Number(name));
    throw invalidArgument(`Unable to find group ${name}: no matching entries in group file`);
  });
}

/** Like Go's strconv.Atoi: optional sign, decimal digits; anything else is a name. */
function parseId(s: string): number | undefined {
  return /^[+-]?\d+$/.test(s) ? Number(s) : undefined;
}

function checkRange(id: number): number {
  if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID) {
    throw invalidArgument(`uids and gids must be in range 0-${MAX_ID}`);
  }
  return id;
}

/** A malformed number field counts as 0, as in libcontainer's parser. */
function intField(s: string | undefined): number {
  const n = parseId(s ?? '');
  return n === undefined ? 0 : n;
}

function lines(text: string): string[][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

export function parsePasswd(text: string): PasswdEntry[] {
  return lines(text).map((f) => ({ name: f[0] ?? '', uid: intField(f[2]), gid: intField(f[3]), home: f[5] ?? '' }));
}

export function parseGroup(text: string): GroupEntry[] {
  return lines(text).map((f) => ({
    name: f[0] ?? '',
    gid: intField(f[2]),
    members: (f[3] ?? '').split(',').filter((m) => m !== ''),
  }));
}

/**
 * The host path that `target` (absolute, in the container's view) names inside `root`,
 * following symlinks as the container would see them but never leaving `root`. The last
 * component may not exist.
 */
export async function resolveInRoot(root: string, target: string): Promise<string> {
  const done: string[] = [];
  let todo = target.split('/');
  let followed = 0;
  while (todo.length > 0) {
    const part = todo.shift() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const hostPath = path.join(root, ...done, part);
    let isLink: boolean;
    try {
      isLink = (await lstat(hostPath)).isSymbolicLink();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') {
        return path.join(root, ...done, part, ...todo.filter((p) => p !== '' && p !== '.'));
      }
      throw err;
    }
    if (!isLink) {
      done.push(part);
      continue;
    }
    if (++followed > MAX_SYMLINKS) throw invalidArgument(`too many levels of symbolic links: ${target}`);
    const link = await readlink(hostPath);
    if (link.startsWith('/')) done.length = 0;
    todo = [...link.split('/'), ...todo];
  }
  return path.join(root, ...done);
}

/** Contents of a regular file at `target` inside `root`, or undefined when there is none. */
async function readFileInRoot(root: string, target: string): Promise<string | undefined> {
  const hostPath = await resolveInRoot(root, target);
  let handle;
  try {
    // O_NONBLOCK so that opening a FIFO planted by the image does not wait for a writer.
    handle = await open(hostPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return undefined;
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return undefined;
    if (st.size > MAX_FILE_BYTES) throw invalidArgument(`${target} in the image is too large`);
    return (await handle.readFile()).toString('utf8');
  } finally {
    await handle.close();
  }
}
