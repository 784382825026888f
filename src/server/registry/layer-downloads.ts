import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { invalidArgument, isKind, notImplemented } from '../../common/errors.js';
import { SingleFlight } from '../../common/single-flight.js';
import type { ContentIngester, ContentProvider } from '../../agent/images/content-store.js';
import { AutoDecompress } from '../../agent/images/layer-unpack.js';
import type { Descriptor } from './manifest.js';
import { MEDIA } from './manifest.js';
import type { RegistryClient } from './registry-client.js';

/** What one layer download reports, to every pull waiting on it. */
export type DownloadEvent =
  | { kind: 'downloading'; current: number; total: number }
  | { kind: 'verifying' }
  | { kind: 'downloaded' }
  | { kind: 'extracting'; current: number; total: number };

export type DownloadListener = (event: DownloadEvent) => void;

export interface LayerJob {
  /** Downloads are shared, and trusted, only within one tenant. */
  tenant: string;
  client: RegistryClient;
  repoPath: string;
  layer: Descriptor;
  /** The uncompressed digest the image config lists for this layer. */
  diffId: string;
}

const GZIP_OR_PLAIN = new Set<string>([MEDIA.dockerLayerGzip, MEDIA.ociLayerGzip, MEDIA.ociLayer, '']);

/**
 * Downloads layers into the content store, each at most once at a time across a tenant's
 * pulls: a second pull of the tenant needing the same layer (same diff id) while it is in
 * flight joins the first download and hears its progress, instead of fetching the blob again.
 * Another tenant's pull of the same layer downloads and verifies it itself (the content store
 * keeps one copy): a tenant gets a layer only from a registry that gave it the bytes.
 *
 * Per layer: GET the blob into a private temp file while counting and hashing it; the size
 * and digest must equal the manifest's descriptor ("Verifying Checksum"); then gunzip it into
 * the content store, which commits it only when its digest equals the diff id of the config.
 * A failure at any step leaves no file behind.
 */
export class LayerDownloads {
  private readonly flights = new SingleFlight<void>();
  private readonly listeners = new Map<string, Set<DownloadListener>>();
  /** "<tenant>/<diff id>" this process downloaded and verified for the tenant. */
  private readonly verified = new Set<string>();

  constructor(
    private readonly content: ContentProvider & ContentIngester,
    private readonly tmpDir: string,
  ) {}

  /** Resolves once the layer's diff id is in the content store. */
  async fetch(job: LayerJob, listener: DownloadListener): Promise<{ joined: boolean }> {
    const key = `${job.tenant}/${job.diffId}`;
    const set = this.listeners.get(key) ?? new Set<DownloadListener>();
    this.listeners.set(key, set);
    set.add(listener);
    const { promise, joined } = this.flights.run(key, async () => {
      if (this.verified.has(key) && (await this.content.has(job.diffId))) return;
      await this.download(job, (event) => {
        for (const l of this.listeners.get(key) ?? []) l(event);
      });
      this.verified.add(key);
    });
    try {
      await promise;
      return { joined };
    } finally {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(key) === set) this.listeners.delete(key);
    }
  }

  private async download(job: LayerJob, emit: DownloadListener): Promise<void> {
    const { layer } = job;
    if (layer.mediaType === MEDIA.ociLayerZstd || layer.mediaType.endsWith('+zstd')) {
      throw notImplemented(`unsupported layer compression: zstd (layer ${layer.digest}); Berth pulls gzip and uncompressed layers only`);
    }
    if (!GZIP_OR_PLAIN.has(layer.mediaType)) throw notImplemented(`unsupported layer media type: ${layer.mediaType}`);
    await mkdir(this.tmpDir, { recursive: true });
    const tmp = join(this.tmpDir, `blob-${randomBytes(8).toString('hex')}`);
    try {
      const response = await job.client.openBlob(job.repoPath, layer.digest);
      const verifier = new BlobVerifier(layer.size, (current) => emit({ kind: 'downloading', current, total: layer.size }));
      await pipeline(response.body, verifier, createWriteStream(tmp, { mode: 0o600 }));
      emit({ kind: 'verifying' });
      if (verifier.size !== layer.size || verifier.digest !== layer.digest) {
        throw invalidArgument(`filesystem layer verification failed for digest ${layer.digest}`);
      }
      emit({ kind: 'downloaded' });
      let extracted = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, callback: TransformCallback) {
          extracted += chunk.length;
          emit({ kind: 'extracting', current: extracted, total: layer.size });
          callback(null, chunk);
        },
      });
      const source = createReadStream(tmp).pipe(counter);
      const decompress = new AutoDecompress();
      counter.on('error', (err) => decompress.destroy(err));
      try {
        await this.content.ingest(source.pipe(decompress), job.diffId);
      } catch (err) {
        if (isKind(err, 'InvalidArgument') && err.message.startsWith('digest mismatch')) {
          throw invalidArgument(`layer ${layer.digest} does not match the image config: its uncompressed digest is not the diff id ${job.diffId}`);
        }
        throw err;
      }
    } finally {
      await rm(tmp, { force: true });
    }
  }
}

/** Counts and hashes a blob as it streams; fails as soon as it outgrows its descriptor. */
class BlobVerifier extends Transform {
  size = 0;
  digest = '';
  private readonly hash = createHash('sha256');

  constructor(
    private readonly expectedSize: number,
    private readonly onBytes: (current: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.expectedSize) {
      callback(invalidArgument(`blob is larger than the ${this.expectedSize} bytes its manifest states`));
      return;
    }
    this.hash.update(chunk);
    this.onBytes(this.size);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.digest = `sha256:${this.hash.digest('hex')}`;
    callback();
  }
}
