import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { RequestContext } from '../../common/context.js';
import { notFound } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { runLimited } from '../../common/run-limited.js';
import type { ContentProvider } from '../../agent/images/content-store.js';
import type { ImageRecord } from '../images/image-record.js';
import { repositoryOf, tagOf } from '../images/reference.js';
import type { RegistryCredentials } from './auth.js';
import type { BlobLocations, KnownBlob } from './blob-locations.js';
import { splitRepository, type RegistryEndpoints } from './endpoint.js';
import { MEDIA, type Descriptor } from './manifest.js';
import { ByteProgress, shortId, type ProgressSink } from './progress.js';
import { RegistryClient } from './registry-client.js';

/** The part of the image service a push reads from. */
export interface PushSource {
  readonly content: ContentProvider;
  /** The tenant's images, to find the tags of a repository. */
  list(ctx: RequestContext): Promise<ImageRecord[]>;
  recordRepoDigest(ctx: RequestContext, id: string, repoDigest: string): Promise<void>;
}

export interface PushRequest {
  /** Familiar repository name ("127.0.0.1:5000/app"). */
  name: string;
  /** One tag, or undefined for every tag of the repository (dockerd's rule). */
  tag?: string;
  credentials: RegistryCredentials;
}

/** Layers up to this size go up in one request; larger ones in chunks of this size. */
export const CHUNK_SIZE = 8 * 1024 * 1024;
/** Layers pushed at once (dockerd's max-concurrent-uploads default). */
const CONCURRENT_UPLOADS = 5;

/**
 * `docker push`: for each tag of the repository, makes sure the registry has every layer and
 * the config, then uploads a Docker schema 2 manifest under the tag and reports its digest as
 * the CLI expects (`<tag>: digest: sha256:… size: N`, plus the aux message).
 *
 * A layer (kept uncompressed in the content store) is skipped when the target repository
 * already has a blob known to hold it, mounted from another repository of the same registry
 * when one is known (BlobLocations), and otherwise gzipped into a temp file (to learn its
 * digest), checked for with HEAD, and uploaded: in one request when small, in chunks when
 * large.
 */
export class ImagePusher {
  constructor(
    private readonly opts: {
      images: PushSource;
      locations: BlobLocations;
      endpoints: RegistryEndpoints;
      tmpDir: string;
      logger: Logger;
    },
  ) {}

