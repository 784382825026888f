/**
 * Images and raw registry uploads for pull/push tests.
 *
 * - randomImageTar(): a `docker load` archive of the busybox layer plus layers of random
 *   bytes (incompressible, so their sizes are what the test asks for), unique per call.
 * - putBlob / putManifest: upload content straight to a registry over its HTTP API (to build
 *   manifest lists the test controls, or manifests naming blobs Berth must refuse).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { writeImageArchive } from '../../src/agent/images/archive-writer.js';
import { sha256Digest } from '../../src/agent/images/digest.js';
import { openImageArchive } from '../../src/agent/images/archive-reader.js';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { busyboxImageTar } from './test-images.js';

async function tarOf(files: { name: string; data: Buffer }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const file of files) {
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: file.name, mode: 0o644, uid: 0, gid: 0, mtime: new Date('2024-01-01T00:00:00Z') }, file.data, (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** The busybox test image's layer tar and config. */
export async function busyboxParts(): Promise<{ layer: Buffer; config: Record<string, unknown> }> {
  const dir = await mkdtemp(join(tmpdir(), 'bb-parts-'));
  try {
    const archive = await openImageArchive(createReadStream(await busyboxImageTar()), dir);
    const entry = archive.images[0]!;
    const layer = await readFile(entry.layerFiles[0]!);
    const config = JSON.parse(entry.configBytes.toString('utf8')) as Record<string, unknown>;
    await archive.cleanup();
    return { layer, config };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Writes `<dir>/<name>.tar`: busybox plus one layer per entry of `randomLayerBytes` holding
 * /data/<i> with that many random bytes; tagged `tag`. Returns the path and the image id.
 */
export async function randomImageTar(dir: string, name: string, tag: string, randomLayerBytes: number[]): Promise<{ path: string; id: string }> {
  const { layer: busybox, config } = await busyboxParts();
  const layers = [busybox];
  for (let i = 0; i < randomLayerBytes.length; i++) layers.push(await tarOf([{ name: `data/${name}-${i}`, data: randomBytes(randomLayerBytes[i]!) }]));
  const configBytes = Buffer.from(
    JSON.stringify({
      ...config,
      rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256Digest(l)) },
      history: layers.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `test layer ${i}` })),
    }),
  );
  const path = join(dir, `${name}.tar`);
  await writeImageArchive(
    [{ configBytes, repoTags: [tag], layers: layers.map((l) => ({ diffId: sha256Digest(l), size: l.length, open: async () => Readable.from([l]) })) }],
    createWriteStream(path),
  );
  return { path, id: sha256Digest(configBytes) };
}

/** Uploads a blob to `<registryUrl>/v2/<repo>` (monolithic: POST then PUT ?digest=). */
export async function putBlob(registryUrl: string, repo: string, data: Buffer, headers: Record<string, string> = {}): Promise<string> {
  const digest = sha256Digest(data);
  const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  await start.arrayBuffer();
  if (start.status !== 202) throw new Error(`upload start: ${start.status}`);
  const location = new URL(start.headers.get('location')!, registryUrl);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: data, headers: { ...headers, 'content-type': 'application/octet-stream' } });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`upload put: ${put.status}`);
  return digest;
}

/** PUTs a manifest (or index) under `reference`; returns its digest. */
export async function putManifest(registryUrl: string, repo: string, reference: string, mediaType: string, body: unknown): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(JSON.stringify(body, null, 3));
  const res = await fetch(`${registryUrl}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body: bytes, headers: { 'content-type': mediaType } });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`manifest put: ${res.status} ${text}`);
  return { digest: sha256Digest(bytes), size: bytes.length };
}

/** GETs a manifest as JSON (with its digest). */
export async function getManifest(registryUrl: string, repo: string, reference: string): Promise<{ json: Record<string, unknown>; digest: string; size: number; mediaType: string }> {
  const res = await fetch(`${registryUrl}/v2/${repo}/manifests/${reference}`, {
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`manifest get: ${res.status}`);
  return { json: JSON.parse(bytes.toString('utf8')) as Record<string, unknown>, digest: sha256Digest(bytes), size: bytes.length, mediaType: res.headers.get('content-type') ?? '' };
}
