import type { InstalledPackage } from '../../server/advisor/model.js';
import { readTextInRoot } from './rootfs-files.js';

/**
 * Alpine packages from apk's installed database, /lib/apk/db/installed: stanzas of
 * single-letter "X:value" lines separated by blank lines. P name, V version, A architecture,
 * o origin (the source package, which Alpine's secdb keys on), L licence. The F/R/Z file
 * lines make up most of the file and are skipped.
 */

const INSTALLED = '/lib/apk/db/installed';

export async function readApkPackages(root: string): Promise<InstalledPackage[]> {
  const text = await readTextInRoot(root, INSTALLED);
  return text === undefined ? [] : parseApkInstalled(text, INSTALLED);
}

export function parseApkInstalled(text: string, location: string): InstalledPackage[] {
  const packages: InstalledPackage[] = [];
  let fields = new Map<string, string>();
  const flush = (): void => {
    const name = fields.get('P');
    const version = fields.get('V');
    if (name && version) {
      const pkg: InstalledPackage = { ecosystem: 'apk', name, version, sourceName: fields.get('o') || name, sourceVersion: version, location };
      const arch = fields.get('A');
      if (arch) pkg.architecture = arch;
      const license = fields.get('L');
      if (license) pkg.license = license;
      packages.push(pkg);
    }
    fields = new Map();
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      flush();
      continue;
    }
    if (line.length < 2 || line[1] !== ':') continue;
    const key = line[0]!;
    if ('PVAoL'.includes(key) && !fields.has(key)) fields.set(key, line.slice(2).trim());
  }
  flush();
  return packages;
}
