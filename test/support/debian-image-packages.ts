/**
 * The installed packages and os-release of the Debian test image (berth-test/debian:bookworm),
 * read straight from its cached archive, for advisor tests and benchmarks on this branch.
 * (The product's inventory is src/agent/inventory's takeInventory(); this is a small
 * independent reader of the same dpkg status file so feeds and matching can be tested alone.)
 */
import { parseDeb822 } from '../../src/server/advisor/feeds/debian-archive/deb822.js';
import { parseSourceField } from '../../src/server/advisor/feeds/debian-archive/packages-index.js';
import type { InstalledPackage, Inventory, OsRelease } from '../../src/server/advisor/model.js';
import { readTar } from './tar-files.js';
import { debianImageTar } from './test-images.js';

/** The bytes of the named regular files of a tar (the archive's layer is itself a tar member). */
async function tarMembers(source: string | Buffer, wanted: (name: string) => boolean): Promise<Map<string, Buffer>> {
  const entries = await readTar(source, (h) => h.type === 'file' && wanted(h.name));
  return new Map(entries.filter((e) => e.header.type === 'file' && wanted(e.header.name)).map((e) => [e.header.name, e.data]));
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
  const top = await tarMembers(archive, (n) => n === 'manifest.json');
  const manifest = JSON.parse(top.get('manifest.json')!.toString()) as { Layers: string[] }[];
  const layerName = manifest[0]!.Layers[0]!;
  const layer = await tarMembers(archive, (n) => n === layerName);
  const files = await tarMembers(layer.get(layerName)!, (n) => n === 'var/lib/dpkg/status' || n === 'usr/lib/os-release');
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
