import { execFile } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { internal, invalidArgument, notImplemented } from '../../common/errors.js';

const run = promisify(execFile);

/**
 * The host side of Berth's `local` volume driver, after dockerd's: a volume is a directory
 * `<base>/_data`; a volume created with `type`/`device`/`o` options is a mount made on that
 * directory while a container uses it (dockerd mounts at first use and unmounts when the last
 * user stops).
 *
 * Supported options (everything else is refused, see docs/volumes.md):
 * - `type=tmpfs` (device ignored, `o` passed as tmpfs data: size=, mode=, uid=, gid=, nr_inodes=);
 * - `o=bind` with `device=<absolute host path>` (type none or absent): a bind mount, optionally
 *   `ro`;
 * - `size=<bytes|64m>`: only with type=tmpfs, where it becomes the tmpfs size. Plain directory
 *   volumes have no quota support on Berth's backing store, and say so as dockerd does.
 *
 * Invariants: mount and unmount are idempotent; remove unmounts before deleting.
 */

export const LOCAL_DRIVER = 'local';

const VALID_OPTIONS = new Set(['type', 'device', 'o', 'size']);
const TMPFS_DATA = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks']);
const BIND_FLAGS = new Set(['bind', 'rbind', 'ro', 'rw', 'nosuid', 'nodev', 'noexec', 'suid', 'dev', 'exec', 'private', 'rprivate']);

/** What a local volume's options ask for, checked; undefined for a plain directory volume. */
export type LocalMountPlan =
  | { kind: 'tmpfs'; data: string[] }
  | { kind: 'bind'; device: string; readonly: boolean };

/** Validates dockerd's local-driver options (InvalidArgument/NotImplemented before anything exists). */
export function planLocalMount(options: Record<string, string>): LocalMountPlan | undefined {
  for (const key of Object.keys(options)) {
    if (!VALID_OPTIONS.has(key)) throw invalidArgument(`invalid option: "${key}"`);
  }
  const type = options.type ?? '';
  const o = (options.o ?? '').split(',').filter((part) => part !== '');
  const size = options.size;
  if (type === '' && options.device === undefined && options.o === undefined) {
    if (size !== undefined) throw invalidArgument('quota size requested but no quota support');
    return undefined;
  }
  if (type === 'tmpfs') {
    const data: string[] = [];
    for (const part of o) {
      const key = part.split('=')[0]!;
      if (!TMPFS_DATA.has(key) && !['ro', 'rw', 'nosuid', 'nodev', 'noexec', 'exec'].includes(part)) {
        throw invalidArgument(`invalid tmpfs volume option "${part}"`);
      }
      data.push(part);
    }
    if (size !== undefined) data.push(`size=${parseSize(size)}`);
    return { kind: 'tmpfs', data };
  }
  if ((type === '' || type === 'none') && (o.includes('bind') || o.includes('rbind'))) {
    if (size !== undefined) throw invalidArgument('quota size requested but no quota support');
    const device = options.device ?? '';
    if (!device.startsWith('/')) throw invalidArgument(`invalid bind volume device "${device}": an absolute host path is required`);
    for (const part of o) {
      if (!BIND_FLAGS.has(part)) throw invalidArgument(`invalid bind volume option "${part}"`);
    }
    return { kind: 'bind', device, readonly: o.includes('ro') };
  }
  if (type === '') throw invalidArgument('missing required option: "type"');
  throw notImplemented(`local volumes of type "${type}" are not supported: use type=tmpfs, or o=bind with a device path`);
}

/** `64m`, `1g`, `1024` (bytes) → bytes, as dockerd's RAMInBytes reads sizes. */
export function parseSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$/i.exec(value.trim());
  if (!match) throw invalidArgument(`invalid size: '${value}'`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[match[2]!.toLowerCase()] ?? 1;
  return Math.floor(Number(match[1]) * unit);
}

export function dataDir(base: string): string {
  return join(base, '_data');
}

export async function createVolumeDir(base: string): Promise<void> {
  await mkdir(base, { recursive: true, mode: 0o701 });
  await mkdir(dataDir(base), { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
}

/** Mounts an option volume's `_data` (no-op for plain volumes and when already mounted). */
export async function mountVolume(base: string, plan: LocalMountPlan | undefined): Promise<void> {
  if (!plan) return;
  const target = dataDir(base);
  await createVolumeDir(base);
  if (await isMountPoint(target)) return;
  try {
    if (plan.kind === 'tmpfs') {
      const data = ['nosuid', 'nodev', ...plan.data];
      await run('mount', ['-t', 'tmpfs', '-o', data.join(','), 'tmpfs', target]);
    } else {
      const source = await lstat(plan.device).catch(() => undefined);
      if (!source) throw invalidArgument(`error while mounting volume: bind source path does not exist: ${plan.device}`);
      await run('mount', ['--bind', plan.device, target]);
      if (plan.readonly) await run('mount', ['-o', 'remount,bind,ro', target]);
    }
  } catch (err) {
    if (err instanceof Error && 'kind' in err) throw err;
    throw internal('mounting a volume failed', err);
  }
}

export async function unmountVolume(base: string): Promise<void> {
  const target = dataDir(base);
  while (await isMountPoint(target)) {
    await run('umount', [target]).catch(async (err: unknown) => {
      await run('umount', ['-l', target]).catch(() => {
        throw internal('unmounting a volume failed', err);
      });
    });
  }
}

export async function removeVolumeDir(base: string): Promise<void> {
  await unmountVolume(base);
  await rm(base, { recursive: true, force: true });
}

export async function isEmptyDir(path: string): Promise<boolean> {
  const entries = await readdir(path).catch(() => [] as string[]);
  return entries.length === 0;
}

/** Bytes under a directory, each inode counted once (dockerd's directory.Size). */
export async function directorySize(path: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const full = join(dir, entry.name);
      const info = await lstat(full).catch(() => undefined);
      if (!info) continue;
      const key = `${info.dev}:${info.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (info.isDirectory()) await walk(full);
      else total += info.size;
    }
  };
  await walk(path);
  return total;
}

export async function isMountPoint(path: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const escaped = path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return info.split('\n').some((line) => line.split(' ')[4] === escaped);
}
