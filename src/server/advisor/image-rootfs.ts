import { execFile } from 'node:child_process';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { internal } from '../../common/errors.js';
import { relativeToCommonDir } from '../../agent/images/overlay-rootfs.js';

const run = promisify(execFile);

/**
 * Gives `read` an image's root filesystem without a container: its unpacked layers (the
 * layer store's directories, shared and read-only by contract) as one tree.
 *
 * One layer is read in place; no layer is an empty directory. Several are stacked with a read-only overlay mount (lower dirs
 * only, no upper: the kernel then refuses every write) under `<scratch>/<random>`, unmounted
 * and removed afterwards whatever `read` did. overlayfs needs two lower dirs when it has no
 * upper dir, which the one-layer case never asks of it.
 */
export async function withImageRootfs<T>(scratch: string, lowerDirs: string[], read: (rootfs: string) => Promise<T>): Promise<T> {
  if (lowerDirs.length === 1) return read(lowerDirs[0]!);
  const target = join(scratch, randomBytes(8).toString('hex'));
  await mkdir(target, { recursive: true });
  if (lowerDirs.length === 0) {
    // An image without layers (FROM scratch with config only) is an empty tree.
    try {
      return await read(target);
    } finally {
      await rm(target, { recursive: true, force: true }).catch(() => undefined);
    }
  }
  const { cwd, names } = relativeToCommonDir(lowerDirs);
  try {
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${names.join(':')}`, target], { cwd });
  } catch (err) {
    await rm(target, { recursive: true, force: true });
    throw internal('mounting the image layers for inventory failed', err);
  }
  try {
    return await read(target);
  } finally {
    await run('umount', [target]).catch(() => run('umount', ['-l', target]).catch(() => undefined));
    await rm(target, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Start-up repair: a Berth killed while it read an image leaves that read-only mount behind.
 * Unmounts and removes everything under the scratch directory (nothing else uses it).
 */
export async function cleanImageRootfsScratch(scratch: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(scratch);
  } catch {
    return;
  }
  for (const entry of entries) {
    const target = join(scratch, entry);
    await run('umount', [target]).catch(() => run('umount', ['-l', target]).catch(() => undefined));
    await rm(target, { recursive: true, force: true }).catch(() => undefined);
  }
}
