/**
 * A test image's root filesystem as a plain directory: the single layer of a cached
 * `docker save` archive from test-images.ts, unpacked with tar into a temp dir. Used by
 * tests that read what an image holds (the advisor's inventory and compliance checks) without
 * starting an engine.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface UnpackedImage {
  rootfs: string;
  cleanup(): Promise<void>;
}

/** Unpacks the (single-layer) image in `archive` into a new temp dir. */
export async function unpackImageRootfs(archive: string, prefix = 'berth-rootfs-'): Promise<UnpackedImage> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    await run('tar', ['-x', '-f', archive, '-C', dir, 'manifest.json']);
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
    const rootfs = join(dir, 'rootfs');
    await mkdir(rootfs);
    for (const layer of manifest[0]?.Layers ?? []) {
      await run('tar', ['-x', '-f', archive, '-C', dir, layer]);
      await run('tar', ['-x', '-f', join(dir, layer), '-C', rootfs, '--numeric-owner', '--same-permissions']);
      await rm(join(dir, layer));
    }
    return { rootfs, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
