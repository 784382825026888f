import { randomUUID } from 'node:crypto';
import type { RequestContext } from '../../common/context.js';
import { invalidArgument, notFound } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { runLimited } from '../../common/run-limited.js';
import { sha256Digest } from '../../agent/images/digest.js';
import { parseImageConfig } from '../images/image-record.js';
import type { Store } from '../store/store.js';
import { familiarString, type ImageReference } from '../images/reference.js';
import type { RegistryCredentials } from './auth.js';
import type { RegistryEndpoints } from './endpoint.js';
import { splitRepository } from './endpoint.js';
import { readBody } from './http.js';
import type { BlobLocations } from './blob-locations.js';
import type { LayerDownloads } from './layer-downloads.js';
import {
  formatPlatform,
  MANIFEST_ACCEPT,
  MEDIA,
  parseManifest,
  parsePlatform,
  platformMatches,
  selectPlatform,
  type Descriptor,
  type ParsedManifest,
  type Platform,
} from './manifest.js';
import { ByteProgress, shortId, type ProgressSink } from './progress.js';
import { RegistryClient, type FetchedManifest } from './registry-client.js';

/** The part of the image service a pull writes to (a narrow role, see ImageService). */
export interface PulledImageStore {
  /**
   * Records an image whose config bytes are given and whose layer tars (by diff id) are in the
   * content store; tags it and records its repo digest. `onLayer` hears each layer's unpack.
   */
  addPulledImage(
    ctx: RequestContext,
    configBytes: Buffer,
    options: { tag?: string; repoDigest: string; onLayer?: (index: number, phase: 'extracting' | 'done') => void },
  ): Promise<{ id: string }>;
  /** Deletes these content blobs unless an image uses them. */
  releaseUnusedContent(digests: string[]): Promise<void>;
  hasContent(digest: string): Promise<boolean>;
  /** The tenant's images (their layers are what the tenant may reuse without downloading). */
  list(ctx: RequestContext): Promise<{ diffIds: string[] }[]>;
  /** The tenant's image a reference or id names; rejects when there is none. */
  find(ctx: RequestContext, ref: string): Promise<{ value: { id: string } }>;
  readonly content: { read(digest: string): Promise<Buffer> };
}

/**
 * Durable note of what a running pull may leave in the content store ("registry-pull", per
 * tenant, id random): written before the first layer download, deleted when the pull ends.
 * A note found at start-up belongs to a pull that died with Berth; reconcile releases its
 * layers unless an image uses them.
 */
export const PULL_NOTE_KIND = 'registry-pull';
export interface PullNote {
  diffIds: string[];
}

export interface PullRequest {
  reference: ImageReference;
  /** `--platform`; empty means this host's. */
  platform?: string;
  credentials: RegistryCredentials;
}

/** Layers fetched at once per pull (dockerd's max-concurrent-downloads default). */
const CONCURRENT_DOWNLOADS = 3;
const CONFIG_LIMIT = 8 * 1024 * 1024;

/**
 * `docker pull`: resolves a reference to one image manifest (choosing the platform from a
 * manifest list or OCI index), fetches and verifies its config, downloads the layers it lacks
 * in parallel (shared with concurrent pulls), and records the image with its tag and repo
 * digest. Progress goes out as Docker's JSON messages; the first is written only once the
 * manifest is resolved, so a missing image or refused login is a plain HTTP error as with
 * dockerd.
 *
 * On failure, layers this pull downloaded that no image uses (and no other pull still holds)
 * are deleted again: a failed pull leaves nothing behind.
 */
export class ImagePuller {
  /** Diff ids downloaded by pulls still running, so one pull's cleanup spares another's. */
  private readonly held = new Map<string, number>();

  constructor(
    private readonly opts: {
      images: PulledImageStore;
      downloads: LayerDownloads;
      locations: BlobLocations;
      endpoints: RegistryEndpoints;
      store: Store;
      logger: Logger;
    },
  ) {}

  /** Start-up: releases what pulls that died with the previous Berth had downloaded. */
  async reconcile(): Promise<void> {
    for (const note of await this.opts.store.listAllTenants<PullNote>(PULL_NOTE_KIND)) {
      await this.opts.images.releaseUnusedContent(note.value.diffIds);
      await this.opts.store.delete({ tenant: note.tenant, requestId: 'reconcile' }, PULL_NOTE_KIND, note.id);
    }
  }

