/**
 * The installed packages and os-release of the Debian test image (berth-test/debian:bookworm),
 * read straight from its cached archive, for advisor tests and benchmarks on this branch.
 * (The product's inventory is src/agent/inventory's takeInventory(); this is a small
 * independent reader of the same dpkg status file so feeds and matching can be tested alone.)
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { parseDeb822 } from '../../src/server/advisor/feeds/debian-archive/deb822.js';
import { parseSourceField } from '../../src/server/advisor/feeds/debian-archive/packages-index.js';
import type { InstalledPackage, Inventory, OsRelease } from '../../src/server/advisor/model.js';
import { debianImageTar } from './test-images.js';

/** Reads the named members of a tar stream (the archive's layer is itself a tar member). */
async function tarMembers(stream: NodeJS.ReadableStream, wanted: (name: string) => boolean): Promise<Map<string, Buffer>> {
  const extract = tar.extract();
  const found = new Map<string, Buffer>();
  const reading = pipeline(stream, extract);
  for await (const entry of extract) {
    if (wanted(entry.header.name) && entry.header.type === 'file') {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      found.set(entry.header.name, Buffer.concat(chunks));
    } else {
      entry.resume();
    }
  }
  await reading;
  return found;
}

export function parseDpkgStatus(text: string, location = '/var/lib/dpkg/status'): InstalledPackage[] {
  const packages: InstalledPackage[] = [];
  for (const p of parseDeb822(text)) {
    const name = p.get('package');
    const version = p.get('version');
    if (name === undefined || version === undefined || !/ installed$/.test(p.get('status') ?? '')) continue;
    const { source, sourceVersion } = parseSourceField(p.get('source'), name, version);
    packages.push({ ecosystem: 'deb', name, version, sourceName: source, sourceVersion, architecture: p.get('architecture'), location });
  }
  return packages;
}

export function parseOsRelease(text: string): OsRelease {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m !== null) fields.set(m[1]!, m[2]!.replace(/^"(.*)"$/, '$1'));
  }
  return { id: fields.get('ID') ?? '', versionId: fields.get('VERSION_ID'), codename: fields.get('VERSION_CODENAME'), prettyName: fields.get('PRETTY_NAME') };
}

/** The test image's dpkg status text and os-release, and an Inventory made from them. */
export async function debianImageInventory(): Promise<{ statusText: string; inventory: Inventory }> {
  const archive = await debianImageTar();
  const top = await tarMembers(createReadStream(archive), (n) => n === 'manifest.json');
  const manifest = JSON.parse(top.get('manifest.json')!.toString()) as { Layers: string[] }[];
  const layerName = manifest[0]!.Layers[0]!;
  const layer = await tarMembers(createReadStream(archive), (n) => n === layerName);
  const { Readable } = await import('node:stream');
  const files = await tarMembers(Readable.from([layer.get(layerName)!]), (n) => n === 'var/lib/dpkg/status' || n === 'usr/lib/os-release');
  const statusText = files.get('var/lib/dpkg/status')!.toString('utf8');
  return {
    statusText,
    inventory: {
      schema: 1,
      os: parseOsRelease(files.get('usr/lib/os-release')?.toString('utf8') ?? ''),
      packages: parseDpkgStatus(statusText),
      takenAt: new Date().toISOString(),
    },
  };
}
