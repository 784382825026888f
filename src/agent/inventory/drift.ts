import { execFile } from 'node:child_process';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RuntimeState } from '../../server/advisor/model.js';

const run = promisify(execFile);

/**
 * A container's drift from its image, read from its overlayfs upper (writable) directory.
 *
 * - deleted: whiteouts, i.e. 0/0 character devices in the upper dir;
 * - changed: a file in the upper dir that also exists in a lower (image) layer, and a
 *   directory made opaque (`trusted.overlay.opaque` or, on userxattr mounts,
 *   `user.overlay.opaque` = y: everything the image had below it is hidden);
 * - added: anything else in the upper dir; a whole new directory is listed once, not file by
 *   file.
 * Directories that exist only because something below them was copied up are not drift.
 * Runtime mount targets (/etc/hosts, /etc/hostname, /etc/resolv.conf, /dev, /proc, /sys) are
 * left out: the runtime creates them, as dockerd's init layer does. Each list is capped at
 * MAX_PATHS, sorted.
 */

const MAX_PATHS = 10_000;
const RUNTIME_PATHS = new Set(['/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/dev', '/proc', '/sys', '/.dockerenv']);

export async function readOverlayDrift(upperDir: string, lowerDirs: string[]): Promise<RuntimeState['drift']> {
  const drift: RuntimeState['drift'] = { added: [], changed: [], deleted: [] };
  const opaque = await opaqueDirectories(upperDir);
  const push = (list: string[], path: string): void => {
    if (list.length < MAX_PATHS) list.push(path);
  };
  const inLower = async (rel: string): Promise<boolean> => {
    for (const lower of lowerDirs) {
      const st = await lstat(join(lower, rel)).catch(() => undefined);
      if (st === undefined) continue;
      // A whiteout in a higher layer hides the path from the layers below.
      return !(st.isCharacterDevice() && st.rdev === 0);
    }
    return false;
  };
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(upperDir, rel), { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const path = `${rel}/${entry.name}`;
      if (RUNTIME_PATHS.has(path)) continue;
      const st = await lstat(join(upperDir, path)).catch(() => undefined);
      if (st === undefined) continue;
      if (st.isCharacterDevice() && st.rdev === 0) {
        push(drift.deleted, path);
        continue;
      }
      const existed = await inLower(path);
      if (!st.isDirectory()) {
        push(existed ? drift.changed : drift.added, path);
        continue;
      }
      if (!existed) {
        push(drift.added, path);
        continue;
      }
      if (opaque.has(join(upperDir, path))) push(drift.changed, path);
      await walk(path);
    }
  };
  await walk('');
  for (const list of Object.values(drift)) list.sort();
  return drift;
}

/** Upper-dir directories marked opaque, by absolute path (one getfattr run for the tree). */
async function opaqueDirectories(upperDir: string): Promise<Set<string>> {
  let stdout: string;
  try {
    ({ stdout } = await run('getfattr', ['-R', '-P', '--absolute-names', '-d', '-m', '^(trusted|user)\\.overlay\\.opaque$', upperDir], { maxBuffer: 64 * 1024 * 1024 }));
  } catch (err) {
    // getfattr exits non-zero when some entry could not be read; what it printed still counts.
    stdout = (err as { stdout?: string }).stdout ?? '';
  }
  const out = new Set<string>();
  let file: string | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice('# file: '.length);
    else if (file !== undefined && /^(trusted|user)\.overlay\.opaque="y"$/.test(line)) out.add(file);
  }
  return out;
}