  async pull(ctx: RequestContext, request: PullRequest, sink: ProgressSink): Promise<void> {
    const ref = request.reference;
    const remote = splitRepository(ref.name);
    const client = new RegistryClient(this.opts.endpoints.resolve(remote.domain), request.credentials);
    const wanted = parsePlatform(request.platform);
    const tagOrDigest = ref.digest ?? ref.tag ?? 'latest';
    const familiar = familiarString(ref.digest === undefined && ref.tag === undefined ? { ...ref, tag: 'latest' } : ref);

    const { top, image } = await this.resolveManifest(client, remote.path, ref, wanted, familiar);

    // An image this tenant already has needs no layer work at all (dockerd's shortcut).
    const present = await this.opts.images.find(ctx, image.config.digest).then(
      () => true,
      () => false,
    );
    const configBytes = present ? await this.opts.images.content.read(image.config.digest) : await this.fetchConfig(client, remote.path, image.config);
    const config = parseImageConfig(configBytes);
    const configPlatform = { os: config.os ?? 'linux', architecture: config.architecture ?? 'amd64', ...(config.variant ? { variant: config.variant } : {}) };
    if (request.platform !== undefined && request.platform !== '' && !platformMatches(configPlatform, wanted)) {
      throw notFound(
        `image with reference ${familiar} was found but does not match the specified platform: wanted ${formatPlatform(wanted)}, actual: ${formatPlatform(configPlatform)}`,
      );
    }
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== image.layers.length) {
      throw invalidArgument(`invalid image: the manifest lists ${image.layers.length} layers, the config ${diffIds.length}`);
    }

