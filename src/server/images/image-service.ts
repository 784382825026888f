import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { OPERATOR_TENANT, type RequestContext } from '../../common/context.js';
import { conflict, forbidden, invalidArgument, isKind, notFound } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { writeImageArchive, type ArchiveImage } from '../../agent/images/archive-writer.js';
import { openImageArchive } from '../../agent/images/archive-reader.js';
import { ContentStore } from '../../agent/images/content-store.js';
import { chainIds, digestHex, expectDigest, sha256Digest } from '../../agent/images/digest.js';
import { LayerStore } from '../../agent/images/layer-store.js';
import { AutoDecompress } from '../../agent/images/layer-unpack.js';
import type { EventPublisher } from '../events/types.js';
import type { Store, Stored } from '../store/store.js';
import { applyChanges } from './change.js';
import { BLOB_KIND, ContentRefs, LAYER_KIND } from './content-refs.js';
import { IMAGE_KIND, imageSize, parseImageConfig, type ImageConfigJson, type ImageRecord } from './image-record.js';
import { familiarTagged, parseReference, repositoryOf, type ImageReference } from './reference.js';
import { matchImageFilters, parseImageFilters, pruneFilters, type ImageFilters } from './image-filters.js';
import type { DfImage } from '../system/types.js';
import type { ImageResolver, ImageUsage, ResolvedImage } from './types.js';
import { PublishedImages } from './published-images.js';

/** An image's content as stored: config digest, layers and their sizes. */
export interface HeldImage {
  id: string;
  config: ImageConfigJson;
  diffIds: string[];
  chainIds: string[];
  layerSizes: number[];
}

export interface ImageServiceOptions {
  store: Store;
  dataRoot: string;
  events: EventPublisher;
  usage: ImageUsage;
  logger: Logger;
  /** Told of every image record created (load, import, pull, build, commit), e.g. to inventory it. */
  onImageAdded?: (imageId: string) => void;
}

/** One line of `docker rmi` / prune output. */
export type DeleteItem = { Untagged: string } | { Deleted: string };

export interface ImportOptions {
  repo?: string;
  tag?: string;
  changes: string[];
  message?: string;
}

/**
 * Images of each tenant, over a host-wide content store and layer store.
 *
 * Terms: an image is a config blob (its digest is the image id, and the bytes are kept
 * untouched) plus its layers, unpacked once per chain id and shared. Each tenant has its own
 * image records and tags; content is shared and reference-counted (content-refs.ts), so
 * deleting an image removes a layer only when no image of any tenant uses it.
 *
 * Invariants: every image record's config and layer tars are in the content store and its
 * layers are committed; a failed load or import leaves no record and no content nobody uses.
 * Mutations run one at a time (per process), which keeps tags unique per tenant.
 */
