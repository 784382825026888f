import { posix } from 'node:path';
import type { InstalledPackage } from '../../server/advisor/model.js';
import { parseStanzas } from './control-file.js';
import { listDirInRoot, readResolvedFile, readTextInRoot } from './rootfs-files.js';

/**
 * Debian packages from dpkg's database: /var/lib/dpkg/status, and /var/lib/dpkg/status.d/*
 * where distroless images keep one stanza file per package (written by their build tools, no
 * dpkg inside).
 *
 * A package counts when its files are on disk: the status word of `Status:` (the third) is
 * installed, unpacked, half-configured, triggers-awaited or triggers-pending. Removed
 * (config-files), not-installed and half-installed entries are skipped. status.d stanzas
 * often have no Status field at all; they count. The Source field gives the source package
 * advisories are filed under, with its own version in parentheses when it differs from the
 * binary's (binNMUs, +b1).
 */

const STATUS = '/var/lib/dpkg/status';
const STATUS_D = '/var/lib/dpkg/status.d';
const FIELDS = new Set(['Package', 'Status', 'Version', 'Architecture', 'Source']);
const FILES_ON_DISK = new Set(['installed', 'unpacked', 'half-configured', 'triggers-awaited', 'triggers-pending']);

export async function readDpkgPackages(root: string): Promise<InstalledPackage[]> {
  const packages: InstalledPackage[] = [];
  const status = await readTextInRoot(root, STATUS);
  if (status !== undefined) packages.push(...parseDpkgStatus(status, STATUS));

  const { hostPath, entries } = await listDirInRoot(root, STATUS_D);
  const files = entries.filter((e) => e.isFile() && !e.name.endsWith('.md5sums') && !e.name.startsWith('.')).map((e) => e.name).sort();
  for (const name of files) {
    const text = (await readResolvedFile(root, posix.join(hostPath, name)))?.toString('utf8');
    if (text !== undefined) packages.push(...parseDpkgStatus(text, `${STATUS_D}/${name}`));
  }
  return packages;
}

export function parseDpkgStatus(text: string, location: string): InstalledPackage[] {
  const packages: InstalledPackage[] = [];
  for (const stanza of parseStanzas(text, FIELDS)) {
    const name = stanza.get('Package');
    const version = stanza.get('Version');
    if (!name || !version) continue;
    const status = stanza.get('Status');
    if (status !== undefined && !FILES_ON_DISK.has(status.split(/\s+/)[2] ?? '')) continue;
    const source = parseSourceField(stanza.get('Source'));
    const pkg: InstalledPackage = {
      ecosystem: 'deb',
      name,
      version,
      sourceName: source?.name ?? name,
      sourceVersion: source?.version ?? version,
      location,
    };
    const arch = stanza.get('Architecture');
    if (arch) pkg.architecture = arch;
    packages.push(pkg);
  }
  return packages;
}

/** `Source: glibc (2.36-9+deb12u4)` or `Source: glibc`. */
export function parseSourceField(value: string | undefined): { name: string; version?: string } | undefined {
  if (value === undefined || value === '') return undefined;
  const match = /^(\S+)(?:\s+\(([^)]+)\))?/.exec(value);
  if (!match) return undefined;
  return match[2] === undefined ? { name: match[1]! } : { name: match[1]!, version: match[2].trim() };
}
