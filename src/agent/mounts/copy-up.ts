import { execFile } from 'node:child_process';
import { lstat, readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { internal, invalidArgument } from '../../common/errors.js';
import { resolveInRoot } from './scoped-path.js';

const run = promisify(execFile);

/**
 * Docker's copy-up: when a container mounts an empty volume over a directory of its image,
 * the directory's content is copied into the volume first (ownership, modes, times, links and
 * the directory's own owner and mode included), so `VOLUME /data` in an image starts with
 * the image's /data. A volume that has anything in it is left alone. Returns whether it copied.
 */
export async function copyUpImageContent(rootfs: string, destination: string, volumeDir: string): Promise<boolean> {
  const source = await resolveInRoot(rootfs, destination);
  const info = await lstat(source).catch(() => undefined);
  if (!info) return false;
  if (!info.isDirectory()) throw invalidArgument(`cannot mount volume over existing file, file exists ${destination}`);
  if ((await readdir(volumeDir)).length > 0) return false;
  try {
    // `src/.` copies the directory itself onto the existing volume directory: its entries and its own owner and mode.
    await run('cp', ['-a', '--no-dereference', '--', `${source}/.`, `${volumeDir}/`]);
  } catch (err) {
    throw internal(`copying the image's content at ${destination} into its volume failed`, err);
  }
  return true;
}
