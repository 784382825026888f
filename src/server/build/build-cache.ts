import type { RequestContext } from '../../common/context.js';
import { invalidArgument, isKind } from '../../common/errors.js';
import { parseRfc3339 } from '../../common/human-time.js';
import { digestHex, sha256Digest } from '../../agent/images/digest.js';
import type { Logger } from '../../common/logging.js';
import type { HeldImage, ImageService } from '../images/image-service.js';
import type { ImageUsage, ResolvedImage } from '../images/types.js';
import type { Store } from '../store/store.js';

/** Store kind of build cache entries; id = the step's cache key (hex); scoped by tenant. */
export const BUILD_CACHE_KIND = 'build-cache';

/**
 * One cached build step: running `description` on the image `parentId` gave the image
 * `imageId`. Field contracts: everything but `lastUsed` and `usageCount` is immutable.
 */
export interface BuildCacheEntry {
  key: string;
  parentId: string;
  imageId: string;
  diffIds: string[];
  chainIds: string[];
  layerSizes: number[];
  /** Bytes of the layer the step added (0 when it only changed the config). */
  size: number;
  description: string;
  created: string;
  lastUsed: string;
  usageCount: number;
}

/** A cache entry as `GET /system/df` lists it (Docker's BuildCache). */
export interface DfBuildCache {
  ID: string;
  Parents: string[] | null;
  Type: string;
  Description: string;
  InUse: boolean;
  Shared: boolean;
  Size: number;
  CreatedAt: string;
  LastUsedAt: string;
  UsageCount: number;
}

/**
 * The classic builder's layer cache, per tenant.
 *
 * Terms: a step's key is a digest of its parent image and the container config it runs
 * with (the instruction, its environment and, for COPY/ADD, a digest of the source files).
 * Each entry holds its result image's content in the image service (holder
 * "<tenant>/build-cache/<key>/<image hex>"), so the intermediate image can be run (RUN of the next step)
 * and survives `docker rmi` of the final image; content shared with images stays as long as
 * anyone uses it (reference counts in the image service).
 *
 * Invariants: an entry exists only with its content held; prune never drops an entry whose
 * image a container uses, and dropping an entry deletes a layer only when no image, other
 * entry or container needs it.
 */
export class BuildCache {
  constructor(
    private readonly store: Store,
    private readonly images: ImageService,
    private readonly usage: ImageUsage,
    private readonly logger: Logger,
  ) {}

  static keyOf(parts: unknown): string {
    return digestHex(sha256Digest(Buffer.from(JSON.stringify(parts))));
  }

  /** Who holds an entry's content; the image id is part of it so two results of one key never share a hold. */
  private holder(ctx: RequestContext, key: string, imageId: string): string {
    return `${ctx.tenant}/build-cache/${key}/${digestHex(imageId)}`;
  }

  /** The entry for `key`, marked as used; undefined on a miss. */
  async lookup(ctx: RequestContext, key: string): Promise<BuildCacheEntry | undefined> {
    try {
      const stored = await this.store.get<BuildCacheEntry>(ctx, BUILD_CACHE_KIND, key);
      const value = { ...stored.value, lastUsed: new Date().toISOString(), usageCount: stored.value.usageCount + 1 };
      // Usage figures are informational: not worth a write the build waits for.
      this.store.update(ctx, BUILD_CACHE_KIND, key, { value, expectedRevision: stored.revision }).catch(() => undefined);
      return value;
    } catch (err) {
      if (isKind(err, 'NotFound')) return undefined;
      throw err;
    }
  }

  /** Stores a step's result (new layers: diff id → tar file) under `key`. */
  async put(ctx: RequestContext, key: string, parentId: string, configBytes: Buffer, newLayers: ReadonlyMap<string, string>, description: string): Promise<BuildCacheEntry> {
    const holder = this.holder(ctx, key, sha256Digest(configBytes));
    const held: HeldImage = await this.images.holdImage(holder, configBytes, newLayers);
    const parentLayers = held.config.rootfs.diff_ids.length - newLayers.size;
    const now = new Date().toISOString();
    const entry: BuildCacheEntry = {
      key,
      parentId,
      imageId: held.id,
      diffIds: held.diffIds,
      chainIds: held.chainIds,
      layerSizes: held.layerSizes,
      size: held.layerSizes.slice(parentLayers).reduce((a, b) => a + b, 0),
      description,
      created: now,
      lastUsed: now,
      usageCount: 0,
    };
    try {
      await this.store.create(ctx, BUILD_CACHE_KIND, { id: key, value: entry });
      return entry;
    } catch (err) {
      if (!isKind(err, 'AlreadyExists')) {
        await this.images.releaseHeldImage(holder, held).catch(() => undefined);
        throw err;
      }
    }
    // The step ran again (--no-cache, or two builds at once): the newer result replaces the
    // entry, unless a container runs the older image, whose layers must then stay held.
    const existing = await this.store.get<BuildCacheEntry>(ctx, BUILD_CACHE_KIND, key);
    if ((await this.usage.containersUsing(ctx, existing.value.imageId)).length > 0) {
      await this.images.releaseHeldImage(holder, held).catch(() => undefined);
      return existing.value;
    }
    await this.store.update(ctx, BUILD_CACHE_KIND, key, { value: entry, expectedRevision: existing.revision });
    await this.images.releaseHeldImage(this.holder(ctx, key, existing.value.imageId), { id: existing.value.imageId, diffIds: existing.value.diffIds, chainIds: existing.value.chainIds }).catch((e: unknown) => {
      this.logger.error({ err: e, key }, 'releasing a replaced build cache entry failed');
    });
    return entry;
  }