    // What the reference named before, for "Image is up to date" versus "Downloaded newer image".
    const previousId = await this.opts.images.find(ctx, ref.digest !== undefined ? `${ref.name}@${ref.digest}` : familiar).then(
      (r) => r.value.id,
      () => undefined,
    );
    // dockerd names a by-digest pull by its whole reference, a by-tag pull by its tag.
    sink.write({ status: `Pulling from ${remote.path}`, id: ref.digest !== undefined ? familiar : tagOrDigest });
    const downloaded: string[] = [];
    const holding: string[] = [];
    let note: string | undefined;
    try {
      const toFetch: { layer: Descriptor; diffId: string; index: number }[] = [];
      // Content is shared by all tenants, but a tenant reuses only layers its own images use:
      // any other layer it must fetch and verify from its registry, even if the bytes are here,
      // so naming someone else's diff id in a manifest gets nobody their layer.
      const mine = present ? new Set<string>() : new Set((await this.opts.images.list(ctx)).flatMap((i) => i.diffIds));
      for (let i = 0; i < image.layers.length && !present; i++) {
        const layer = image.layers[i]!;
        const diffId = diffIds[i]!;
        this.hold(diffId);
        holding.push(diffId);
        if (toFetch.some((t) => t.diffId === diffId)) continue;
        if (mine.has(diffId) && (await this.opts.images.hasContent(diffId))) sink.write({ status: 'Already exists', progressDetail: {}, id: shortId(layer.digest) });
        else toFetch.push({ layer, diffId, index: i });
      }
      if (toFetch.length > 0) {
        note = randomUUID();
        await this.opts.store.create<PullNote>(ctx, PULL_NOTE_KIND, { id: note, value: { diffIds: toFetch.map((t) => t.diffId) } });
      }
      for (const { layer } of toFetch) sink.write({ status: 'Pulling fs layer', progressDetail: {}, id: shortId(layer.digest) });
      await runLimited(toFetch, CONCURRENT_DOWNLOADS, async ({ layer, diffId }) => {
        const id = shortId(layer.digest);
        const downloading = new ByteProgress(sink, id, 'Downloading', layer.size);
        const extracting = new ByteProgress(sink, id, 'Extracting', layer.size);
        downloaded.push(diffId);
        await this.opts.downloads.fetch({ tenant: ctx.tenant, client, repoPath: remote.path, layer, diffId }, (event) => {
          if (event.kind === 'downloading') downloading.update(event.current);
          else if (event.kind === 'verifying') sink.write({ status: 'Verifying Checksum', progressDetail: {}, id });
          else if (event.kind === 'downloaded') sink.write({ status: 'Download complete', progressDetail: {}, id });
          else extracting.update(event.current);
        });
      });
      // "Pull complete" once a downloaded layer is unpacked — or, when a concurrent pull of the
      // same image recorded it first, once the image is there.
      const unreported = new Set(toFetch.map((t) => t.index));
      const complete = (index: number): void => {
        if (!unreported.delete(index)) return;
        sink.write({ status: 'Pull complete', progressDetail: {}, id: shortId(image.layers[index]!.digest) });
      };
      const repoDigest = `${ref.name}@${top.digest}`;
      const { id } = await this.opts.images.addPulledImage(ctx, configBytes, {
        ...(ref.digest === undefined ? { tag: familiar } : {}),
        repoDigest,
        onLayer: (index, phase) => {
          if (phase === 'done') complete(index);
        },
      });
      for (const index of [...unreported]) complete(index);
      const updated = previousId !== id;
      await this.recordLocations(ctx, image.layers, diffIds, `${remote.domain}/${remote.path}`);
      sink.write({ status: `Digest: ${top.digest}` });
      sink.write({ status: updated ? `Status: Downloaded newer image for ${familiar}` : `Status: Image is up to date for ${familiar}` });
    } catch (err) {
      this.release(holding);
      holding.length = 0;
      const orphans = downloaded.filter((d) => !this.held.has(d));
      await this.opts.images.releaseUnusedContent(orphans).catch((e: unknown) => this.opts.logger.error({ err: e }, 'cleanup after a failed pull'));
      throw err;
    } finally {
      this.release(holding);
      if (note !== undefined) await this.opts.store.delete(ctx, PULL_NOTE_KIND, note).catch((e: unknown) => this.opts.logger.warn({ err: e }, 'dropping a pull note'));
    }
  }

  /**
   * The manifest a reference names (`top`, whose digest becomes the repo digest) and the image
   * manifest for `wanted` (the same one unless `top` is an index). Every manifest's bytes are
   * checked against the digest it was asked for.
   */
  private async resolveManifest(
    client: RegistryClient,
    repoPath: string,
    ref: ImageReference,
    wanted: Platform,
    familiar: string,
  ): Promise<{ top: FetchedManifest; image: Extract<ParsedManifest, { kind: 'image' }> }> {
    const top = await client.getManifest(repoPath, ref.digest ?? ref.tag ?? 'latest', MANIFEST_ACCEPT, familiar);
    if (ref.digest !== undefined && top.digest !== ref.digest) throw invalidArgument(`manifest verification failed for digest ${ref.digest}`);
    const manifest = parseManifest(top.bytes, top.mediaType);
    if (manifest.kind === 'image') return { top, image: manifest };
    const entry = selectPlatform(manifest.manifests, wanted);
    const chosen = await client.getManifest(repoPath, entry.digest, MANIFEST_ACCEPT, familiar);
    if (chosen.digest !== entry.digest) throw invalidArgument(`manifest verification failed for digest ${entry.digest}`);
    const image = parseManifest(chosen.bytes, chosen.mediaType);
    if (image.kind !== 'image') throw invalidArgument(`manifest list entry ${entry.digest} is itself a manifest list`);
    return { top, image };
  }

  /** Remembers which compressed blob holds each layer, and where, for later pushes. */
  private async recordLocations(ctx: RequestContext, layers: Descriptor[], diffIds: string[], repository: string): Promise<void> {
    for (let i = 0; i < layers.length; i++) {
      const { digest, size, mediaType } = layers[i]!;
      if (mediaType === MEDIA.dockerLayerGzip || mediaType === MEDIA.ociLayerGzip) {
        await this.opts.locations.add(ctx, diffIds[i]!, { digest, size, mediaType }, repository);
      }
    }
  }

  private async fetchConfig(client: RegistryClient, repoPath: string, descriptor: Descriptor): Promise<Buffer> {
    if (descriptor.size > CONFIG_LIMIT) throw invalidArgument(`image config of ${descriptor.size} bytes is too large`);
    const response = await client.openBlob(repoPath, descriptor.digest);
    const bytes = await readBody(response, CONFIG_LIMIT);
    if (bytes.length !== descriptor.size || sha256Digest(bytes) !== descriptor.digest) {
      throw invalidArgument(`image config verification failed for digest ${descriptor.digest}`);
    }
    return bytes;
  }

  private hold(diffId: string): void {
    this.held.set(diffId, (this.held.get(diffId) ?? 0) + 1);
  }

  private release(diffIds: string[]): void {
    for (const d of diffIds) {
      const n = (this.held.get(d) ?? 1) - 1;
      if (n <= 0) this.held.delete(d);
      else this.held.set(d, n);
    }
  }
}
