import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { writeLayerDiff } from '../../agent/images/layer-diff.js';
import { OverlayRootfs } from '../../agent/images/overlay-rootfs.js';
import { existsBelowAs } from './run-step.js';

/**
 * Private overlay mounts of an image for build steps that touch files without running a
 * process (COPY, ADD, WORKDIR) and for reading another stage's files (COPY --from).
 *
 * Layout: `<root>/containers/<id>/{upper,work,merged,lower}` (OverlayRootfs' own layout,
 * under the build's directory, never among containers). Lifecycle: mount → use → diff
 * (change only) → unmount and delete, also when the step fails; `cleanup()` at start-up
 * removes what a crash left.
 */
export class ScratchMounts {
  private readonly rootfs: OverlayRootfs;

  constructor(
    private readonly root: string,
    private readonly layersFor: (imageId: string) => Promise<string[]>,
    private readonly logger: Logger,
  ) {
    this.rootfs = new OverlayRootfs({ dataRoot: root, layersFor });
  }

  /** Runs `fn` with the image's filesystem mounted (writable; changes are thrown away). */
  async withMount<T>(imageId: string, fn: (root: string) => Promise<T>): Promise<T> {
    const id = `scratch-${randomBytes(8).toString('hex')}`;
    try {
      const merged = await this.rootfs.prepare(id, imageId);
      return await fn(merged);
    } finally {
      await this.dispose(id);
    }
  }

  /** Applies `change` on top of the image and writes what changed to `layerTar`; returns its member count. */
  async change(imageId: string, change: (root: string) => Promise<void>, layerTar: string): Promise<number> {
    const id = `scratch-${randomBytes(8).toString('hex')}`;
    try {
      const merged = await this.rootfs.prepare(id, imageId);
      await change(merged);
      const lowerDirs = await this.layersFor(imageId);
      const { members } = await writeLayerDiff(join(this.root, 'containers', id, 'upper'), layerTar, {
        onlyCopiedUp: (path, st) => existsBelowAs(lowerDirs, path, st),
      });
      return members;
    } finally {
      await this.dispose(id);
    }
  }

  /** Removes mounts and directories a crashed build left behind. */
  async cleanup(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(join(this.root, 'containers'));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    for (const name of names) await this.dispose(name);
  }

  /**
   * Unmounts at once; deleting the files does not hold up the build (it goes on in the
   * background, and start-up finishes what a crash interrupted).
   */
  private async dispose(id: string): Promise<void> {
    try {
      await this.rootfs.unmount(id);
    } catch (err) {
      this.logger.error({ err, id }, 'unmounting a build mount failed');
      return;
    }
    void this.rootfs
      .remove(id)
      .then(() => rm(join(this.root, 'containers', id), { recursive: true, force: true }))
      .catch((err: unknown) => this.logger.error({ err, id }, 'removing a build mount failed'));
  }
}