  /**
   * An intermediate image of this tenant's cache, by full id or a unique prefix of 12 or more
   * hex digits (as the build output shows them): so a build can run its steps, and users can
   * run a step's result as with dockerd.
   */
  async resolve(ctx: RequestContext, ref: string): Promise<ResolvedImage | undefined> {
    const match = /^(?:sha256:)?([0-9a-f]{12,64})$/.exec(ref);
    if (!match) return undefined;
    const entries = await this.store.list<BuildCacheEntry>(ctx, BUILD_CACHE_KIND);
    const ids = new Set(entries.map((e) => e.value.imageId).filter((id) => digestHex(id).startsWith(match[1]!)));
    if (ids.size !== 1) return undefined;
    const id = [...ids][0]!;
    const config = await this.images.storedConfig(id);
    return { id, config: config.config ?? {}, repoTags: [] };
  }

  async diskUsage(ctx: RequestContext): Promise<DfBuildCache[]> {
    const entries = (await this.store.list<BuildCacheEntry>(ctx, BUILD_CACHE_KIND)).map((s) => s.value);
    const imageLayers = new Set((await this.images.list(ctx)).flatMap((image) => image.chainIds));
    const out: DfBuildCache[] = [];
    for (const entry of entries) {
      const own = entry.chainIds.slice(entry.chainIds.length - (entry.size > 0 ? 1 : 0));
      out.push({
        ID: entry.key.slice(0, 25),
        Parents: null,
        Type: 'regular',
        Description: entry.description,
        InUse: (await this.usage.containersUsing(ctx, entry.imageId)).length > 0,
        Shared: own.some((c) => imageLayers.has(c)),
        Size: entry.size,
        CreatedAt: entry.created,
        LastUsedAt: entry.lastUsed,
        UsageCount: entry.usageCount,
      });
    }
    return out;
  }

  /**
   * `docker builder prune` (and the build cache part of `docker system prune`): drops every
   * entry no container uses (filters: until); returns the entries dropped and the bytes of
   * the layers actually deleted.
   */
  async prune(ctx: RequestContext, filters: Readonly<Record<string, readonly string[]>>): Promise<{ CachesDeleted: string[]; SpaceReclaimed: number }> {
    let untilMs: number | undefined;
    for (const [key, values] of Object.entries(filters)) {
      if (key !== 'until') throw invalidArgument(`invalid filter '${key}'`);
      if (values[0] !== undefined) untilMs = parseUntil(values[0]);
    }
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const { value: entry, revision } of await this.store.list<BuildCacheEntry>(ctx, BUILD_CACHE_KIND)) {
      if (untilMs !== undefined && Date.parse(entry.created) >= untilMs) continue;
      if ((await this.usage.containersUsing(ctx, entry.imageId)).length > 0) continue;
      try {
        await this.store.delete(ctx, BUILD_CACHE_KIND, entry.key, revision);
      } catch (err) {
        if (isKind(err, 'NotFound') || isKind(err, 'Conflict')) continue;
        throw err;
      }
      try {
        const removed = await this.images.releaseHeldImage(this.holder(ctx, entry.key, entry.imageId), { id: entry.imageId, diffIds: entry.diffIds, chainIds: entry.chainIds });
        reclaimed += removed.reduce((sum, chain) => sum + (entry.layerSizes[entry.chainIds.indexOf(chain)] ?? 0), 0);
      } catch (err) {
        this.logger.error({ err, key: entry.key }, 'releasing a build cache entry failed');
      }
      deleted.push(entry.key.slice(0, 25));
    }
    return { CachesDeleted: deleted, SpaceReclaimed: reclaimed };
  }
}

function parseUntil(value: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const duration = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(value);
  if (duration && value !== '') {
    const [, h = '0', m = '0', s = '0'] = duration;
    return Date.now() - ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000;
  }
  const parsed = parseRfc3339(value);
  if (Number.isNaN(parsed)) throw invalidArgument(`invalid filter 'until=${value}'`);
  return parsed;
}
