import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../../common/errors.js';
import type { ContentProvider } from './content-store.js';
import { digestHex, type Digest } from './digest.js';
import { scanLayer, unpackLayer, type LayerScan } from './layer-unpack.js';

/**
 * Unpacked layers, shared by every image (of every tenant) that starts with the same stack.
 *
 * Terms (after containerd's snapshotter): a committed layer is named by its chain id and is
 * read-only once committed; its `diff` directory is an overlayfs lower dir. Each committed
 * layer also has a short link `l/<20 hex>` → `../<chain hex>/diff`, so an overlay mount with
 * many lower dirs fits the kernel's one-page limit on mount options (mounts are made from
 * the layer root, with relative lower dirs).
 *
 * Lifecycle: commit (unpack into a private temp dir, then rename: a layer is either fully
 * there or absent) → shared by images → remove, once the image service has seen that no
 * image references it.
 */
export class LayerStore {
  constructor(
    /** `<dataRoot>/images/layers` */
    readonly root: string,
    private readonly content: ContentProvider,
  ) {}

  diffDir(chainId: Digest): string {
    return join(this.root, digestHex(chainId), 'diff');
  }

  /** The lower dir relative to `root`, short enough for mounts of many layers. */
  shortName(chainId: Digest): string {
    return `l/${digestHex(chainId).slice(0, 20)}`;
  }

  async has(chainId: Digest): Promise<boolean> {
    try {
      await lstat(this.diffDir(chainId));
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** Reads a stored layer tar (by diff id) for its whiteouts and size. */
  async scan(diffId: Digest): Promise<LayerScan> {
    return scanLayer(this.content.open(diffId));
  }

  /**
   * Unpacks the stored layer tar `diffId` as the layer `chainId` (whose parent layers must
   * already be committed). Idempotent: a committed layer is left as it is.
   */
  async commit(chainId: Digest, diffId: Digest, scan?: LayerScan): Promise<void> {
    if (await this.has(chainId)) {
      await this.ensureShortLink(chainId);
      return;
    }
    const layerScan = scan ?? (await this.scan(diffId));
    await mkdir(this.root, { recursive: true });
    const tmp = join(this.root, `tmp-${randomBytes(8).toString('hex')}`);
    try {
      await unpackLayer(this.content.path(diffId), join(tmp, 'diff'), layerScan);
      try {
        await rename(tmp, join(this.root, digestHex(chainId)));
      } catch (err) {
        // Another load committed the same layer first; theirs is as good as ours.
        if (errnoCode(err) !== 'ENOTEMPTY' && errnoCode(err) !== 'EEXIST') throw err;
        await rm(tmp, { recursive: true, force: true });
      }
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    await this.ensureShortLink(chainId);
  }

  async remove(chainId: Digest): Promise<void> {
    await rm(join(this.root, this.shortName(chainId)), { force: true });
    // Renamed away first so a half-deleted layer is never mistaken for a committed one.
    const doomed = join(this.root, `tmp-${randomBytes(8).toString('hex')}`);
    try {
      await rename(join(this.root, digestHex(chainId)), doomed);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  private async ensureShortLink(chainId: Digest): Promise<void> {
    const link = join(this.root, this.shortName(chainId));
    const target = `../${digestHex(chainId)}/diff`;
    await mkdir(join(this.root, 'l'), { recursive: true });
    try {
      if ((await readlink(link)) === target) return;
      await rm(link, { force: true });
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    await symlink(target, link);
  }
}
