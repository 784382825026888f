import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { digestHex, sha256Digest, type Digest } from './digest.js';

/** One image to put into an archive: its config exactly as stored, and its layer tars. */
export interface ArchiveImage {
  /** The config JSON bytes; the image id is their digest, so they are written untouched. */
  configBytes: Buffer;
  /** Uncompressed layer tars, bottom first; `diffId` is the digest of the bytes `open` yields. */
  layers: { diffId: Digest; size: number; open(): Promise<Readable> }[];
  /** Familiar references ("busybox:latest"); empty for an image saved by id. */
  repoTags: string[];
}

export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_TYPE_OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

// A fixed timestamp keeps archives of the same images byte-identical.
const ARCHIVE_MTIME = new Date(0);

/**
 * Writes images in the format Docker 25+ `docker save` produces, which is at once an OCI
 * image layout (oci-layout, index.json, blobs/sha256/...) and a legacy Docker archive
 * (manifest.json whose Config and Layers point into blobs/). Older daemons (20.10) read the
 * manifest.json half; OCI tools read the index. Blobs shared by several images are written once.
 */
export async function writeImageArchive(images: readonly ArchiveImage[], out: Writable): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, out);
  const written = new Set<string>();
  const legacyManifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const indexEntries: object[] = [];

  const addBuffer = async (name: string, data: Buffer | string): Promise<void> => {
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name, mtime: ARCHIVE_MTIME, mode: 0o644 }, data, (err) => (err ? reject(err) : resolve())),
    );
  };
  const addDir = (name: string): Promise<void> =>
    new Promise<void>((resolve, reject) =>
      pack.entry({ name, type: 'directory', mtime: ARCHIVE_MTIME, mode: 0o755 }, (err) => (err ? reject(err) : resolve())),
    );
  const addBlob = async (digest: Digest, data: Buffer): Promise<string> => {
    const path = `blobs/sha256/${digestHex(digest)}`;
    if (!written.has(path)) {
      written.add(path);
      await addBuffer(path, data);
    }
    return path;
  };

  try {
    await addDir('blobs/');
    await addDir('blobs/sha256/');
    for (const image of images) {
      const configDigest = sha256Digest(image.configBytes);
      const configPath = await addBlob(configDigest, image.configBytes);
      const layerPaths: string[] = [];
      for (const layer of image.layers) {
        const path = `blobs/sha256/${digestHex(layer.diffId)}`;
        layerPaths.push(path);
        if (written.has(path)) continue;
        written.add(path);
        const source = await layer.open();
        const entry = pack.entry({ name: path, size: layer.size, mtime: ARCHIVE_MTIME, mode: 0o644 });
        await pipeline(source, entry);
      }
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPE_OCI_MANIFEST,
          config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: configDigest, size: image.configBytes.length },
          layers: image.layers.map((l) => ({ mediaType: MEDIA_TYPE_OCI_LAYER, digest: l.diffId, size: l.size })),
        }),
      );
      const manifestDigest = sha256Digest(manifest);
      await addBlob(manifestDigest, manifest);
      const descriptor = { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: manifestDigest, size: manifest.length };
      if (image.repoTags.length === 0) indexEntries.push(descriptor);
      for (const tag of image.repoTags) {
        indexEntries.push({
          ...descriptor,
          annotations: {
            'io.containerd.image.name': fullyQualified(tag),
            'org.opencontainers.image.ref.name': tag.slice(tag.lastIndexOf(':') + 1),
          },
        });
      }
      legacyManifest.push({
        Config: configPath,
        RepoTags: image.repoTags.length > 0 ? [...image.repoTags] : null,
        Layers: layerPaths,
      });
    }
    await addBuffer('index.json', `${JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: indexEntries })}\n`);
    await addBuffer('manifest.json', `${JSON.stringify(legacyManifest)}\n`);
    await addBuffer('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => undefined);
    throw err;
  }
  // Surfaces a failure of the output side (e.g. the client went away) to the caller.
  await done;
}

/** "busybox:latest" → "docker.io/library/busybox:latest", as containerd names images. */
function fullyQualified(familiar: string): string {
  const slash = familiar.indexOf('/');
  const first = slash === -1 ? '' : familiar.slice(0, slash);
  const hasDomain = slash !== -1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasDomain) return familiar;
  return slash === -1 ? `docker.io/library/${familiar}` : `docker.io/${familiar}`;
}
