import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BerthError, invalidArgument } from '../../common/errors.js';
import { digestHex, isDigest } from './digest.js';
import { cleanMemberName } from './layer-unpack.js';

/** One image found in an archive; files are paths inside the unpacked archive directory. */
export interface ArchiveEntry {
  configBytes: Buffer;
  /** Layer files, bottom first; plain or gzipped tars. */
  layerFiles: string[];
  /** References as written in the archive (familiar or fully qualified). */
  repoTags: string[];
}

/**
 * An image archive (`docker save` output) unpacked into a private directory.
 * Lifecycle: openImageArchive → read `images` → cleanup (always, also after a failure).
 */
export interface OpenedArchive {
  images: ArchiveEntry[];
  cleanup(): Promise<void>;
}

const MAX_LINK_HOPS = 16;

/**
 * Unpacks an archive stream into `<tmpRoot>/load-<random>` and finds its images. Accepts the
 * legacy Docker format (manifest.json, `<id>.json`, `<id>/layer.tar`, as Docker ≤ 24 saves)
 * and OCI image layouts (index.json + blobs/sha256), including Docker 25+ archives that are
 * both (manifest.json wins, as in dockerd). Only regular files and directories are written;
 * symlinks and hard links between archive members (older `docker save` links duplicate
 * layers) are followed by name, never created on disk.
 */
export async function openImageArchive(source: Readable, tmpRoot: string): Promise<OpenedArchive> {
  const dir = join(tmpRoot, `load-${randomBytes(8).toString('hex')}`);
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    await mkdir(dir, { recursive: true });
    const links = await unpackMembers(source, dir);
    const resolve = (name: string): string => join(dir, resolveLinks(cleanMemberName(name), links));
    const readMember = async (name: string): Promise<Buffer> => {
      try {
        return await readFile(resolve(name));
      } catch (err) {
        throw invalidArgument(`invalid image archive: missing ${name}`, err);
      }
    };
    let images: ArchiveEntry[];
    const manifest = await readFile(join(dir, 'manifest.json')).catch(() => undefined);
    if (manifest !== undefined) {
      images = await legacyImages(parseJson(manifest, 'manifest.json'), readMember, resolve);
    } else {
      const index = await readFile(join(dir, 'index.json')).catch(() => undefined);
      if (index === undefined) throw invalidArgument('invalid image archive: it holds neither manifest.json nor index.json');
      images = await ociImages(parseJson(index, 'index.json'), readMember, resolve);
    }
    return { images, cleanup };
  } catch (err) {
    await cleanup();
    if (err instanceof BerthError) throw err;
    throw invalidArgument(`invalid image archive: ${(err as Error).message}`, err);
  }
}

async function unpackMembers(source: Readable, dir: string): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  const extract = tar.extract();
  const reading = pipeline(source, extract);
  for await (const entry of extract) {
    const name = cleanMemberName(entry.header.name);
    const type = entry.header.type;
    if (name !== '' && (type === 'file' || type === 'contiguous-file')) {
      const path = join(dir, name);
      await mkdir(posix.dirname(path), { recursive: true });
      await pipeline(entry, createWriteStream(path));
      continue;
    }
    if (type === 'symlink' && entry.header.linkname) {
      links.set(name, cleanMemberName(posix.join(posix.dirname(name), entry.header.linkname)));
    } else if (type === 'link' && entry.header.linkname) {
      links.set(name, cleanMemberName(entry.header.linkname));
    }
    entry.resume();
  }
  await reading;
  return links;
}

function resolveLinks(name: string, links: Map<string, string>): string {
  let current = name;
  for (let hops = 0; hops < MAX_LINK_HOPS; hops++) {
    const target = links.get(current);
    if (target === undefined) return current;
    current = target;
  }
  throw invalidArgument(`invalid image archive: too many links at ${name}`);
}

function parseJson(data: Buffer, what: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw invalidArgument(`invalid image archive: ${what} is not valid JSON`, err);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const stringArray = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

async function legacyImages(
  manifest: unknown,
  readMember: (name: string) => Promise<Buffer>,
  resolve: (name: string) => string,
): Promise<ArchiveEntry[]> {
  if (!Array.isArray(manifest)) throw invalidArgument('invalid image archive: manifest.json is not a list');
  const images: ArchiveEntry[] = [];
  for (const item of manifest) {
    if (!isRecord(item) || typeof item.Config !== 'string') throw invalidArgument('invalid image archive: bad manifest.json entry');
    images.push({
      configBytes: await readMember(item.Config),
      layerFiles: stringArray(item.Layers).map(resolve),
      repoTags: stringArray(item.RepoTags),
    });
  }
  return images;
}

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

async function ociImages(
  index: unknown,
  readMember: (name: string) => Promise<Buffer>,
  resolve: (name: string) => string,
): Promise<ArchiveEntry[]> {
  const blobName = (digest: unknown): string => {
    if (typeof digest !== 'string' || !isDigest(digest)) throw invalidArgument('invalid image archive: bad descriptor digest');
    return `blobs/sha256/${digestHex(digest)}`;
  };
  const images: ArchiveEntry[] = [];
  const visit = async (descriptor: Record<string, unknown>, depth: number): Promise<void> => {
    if (depth > 4) throw invalidArgument('invalid image archive: indexes nested too deep');
    const body = parseJson(await readMember(blobName(descriptor.digest)), 'a manifest');
    if (!isRecord(body)) throw invalidArgument('invalid image archive: bad manifest');
    const mediaType = typeof body.mediaType === 'string' ? body.mediaType : String(descriptor.mediaType ?? '');
    if (INDEX_TYPES.has(mediaType) || Array.isArray(body.manifests)) {
      // A multi-platform index: load the linux/amd64 manifest, as dockerd does for this host.
      const manifests = (Array.isArray(body.manifests) ? body.manifests : []).filter(isRecord);
      const pick =
        manifests.find((m) => isRecord(m.platform) && m.platform.os === 'linux' && m.platform.architecture === 'amd64') ??
        manifests.find((m) => !isRecord(m.platform));
      if (pick === undefined) throw invalidArgument('invalid image archive: no manifest for linux/amd64');
      await visit({ ...pick, annotations: descriptor.annotations }, depth + 1);
      return;
    }
    if (!isRecord(body.config)) throw invalidArgument('invalid image archive: manifest without config');
    const layers = (Array.isArray(body.layers) ? body.layers : []).filter(isRecord);
    images.push({
      configBytes: await readMember(blobName(body.config.digest)),
      layerFiles: layers.map((l) => resolve(blobName(l.digest))),
      repoTags: ociRefName(descriptor.annotations),
    });
  };
  const manifests = isRecord(index) && Array.isArray(index.manifests) ? index.manifests.filter(isRecord) : [];
  for (const descriptor of manifests) await visit(descriptor, 0);
  return images;
}

/** A descriptor's name: containerd's full name, or an OCI ref.name that is a whole reference. */
function ociRefName(annotations: unknown): string[] {
  if (!isRecord(annotations)) return [];
  const full = annotations['io.containerd.image.name'];
  if (typeof full === 'string' && full !== '') return [full];
  const ref = annotations['org.opencontainers.image.ref.name'];
  if (typeof ref === 'string' && /[/:]/.test(ref)) return [ref];
  return [];
}