export class ImageService implements ImageResolver {
  readonly content: ContentStore;
  readonly layers: LayerStore;
  private readonly refs: ContentRefs;
  /** The operator's images every tenant may read (published-images.ts). */
  readonly published: PublishedImages;
  private readonly tmpDir: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: ImageServiceOptions) {
    const root = join(opts.dataRoot, 'images');
    this.content = new ContentStore(join(root, 'content'));
    this.layers = new LayerStore(join(root, 'layers'), this.content);
    this.refs = new ContentRefs(opts.store);
    this.published = new PublishedImages(opts.store);
    this.tmpDir = join(root, 'tmp');
  }

  // ---- resolution -------------------------------------------------------------------------

  async resolve(ctx: RequestContext, ref: string): Promise<ResolvedImage> {
    const { value } = await this.find(ctx, ref);
    return { id: value.id, config: value.config.config ?? {}, repoTags: value.repoTags };
  }

  async inspect(ctx: RequestContext, ref: string): Promise<ImageRecord & { size: number; lowerDirs: string[] }> {
    const { value } = await this.find(ctx, ref);
    return { ...value, size: imageSize(value), lowerDirs: value.chainIds.map((c) => this.layers.diffDir(c)) };
  }

  /**
   * The lower dirs of an image for an overlay mount, top layer first: the layers' short links,
   * all in one directory (see LayerStore). Layers are host-wide, so no tenant is needed.
   */
  async layerPathsOf(imageId: string): Promise<string[]> {
    const config = parseImageConfig(await this.content.read(imageId));
    return chainIds(config.rootfs.diff_ids)
      .map((c) => join(this.layers.root, this.layers.shortName(c)))
      .reverse();
  }

  async count(ctx: RequestContext): Promise<number> {
    return (await this.opts.store.list(ctx, IMAGE_KIND)).length;
  }

  /** `docker system df`: the tenant's images and the bytes of the distinct layers they use. */
  async diskUsage(ctx: RequestContext): Promise<{ layersSize: number; images: DfImage[] }> {
    const images = (await this.opts.store.list<ImageRecord>(ctx, IMAGE_KIND)).map((r) => r.value);
    const layerSize = new Map<string, number>();
    const uses = new Map<string, number>();
    for (const image of images) {
      image.chainIds.forEach((c, i) => {
        layerSize.set(c, image.layerSizes[i] ?? 0);
        uses.set(c, (uses.get(c) ?? 0) + 1);
      });
    }
    const out: DfImage[] = [];
    for (const image of images) {
      const shared = image.chainIds.reduce((sum, c, i) => sum + ((uses.get(c) ?? 0) > 1 ? (image.layerSizes[i] ?? 0) : 0), 0);
      out.push({
        Id: image.id,
        ParentId: '',
        RepoTags: image.repoTags,
        RepoDigests: image.repoDigests,
        Created: Math.floor(Date.parse(image.created) / 1000),
        Size: imageSize(image),
        SharedSize: shared,
        Labels: image.config.config?.Labels ?? {},
        Containers: (await this.opts.usage.containersUsing(ctx, image.id)).length,
      });
    }
    return { layersSize: [...layerSize.values()].reduce((a, b) => a + b, 0), images: out };
  }

  /**
   * Docker's lookup order: a full id; then a reference (name[:tag] or name@digest); then a
   * unique id prefix. NotFound says "No such image: <name:tag>".
   */
  async find(ctx: RequestContext, ref: string): Promise<Stored<ImageRecord>> {
    return (await this.locate(ctx, ref)).stored;
  }

  /**
   * find, saying whether the hit is a published image of the operator's (readable, not the
   * tenant's to change). The tenant's own images come first at each step, so its own name
   * shadows a published one.
   */
  private async locate(ctx: RequestContext, ref: string): Promise<{ stored: Stored<ImageRecord>; published: boolean }> {
    const full = /^(?:sha256:)?([0-9a-f]{64})$/.exec(ref);
    if (full) {
      const own = await this.opts.store.get<ImageRecord>(ctx, IMAGE_KIND, full[1]!).catch((err: unknown) => {
        if (isKind(err, 'NotFound')) return undefined;
        throw err;
      });
      if (own) return { stored: own, published: false };
    }
    const own = await this.opts.store.list<ImageRecord>(ctx, IMAGE_KIND);
    // Published images matter only where the tenant's own miss: read them then, once.
    let visible: Stored<ImageRecord>[] | undefined;
    const published = async (): Promise<Stored<ImageRecord>[]> => (visible ??= (await this.published.visibleTo(ctx, own)).map((v) => v.stored));
    if (full) {
      const hit = (await published()).find((r) => r.id === full[1]);
      if (hit) return { stored: hit, published: true };
      throw notFound(`No such image: ${ref}`);
    }
    let parsed: ImageReference | undefined;
    try {
      parsed = parseReference(ref);
    } catch {
      parsed = undefined;
    }
    if (parsed !== undefined) {
      const byReference = (all: Stored<ImageRecord>[]): Stored<ImageRecord> | undefined =>
        parsed.digest !== undefined && parsed.tag === undefined
          ? all.find((r) => r.value.repoDigests.includes(`${parsed.name}@${parsed.digest}`))
          : all.find((r) => r.value.repoTags.includes(familiarTagged(parsed)));
      const mine = byReference(own);
      if (mine) return { stored: mine, published: false };
      const theirs = byReference(await published());
      if (theirs) return { stored: theirs, published: true };
    }
    const prefix = /^(?:sha256:)?([0-9a-f]{1,63})$/.exec(ref);
    if (prefix) {
      const ownIds = new Set(own.map((r) => r.id));
      const matches = [...own, ...(await published()).filter((r) => !ownIds.has(r.id))].filter((r) => r.id.startsWith(prefix[1]!));
      if (matches.length > 1) throw invalidArgument(`multiple IDs found with provided prefix: ${ref}`);
      if (matches.length === 1) return { stored: matches[0]!, published: !ownIds.has(matches[0]!.id) };
    }
    throw notFound(`No such image: ${parsed !== undefined ? familiarTagged(parsed) : ref}`);
  }

  /**
   * The tenant's images (`docker images`). With `withPublished`, the operator's published
   * images it can use are listed too (without the references its own images shadow).
   */
  async list(
    ctx: RequestContext,
    filters: Readonly<Record<string, readonly string[]>> = {},
    options: { withPublished?: boolean } = {},
  ): Promise<(ImageRecord & { size: number })[]> {
    const parsed = await this.resolveFilterImages(ctx, parseImageFilters(filters));
    const own = await this.opts.store.list<ImageRecord>(ctx, IMAGE_KIND);
    const byId = new Map(own.map((r) => [r.value.id, r.value]));
    if (options.withPublished) {
      for (const { stored, listed } of await this.published.visibleTo(ctx, own)) {
        const mine = byId.get(stored.value.id);
        // One line per image: the tenant's own record of a published image shows both names.
        if (mine !== undefined) byId.set(mine.id, { ...mine, repoTags: [...mine.repoTags, ...stored.value.repoTags], repoDigests: [...mine.repoDigests, ...stored.value.repoDigests] });
        else if (listed) byId.set(stored.value.id, stored.value);
      }
    }
    return [...byId.values()]
      .filter((image) => matchImageFilters(image, parsed))
      .sort((a, b) => Date.parse(b.created) - Date.parse(a.created))
      .map((image) => ({ ...image, size: imageSize(image) }));
  }

  private async resolveFilterImages(ctx: RequestContext, filters: ImageFilters): Promise<ImageFilters> {
    const created = async (ref: string): Promise<number> => Date.parse((await this.find(ctx, ref)).value.created);
    return {
      ...filters,
      beforeTime: filters.before !== undefined ? await created(filters.before) : undefined,
      sinceTime: filters.since !== undefined ? await created(filters.since) : undefined,
    };
  }

  async history(ctx: RequestContext, ref: string): Promise<{ Id: string; Created: number; CreatedBy: string; Tags: string[] | null; Size: number; Comment: string }[]> {
    const { value } = await this.find(ctx, ref);
    const history = value.config.history ?? [];
    let layer = 0;
    const rows = history.map((h) => {
      const size = h.empty_layer ? 0 : (value.layerSizes[layer++] ?? 0);
      return { Id: '<missing>', Created: h.created ? Math.floor(Date.parse(h.created) / 1000) : 0, CreatedBy: h.created_by ?? '', Tags: null as string[] | null, Size: size, Comment: h.comment ?? '' };
    });
    if (rows.length === 0) {
      rows.push({ Id: '<missing>', Created: Math.floor(Date.parse(value.created) / 1000), CreatedBy: '', Tags: null, Size: imageSize(value), Comment: '' });
    }
    rows.reverse();
    rows[0]!.Id = value.id;
    rows[0]!.Tags = value.repoTags.length > 0 ? value.repoTags : null;
    return rows;
  }

  // ---- tags ------------------------------------------------------------------------------

  async tag(ctx: RequestContext, source: string, repo: string, tag?: string): Promise<void> {
    const target = parseReference(tag ? `${repo}:${tag}` : repo);
    if (target.digest !== undefined) throw invalidArgument('refusing to create a tag with a digest reference');
    await this.exclusive(async () => {
      const image = await this.locate(ctx, source);
      // A tag on a published image is the tenant's own reference: the tenant gets its own
      // record of the image (holding its layers), and the operator's stays as it was.
      if (image.published) await this.adoptPublished(ctx, image.stored.value);
      await this.addTag(ctx, image.stored.value.id, familiarTagged(target));
    });
  }

  /** Records a published image (content already here) as the tenant's own, without tags. */
  private async adoptPublished(ctx: RequestContext, image: ImageRecord): Promise<void> {
    const configBytes = await this.content.read(image.id);
    await this.addImage(ctx, configBytes, image.diffIds.map((d) => () => this.content.open(d)), undefined);
  }

  // ---- publishing (the operator's base images; published-images.ts) -----------------------

  /** `berth image publish REF`: one of the operator's images becomes readable by every tenant. */
  async publish(ctx: RequestContext, ref: string): Promise<{ id: string; repoTags: string[]; published: boolean }> {
    requireOperatorScope(ctx);
    return this.exclusive(async () => {
      const { value } = await this.find(ctx, ref);
      return { id: value.id, repoTags: value.repoTags, published: await this.published.add(value.id) };
    });
  }

  /**
   * `berth image unpublish REF`: tenants no longer see it and cannot create containers from
   * it; their containers made from it keep running (and keep its layers: see remove).
   */
  async unpublish(ctx: RequestContext, ref: string): Promise<{ id: string }> {
    requireOperatorScope(ctx);
    return this.exclusive(async () => {
      const { value } = await this.find(ctx, ref);
      if (!(await this.published.remove(value.id))) throw notFound(`image ${ref} is not published`);
      return { id: value.id };
    });
  }

  /**
   * A push of a name that is, for this tenant, only a published image: refused, since pushing
   * it would publish the operator's image under the operator's name.
   */
  async refusePublishedPush(ctx: RequestContext, name: string, tag: string | undefined): Promise<void> {
    if (ctx.tenant === OPERATOR_TENANT) return;
    let wanted: string;
    try {
      // The CLI names the repository in full ("docker.io/library/x"); records hold familiar names.
      wanted = repositoryOf(familiarTagged(parseReference(name)));
    } catch {
      return;
    }
    const matches = (r: Stored<ImageRecord>): boolean => r.value.repoTags.some((t) => repositoryOf(t) === wanted && (tag === undefined || t === `${wanted}:${tag}`));
    const own = await this.opts.store.list<ImageRecord>(ctx, IMAGE_KIND);
    if (own.some(matches)) return;
    if ((await this.published.visibleTo(ctx, own)).some((v) => matches(v.stored))) {
      throw forbidden(`${tag ? `${wanted}:${tag}` : wanted} is a base image published by the operator: a tenant cannot push it; docker tag it into a repository of your own and push that`);
    }
  }

  /** Puts `tagged` on the image, moving it off any other image of the tenant. */
  private async addTag(ctx: RequestContext, id: string, tagged: string): Promise<void> {
    const all = await this.opts.store.list<ImageRecord>(ctx, IMAGE_KIND);
    for (const other of all) {
      if (other.value.id !== id && other.value.repoTags.includes(tagged)) {
        const repoTags = other.value.repoTags.filter((t) => t !== tagged);
        await this.opts.store.update(ctx, IMAGE_KIND, other.id, { value: { ...other.value, repoTags }, expectedRevision: other.revision });
      }
    }
    const mine = all.find((r) => r.value.id === id);
    if (mine === undefined) throw notFound(`No such image: ${id}`);
    if (!mine.value.repoTags.includes(tagged)) {
      const value = { ...mine.value, repoTags: [...mine.value.repoTags, tagged], lastTagTime: new Date().toISOString() };
      await this.opts.store.update(ctx, IMAGE_KIND, mine.id, { value, expectedRevision: mine.revision });
    }
    this.event(ctx, 'tag', id, tagged);
  }

  /** Removes a tag ("name:tag") or a digest reference ("name@sha256:…") from the image. */
  private async removeTag(ctx: RequestContext, id: string, tagged: string): Promise<void> {
    const current = await this.opts.store.get<ImageRecord>(ctx, IMAGE_KIND, digestHex(id));
    const repoTags = current.value.repoTags.filter((t) => t !== tagged);
    const repoDigests = current.value.repoDigests.filter((d) => d !== tagged);
    await this.opts.store.update(ctx, IMAGE_KIND, current.id, { value: { ...current.value, repoTags, repoDigests }, expectedRevision: current.revision });
    this.event(ctx, 'untag', id, id);
  }

  // ---- load, import, save ----------------------------------------------------------------

  /** `docker load`: returns the lines the CLI prints ("Loaded image: x"). */
  async load(ctx: RequestContext, source: Readable): Promise<string[]> {
    await mkdir(this.tmpDir, { recursive: true });
    const archive = await openImageArchive(source, this.tmpDir);
    try {
      const loaded: string[] = [];
      for (const entry of archive.images) {
        const tags = entry.repoTags.map((t) => familiarTagged(parseReference(t)));
        await this.exclusive(async () => {
          const id = await this.addImage(ctx, entry.configBytes, entry.layerFiles.map((f) => () => createReadStream(f)), 'load');
          for (const tag of tags) await this.addTag(ctx, id, tag);
          if (tags.length === 0) loaded.push(`Loaded image ID: ${id}`);
          for (const tag of tags) loaded.push(`Loaded image: ${tag}`);
        });
      }
      return [...new Set(loaded)];
    } finally {
      await archive.cleanup();
    }
  }

  /** `docker import`: one layer from a rootfs tar (plain or gzipped); returns the image id. */
  async import(ctx: RequestContext, source: Readable, options: ImportOptions): Promise<string> {
    const tagged = options.repo ? familiarTagged(parseReference(options.tag ? `${options.repo}:${options.tag}` : options.repo)) : undefined;
    const runtime = applyChanges({}, options.changes);
    return this.exclusive(async () => {
      const layer = await this.content.ingest(decompressing(source));
      try {
        const created = new Date().toISOString();
        const comment = options.message || 'Imported from -';
        const config: ImageConfigJson = {
          architecture: 'amd64',
          comment,
          config: runtime,
          created,
          history: [{ created, comment }],
          os: 'linux',
          rootfs: { type: 'layers', diff_ids: [layer.digest] },
        };
        const id = await this.addImage(ctx, Buffer.from(JSON.stringify(config)), [() => this.content.open(layer.digest)], 'import');
        if (tagged !== undefined) await this.addTag(ctx, id, tagged);
        return id;
      } finally {
        // The blob stays only when the new image references it.
        if ((await this.refs.get(BLOB_KIND, digestHex(layer.digest))) === undefined) await this.content.delete(layer.digest);
      }
    });
  }

  /**
   * `docker save`: resolves every name first (an unknown one fails before a byte is
   * produced), then streams the archive. A failure while streaming destroys the stream.
   */
  async save(ctx: RequestContext, refs: string[]): Promise<Readable> {
    const byId = new Map<string, { record: ImageRecord; tags: string[] }>();
    for (const ref of refs) {
      const { value } = await this.find(ctx, ref);
      const entry = byId.get(value.id) ?? { record: value, tags: [] };
      byId.set(value.id, entry);
      if (isIdReference(ref, value.id)) continue;
      const parsed = parseReference(ref);
      // A bare repository name saves every tag of it, as docker save does.
      const tags = parsed.tag === undefined && parsed.digest === undefined ? value.repoTags.filter((t) => repositoryOf(t) === parsed.name) : [familiarTagged(parsed)];
      for (const tag of tags) if (!entry.tags.includes(tag)) entry.tags.push(tag);
    }
    const images: ArchiveImage[] = [];
    for (const { record, tags } of byId.values()) {
      const layers = await Promise.all(
        record.diffIds.map(async (diffId) => ({ diffId, size: await this.content.size(diffId), open: async () => this.content.open(diffId) })),
      );
      images.push({ configBytes: await this.content.read(record.id), layers, repoTags: tags });
    }
    const out = new PassThrough();
    writeImageArchive(images, out).then(
      () => {
        for (const id of byId.keys()) this.event(ctx, 'save', id, id);
      },
      (err: unknown) => {
        this.opts.logger.warn({ err }, 'image save failed');
        out.destroy(err as Error);
      },
    );
    return out;
  }

  // ---- registry: what pull and push (src/server/registry/) need ---------------------------

  async hasContent(digest: string): Promise<boolean> {
    return this.content.has(digest);
  }

  /**
   * Records a pulled image (config bytes given, layer tars already in the content store by
   * diff id), tags it and records its repo digest.
   */
  async addPulledImage(
    ctx: RequestContext,
    configBytes: Buffer,
    options: { tag?: string; repoDigest: string; onLayer?: (index: number, phase: 'extracting' | 'done') => void },
  ): Promise<{ id: string }> {
    return this.exclusive(async () => {
      const id = sha256Digest(configBytes);
      const config = parseImageConfig(configBytes);
      const ref = options.tag ?? options.repoDigest;
      await this.addImage(ctx, configBytes, config.rootfs.diff_ids.map((d) => () => this.content.open(d)), undefined, options.onLayer);
      if (options.tag !== undefined) await this.addTag(ctx, id, options.tag);
      await this.addRepoDigest(ctx, id, options.repoDigest);
      this.event(ctx, 'pull', ref, ref);
      return { id };
    });
  }

  /**
   * Records `name@digest` on the image (after a push). As dockerd's reference store, a digest
   * reference another image already holds stays there (a digest names one manifest; when a
   * manifest list resolves to another platform's image, the first image keeps it).
   */
  async recordRepoDigest(ctx: RequestContext, id: string, repoDigest: string): Promise<void> {
    await this.exclusive(() => this.addRepoDigest(ctx, id, repoDigest));
  }

  private async addRepoDigest(ctx: RequestContext, id: string, repoDigest: string): Promise<void> {
    const all = await this.opts.store.list<ImageRecord>(ctx, IMAGE_KIND);
    if (all.some((r) => r.value.repoDigests.includes(repoDigest))) return;
    const mine = all.find((r) => r.value.id === id);
    if (mine === undefined) throw notFound(`No such image: ${id}`);
    const repoDigests = [...mine.value.repoDigests, repoDigest];
    await this.opts.store.update(ctx, IMAGE_KIND, mine.id, { value: { ...mine.value, repoDigests }, expectedRevision: mine.revision });
  }

  /** Deletes content blobs (layers a failed pull downloaded) that no image uses. */
  async releaseUnusedContent(digests: string[]): Promise<void> {
    await this.exclusive(async () => {
      for (const digest of digests) {
        if ((await this.refs.get(BLOB_KIND, digestHex(digest))) === undefined) await this.content.delete(digest);
      }
    });
  }

  /**
   * Stores an image from its exact config bytes and its layer tars, and records it for the
   * tenant (without tags). A no-op when the tenant has it already. On failure nothing stays.
   */
  private async addImage(
    ctx: RequestContext,
    configBytes: Buffer,
    layers: (() => Readable)[],
    action: 'load' | 'import' | undefined,
    onLayer?: (index: number, phase: 'extracting' | 'done') => void,
  ): Promise<string> {
    const id = sha256Digest(configBytes);
    const hex = digestHex(id);
    const config = parseImageConfig(configBytes);
    try {
      await this.opts.store.get(ctx, IMAGE_KIND, hex);
      return id;
    } catch (err) {
      if (!isKind(err, 'NotFound')) throw err;
    }
    const user = `${ctx.tenant}/${hex}`;
    // A `docker load` archive's layers are the client's bytes: they are checked against their
    // diff ids even where the shared store already has that layer, or a tenant could claim
    // another tenant's private layer by naming its diff id beside a made-up tar.
    const { chainIds: chains, layerSizes } = await this.retainContent(user, configBytes, layers, onLayer, action === 'load');
    try {
      const record: ImageRecord = {
        id,
        repoTags: [],
        repoDigests: [],
        diffIds: config.rootfs.diff_ids,
        chainIds: chains,
        layerSizes,
        config,
        created: config.created ?? new Date().toISOString(),
      };
      await this.opts.store.create(ctx, IMAGE_KIND, { id: hex, value: record });
    } catch (err) {
      await this.releaseContent(user, id, config.rootfs.diff_ids, chains).catch((e: unknown) => this.opts.logger.error({ err: e }, 'image rollback failed'));
      throw err;
    }
    if (action !== undefined) this.event(ctx, action, id, id);
    this.opts.onImageAdded?.(id);
    return id;
  }

  /**
   * Puts an image's config blob and layers (ingested and unpacked when new) in the stores and
   * records `user` as one of their users. On failure `user` holds nothing.
   */
  private async retainContent(
    user: string,
    configBytes: Buffer,
    layers: (() => Readable)[],
    onLayer?: (index: number, phase: 'extracting' | 'done') => void,
    verifyKnownLayers = false,
  ): Promise<HeldImage> {
    const id = sha256Digest(configBytes);
    const config = parseImageConfig(configBytes);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== layers.length) {
      throw invalidArgument(`invalid image archive: config lists ${diffIds.length} layers, the manifest ${layers.length}`);
    }
    const chains = chainIds(diffIds);
    try {
      const layerSizes: number[] = [];
      for (let i = 0; i < diffIds.length; i++) {
        const diffId = diffIds[i]!;
        const chain = chains[i]!;
        if (!(await this.content.has(diffId))) await this.content.ingest(decompressing(layers[i]!()), diffId);
        else if (verifyKnownLayers) await expectDigest(decompressing(layers[i]!()), diffId);
        const known = await this.refs.get(LAYER_KIND, digestHex(chain));
        let size = known?.size;
        onLayer?.(i, 'extracting');
        if (size === undefined || !(await this.layers.has(chain))) {
          const scan = await this.layers.scan(diffId);
          size = scan.size;
          await this.layers.commit(chain, diffId, scan);
        }
        onLayer?.(i, 'done');
        layerSizes.push(size);
        await this.refs.addUser(BLOB_KIND, digestHex(diffId), user);
        await this.refs.addUser(LAYER_KIND, digestHex(chain), user, size);
      }
      if (!(await this.content.has(id))) await this.content.ingest(streamOf(configBytes), id);
      await this.refs.addUser(BLOB_KIND, digestHex(id), user);
      return { id, config, diffIds, chainIds: chains, layerSizes };
    } catch (err) {
      await this.releaseContent(user, id, diffIds, chains).catch((e: unknown) => this.opts.logger.error({ err: e }, 'image rollback failed'));
      throw err;
    }
  }

  // ---- build and commit (src/server/build) ------------------------------------------------

  /**
   * Stores an image's content on behalf of `holder` (a build cache entry) without an image
   * record, so its layers can be run and reused. Layers not stored yet are read from
   * `newLayers` (diff id → uncompressed tar file).
   */
  async holdImage(holder: string, configBytes: Buffer, newLayers: ReadonlyMap<string, string>): Promise<HeldImage> {
    const config = parseImageConfig(configBytes);
    return this.exclusive(() => this.retainContent(holder, configBytes, this.layerSources(config, newLayers)));
  }

  /** Drops `holder`'s hold on an image's content; returns the chain ids of layers deleted. */
  async releaseHeldImage(holder: string, image: Pick<HeldImage, 'id' | 'diffIds' | 'chainIds'>): Promise<string[]> {
    return this.exclusive(() => this.releaseContent(holder, image.id, image.diffIds, image.chainIds));
  }

  /** The config of an image whose content is stored (held by an image or a build cache entry). */
  async storedConfig(id: string): Promise<ImageConfigJson> {
    return parseImageConfig(await this.content.read(id));
  }

  /**
   * Records an image the builder or `docker commit` made (layers as in holdImage) and tags it.
   */
  async createImage(ctx: RequestContext, configBytes: Buffer, newLayers: ReadonlyMap<string, string>, tags: readonly string[]): Promise<string> {
    const config = parseImageConfig(configBytes);
    const tagged = tags.map((t) => {
      const parsed = parseReference(t);
      if (parsed.digest !== undefined) throw invalidArgument('refusing to create a tag with a digest reference');
      return familiarTagged(parsed);
    });
    return this.exclusive(async () => {
      const id = await this.addImage(ctx, configBytes, this.layerSources(config, newLayers), undefined);
      for (const tag of tagged) await this.addTag(ctx, id, tag);
      return id;
    });
  }

  private layerSources(config: ImageConfigJson, newLayers: ReadonlyMap<string, string>): (() => Readable)[] {
    return config.rootfs.diff_ids.map((diffId) => () => {
      const file = newLayers.get(diffId);
      return file !== undefined ? createReadStream(file) : this.content.open(diffId);
    });
  }

  /** Drops `user` from an image's content and deletes what nobody uses; returns removed chain ids. */
  private async releaseContent(user: string, id: string, diffIds: string[], chains: string[]): Promise<string[]> {
    const removed: string[] = [];
    if (await this.refs.dropUser(BLOB_KIND, digestHex(id), user)) await this.content.delete(id);
    for (let i = chains.length - 1; i >= 0; i--) {
      if (await this.refs.dropUser(LAYER_KIND, digestHex(chains[i]!), user)) {
        if (await this.layers.has(chains[i]!)) removed.push(chains[i]!);
        await this.layers.remove(chains[i]!);
      }
      if (await this.refs.dropUser(BLOB_KIND, digestHex(diffIds[i]!), user)) await this.content.delete(diffIds[i]!);
    }
    return removed;
  }

  // ---- delete and prune ------------------------------------------------------------------

  /** `docker rmi`, with dockerd's rules for tags, force and containers (daemon/images/image_delete.go). */
  async remove(ctx: RequestContext, ref: string, options: { force: boolean; prune: boolean }): Promise<DeleteItem[]> {
    return this.exclusive(async () => {
      const located = await this.locate(ctx, ref);
      if (located.published) throw forbidden(`unable to remove ${ref}: it is a base image published by the operator, which a tenant cannot remove`);
      const { value: image } = located.stored;
      await this.guardOperatorDelete(ctx, image, ref);
      const items: DeleteItem[] = [];
      const containers = await this.opts.usage.containersUsing(ctx, image.id);
      const byId = isIdReference(ref, image.id);
      let quiet = false;
      if (!byId) {
        const parsed = parseReference(ref);
        const tagged = familiarTagged(parsed);
        if (!options.force && image.repoTags.length <= 1 && containers.length > 0) {
          throw conflict(
            `conflict: unable to remove repository reference "${ref}" (must force) - container ${short(containers[0]!.id)} is using its referenced image ${short(image.id)}`,
          );
        }
        await this.removeTag(ctx, image.id, tagged);
        items.push({ Untagged: tagged });
        const tagsLeft = image.repoTags.filter((t) => t !== tagged);
        let digestsLeft = image.repoDigests.filter((d) => d !== tagged);
        // The repository's last tag takes its digest references with it (dockerd's rule).
        if (parsed.digest === undefined && !tagsLeft.some((t) => repositoryOf(t) === parsed.name)) {
          for (const ref of digestsLeft.filter((d) => d.startsWith(`${parsed.name}@`))) {
            await this.removeTag(ctx, image.id, ref);
            items.push({ Untagged: ref });
          }
          digestsLeft = digestsLeft.filter((d) => !d.startsWith(`${parsed.name}@`));
        }
        if (tagsLeft.length + digestsLeft.length > 0) return items;
        quiet = true;
      } else if (new Set([...image.repoTags, ...image.repoDigests].map((r) => repositoryOf(r.split('@')[0]!))).size <= 1) {
        const blocker = this.conflictOf(image, containers, options.force ? 'hard' : 'hard+stopped', false);
        if (blocker) throw blocker;
        for (const tag of [...image.repoTags, ...image.repoDigests]) {
          await this.removeTag(ctx, image.id, tag);
          items.push({ Untagged: tag });
        }
      }
      const current = (await this.opts.store.get<ImageRecord>(ctx, IMAGE_KIND, digestHex(image.id))).value;
      const blocker = this.conflictOf(current, containers, options.force ? 'hard' : 'all', true);
      if (blocker) {
        if (quiet && (current.repoTags.length > 0 || containers.length > 0)) return items;
        throw blocker;
      }
      await this.deleteImage(ctx, current, items);
      return items;
    });
  }

  /**
   * The operator may not delete an image tenants rely on: a published one (unpublish it first),
   * or one their containers run without an image record of their own. Untagging one of several
   * references is still allowed: the image stays.
   */
  private async guardOperatorDelete(ctx: RequestContext, image: ImageRecord, ref: string): Promise<void> {
    if (ctx.tenant !== OPERATOR_TENANT) return;
    const blocker = await this.operatorDeleteBlocker(image);
    if (blocker === undefined) return;
    if (!isIdReference(ref, image.id)) {
      const parsed = parseReference(ref);
      const tagged = familiarTagged(parsed);
      const tagsLeft = image.repoTags.filter((t) => t !== tagged);
      const digestsLeft = image.repoDigests.filter((d) => d !== tagged && (tagsLeft.some((t) => repositoryOf(t) === parsed.name) || !d.startsWith(`${parsed.name}@`)));
      if (tagsLeft.length + digestsLeft.length > 0) return;
    }
    throw blocker;
  }

  private async operatorDeleteBlocker(image: ImageRecord): Promise<Error | undefined> {
    if (await this.published.isPublished(image.id)) {
      return conflict(`conflict: unable to delete ${short(image.id)} - image is published to tenants (berth image unpublish it first)`);
    }
    const users = await this.published.tenantContainersUsing(image.id);
    if (users.length > 0) {
      return conflict(`conflict: unable to delete ${short(image.id)} (cannot be forced) - image is being used by ${users.length} container(s) of tenants`);
    }
    return undefined;
  }

  private conflictOf(
    image: ImageRecord,
    containers: { id: string; running: boolean }[],
    mask: 'hard' | 'hard+stopped' | 'all',
    checkReferences: boolean,
  ): Error | undefined {
    const running = containers.find((c) => c.running);
    if (running) return conflict(`conflict: unable to delete ${short(image.id)} (cannot be forced) - image is being used by running container ${short(running.id)}`);
    if (mask === 'hard') return undefined;
    if (mask === 'all' && checkReferences && image.repoTags.length + image.repoDigests.length > 0) {
      return conflict(`conflict: unable to delete ${short(image.id)} (must be forced) - image is referenced in multiple repositories`);
    }
    const stopped = containers.find((c) => !c.running);
    if (stopped) return conflict(`conflict: unable to delete ${short(image.id)} (must be forced) - image is being used by stopped container ${short(stopped.id)}`);
    return undefined;
  }

  private async deleteImage(ctx: RequestContext, image: ImageRecord, items: DeleteItem[]): Promise<void> {
    for (const tag of image.repoTags) {
      items.push({ Untagged: tag });
      this.event(ctx, 'untag', image.id, image.id);
    }
    await this.opts.store.delete(ctx, IMAGE_KIND, digestHex(image.id));
    const removed = await this.releaseContent(`${ctx.tenant}/${digestHex(image.id)}`, image.id, image.diffIds, image.chainIds);
    this.event(ctx, 'delete', image.id, image.id);
    items.push({ Deleted: image.id });
    for (const chain of removed) items.push({ Deleted: chain });
  }

  /** `docker image prune`: dangling images by default, all unused with dangling=false. */
  async prune(ctx: RequestContext, filters: Readonly<Record<string, readonly string[]>>): Promise<{ ImagesDeleted: DeleteItem[]; SpaceReclaimed: number }> {
    const parsed = pruneFilters(filters);
    return this.exclusive(async () => {
      const items: DeleteItem[] = [];
      let reclaimed = 0;
      for (const { value: image } of await this.opts.store.list<ImageRecord>(ctx, IMAGE_KIND)) {
        if (!matchImageFilters(image, parsed)) continue;
        if ((await this.opts.usage.containersUsing(ctx, image.id)).length > 0) continue;
        if (ctx.tenant === OPERATOR_TENANT && (await this.operatorDeleteBlocker(image)) !== undefined) continue;
        const before = items.length;
        await this.deleteImage(ctx, image, items);
        reclaimed += items
          .slice(before)
          .filter((i): i is { Deleted: string } => 'Deleted' in i && i.Deleted !== image.id)
          .reduce((sum, i) => sum + (image.layerSizes[image.chainIds.indexOf(i.Deleted)] ?? 0), 0);
      }
      if (items.length > 0) this.opts.events.publish(ctx, { Type: 'image', Action: 'prune', Actor: { ID: '', Attributes: { reclaimed: String(reclaimed) } } });
      return { ImagesDeleted: items, SpaceReclaimed: reclaimed };
    });
  }

  // ---- helpers ---------------------------------------------------------------------------

  private event(ctx: RequestContext, action: string, id: string, name: string): void {
    this.opts.events.publish(ctx, { Type: 'image', Action: action, Actor: { ID: id, Attributes: { name } } });
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** Whether the user named the image by (a prefix of) its id rather than by a reference. */
const isIdReference = (ref: string, id: string): boolean =>
  /^(?:sha256:)?[0-9a-f]{1,64}$/.test(ref) && digestHex(id).startsWith(ref.replace(/^sha256:/, ''));

function requireOperatorScope(ctx: RequestContext): void {
  if (ctx.tenant !== OPERATOR_TENANT) throw forbidden('only the operator publishes images');
}

const short = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);

const streamOf = (data: Buffer): Readable => Readable.from([data]);

/** Gunzips a layer stream when needed; a source error surfaces on the returned stream. */
function decompressing(source: Readable): Readable {
  const out = new AutoDecompress();
  source.on('error', (err) => out.destroy(err));
  // The consumer may attach only after an await (ContentStore.ingest makes its directories
  // first); without a listener an early error (a missing file) would end the process. The
  // consumer's pipeline still sees the error: the stream stays destroyed with it.
  out.on('error', () => undefined);
  return source.pipe(out);
}