  async push(ctx: RequestContext, request: PushRequest, sink: ProgressSink): Promise<void> {
    const remote = splitRepository(request.name);
    const all = await this.opts.images.list(ctx);
    const targets: { tag: string; image: ImageRecord }[] = [];
    for (const image of all) {
      for (const tagged of image.repoTags) {
        if (repositoryOf(tagged) !== request.name) continue;
        if (request.tag === undefined || tagOf(tagged) === request.tag) targets.push({ tag: tagOf(tagged), image });
      }
    }
    sink.write({ status: `The push refers to repository [${remote.domain === 'docker.io' ? `docker.io/${remote.path}` : request.name}]` });
    if (targets.length === 0) {
      throw notFound(`An image does not exist locally with the tag: ${request.name}`);
    }
    const client = new RegistryClient(this.opts.endpoints.resolve(remote.domain), request.credentials);
    const repository = `${remote.domain}/${remote.path}`;
    for (const { tag, image } of targets) {
      const layers = await this.pushLayers(ctx, client, remote, repository, image, sink);
      const configBytes = await this.opts.images.content.read(image.id);
      const config: Descriptor = { mediaType: MEDIA.dockerConfig, size: configBytes.length, digest: image.id };
      if ((await client.statBlob(remote.path, image.id, [`repository:${remote.path}:pull,push`])) === undefined) {
        await client.uploadMonolithic(remote.path, image.id, configBytes.length, () => Readable.from([configBytes]));
      }
      const manifest = Buffer.from(
        JSON.stringify(
          {
            schemaVersion: 2,
            mediaType: MEDIA.dockerManifest,
            config: { mediaType: config.mediaType, size: config.size, digest: config.digest },
            layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest })),
          },
          null,
          3,
        ),
      );
      const digest = await client.putManifest(remote.path, tag, MEDIA.dockerManifest, manifest);
      await this.opts.images.recordRepoDigest(ctx, image.id, `${request.name}@${digest}`);
      sink.write({ status: `${tag}: digest: ${digest} size: ${manifest.length}` });
      sink.write({ progressDetail: {}, aux: { Tag: tag, Digest: digest, Size: manifest.length } });
    }
  }

  private async pushLayers(
    ctx: RequestContext,
    client: RegistryClient,
    remote: { domain: string; path: string },
    repository: string,
    image: ImageRecord,
    sink: ProgressSink,
  ): Promise<Descriptor[]> {
    const descriptors: Descriptor[] = new Array<Descriptor>(image.diffIds.length);
    const unique = [...new Set(image.diffIds)];
    for (const diffId of unique) sink.write({ status: 'Preparing', progressDetail: {}, id: shortId(diffId) });
    const pushed = new Map<string, Descriptor>();
    await runLimited(unique, CONCURRENT_UPLOADS, async (diffId) => {
      const id = shortId(diffId);
      const { descriptor, outcome } = await this.pushLayer(ctx, client, remote, diffId, sink);
      sink.write({ status: outcome, progressDetail: {}, id });
      await this.opts.locations.add(ctx, diffId, { digest: descriptor.digest, size: descriptor.size, mediaType: descriptor.mediaType }, repository);
      pushed.set(diffId, descriptor);
    });
    image.diffIds.forEach((diffId, i) => {
      descriptors[i] = pushed.get(diffId)!;
    });
    return descriptors;
  }

  private async pushLayer(
    ctx: RequestContext,
    client: RegistryClient,
    remote: { domain: string; path: string },
    diffId: string,
    sink: ProgressSink,
  ): Promise<{ descriptor: Descriptor; outcome: string }> {
    const scopes = [`repository:${remote.path}:pull,push`];
    const known = (await this.opts.locations.get(ctx, diffId)).filter((b) => b.mediaType === MEDIA.dockerLayerGzip || b.mediaType === MEDIA.ociLayerGzip);
    const asDescriptor = (b: KnownBlob | { digest: string; size: number }): Descriptor => ({ mediaType: MEDIA.dockerLayerGzip, digest: b.digest, size: b.size });
    const here = `${remote.domain}/${remote.path}`;
    for (const blob of known.filter((b) => b.repositories.includes(here))) {
      if ((await client.statBlob(remote.path, blob.digest, scopes)) === blob.size) return { descriptor: asDescriptor(blob), outcome: 'Layer already exists' };
    }
    for (const blob of known) {
      for (const repo of blob.repositories.filter((r) => r !== here && r.startsWith(`${remote.domain}/`)).reverse()) {
        const fromPath = repo.slice(remote.domain.length + 1);
        try {
          if (await client.mountBlob(remote.path, blob.digest, fromPath)) return { descriptor: asDescriptor(blob), outcome: `Mounted from ${fromPath}` };
        } catch (err) {
          // No pull access to the source: upload instead, as dockerd does.
          this.opts.logger.debug({ err, blob: blob.digest, fromPath }, 'cross-repository mount refused');
        }
      }
    }
    await mkdir(this.opts.tmpDir, { recursive: true });
    const tmp = join(this.opts.tmpDir, `push-${randomBytes(8).toString('hex')}`);
    try {
      const { digest, size } = await gzipToFile(this.opts.images.content.open(diffId), tmp);
      if ((await client.statBlob(remote.path, digest, scopes)) === size) return { descriptor: { mediaType: MEDIA.dockerLayerGzip, digest, size }, outcome: 'Layer already exists' };
      const progress = new ByteProgress(sink, shortId(diffId), 'Pushing', size);
      if (size <= CHUNK_SIZE) {
        await client.uploadMonolithic(remote.path, digest, size, () => {
          let sent = 0;
          return createReadStream(tmp).pipe(
            new Transform({
              transform(chunk: Buffer, _enc, callback: TransformCallback) {
                sent += chunk.length;
                progress.update(sent);
                callback(null, chunk);
              },
            }),
          );
        });
      } else {
        await client.uploadChunked(remote.path, digest, size, CHUNK_SIZE, (start, end) => createReadStream(tmp, { start, end }), (sent) => progress.update(sent));
      }
      return { descriptor: { mediaType: MEDIA.dockerLayerGzip, digest, size }, outcome: 'Pushed' };
    } finally {
      await rm(tmp, { force: true });
    }
  }
}

/** Gzips a layer tar into `path`, returning the compressed digest and size. */
async function gzipToFile(source: Readable, path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    source,
    createGzip(),
    new Transform({
      transform(chunk: Buffer, _enc, callback: TransformCallback) {
        hash.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    }),
    createWriteStream(path, { mode: 0o600 }),
  );
  return { digest: `sha256:${hash.digest('hex')}`, size };
}
