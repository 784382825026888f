/**
 * Tars in tests: build contexts and crafted archives made in memory; `docker save` archives,
 * `docker export` and `docker cp` output read back, and the layers inside a save archive.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

/** A tar of regular files, in memory, in the order given. */
export async function tarOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export interface TarEntry {
  header: tar.Header;
  /** The member's bytes where `keepData` chose them; empty otherwise. */
  data: Buffer;
}

/**
 * Every entry of a tar given as a file path, bytes or a stream, in order. Only the bytes of
 * the entries `keepData` chooses (regular files, unless told) are kept, so a large archive
 * can be read for a few members.
 */
export async function readTar(
  source: string | Buffer | NodeJS.ReadableStream,
  keepData: (header: tar.Header) => boolean = (header) => header.type === 'file',
): Promise<TarEntry[]> {
  const input = typeof source === 'string' ? createReadStream(source) : Buffer.isBuffer(source) ? Readable.from([source]) : source;
  const extract = tar.extract();
  const reading = pipeline(input, extract);
  const entries: TarEntry[] = [];
  try {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      if (keepData(entry.header)) for await (const chunk of entry) chunks.push(chunk as Buffer);
      else entry.resume();
      entries.push({ header: entry.header, data: Buffer.concat(chunks) });
    }
  } catch (err) {
    // Not a tar (or a broken one): the pipeline fails with the same error; report it once.
    await reading.catch(() => undefined);
    throw err;
  }
  await reading;
  return entries;
}

/**
 * The entries of each layer of a `docker save` archive, in archive order: legacy
 * `<id>/layer.tar` members and OCI `blobs/sha256/<hex>` blobs that are tars (the config and
 * manifests among the blobs are not, and are skipped).
 */
export async function saveArchiveLayers(saveTar: string): Promise<TarEntry[][]> {
  const blobs = await readTar(saveTar, (h) => h.type === 'file' && /(layer\.tar|blobs\/sha256\/[0-9a-f]{64})$/.test(h.name));
  const layers: TarEntry[][] = [];
  for (const blob of blobs) {
    if (blob.data.length === 0) continue;
    const members = await readTar(blob.data).catch(() => undefined);
    if (members !== undefined && members.length > 0) layers.push(members);
  }
  return layers;
}
