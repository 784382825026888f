import type { InstalledPackage } from '../../server/advisor/model.js';
import { parseHeaders } from './control-file.js';

/**
 * Python distributions from their installed metadata: `<name>.dist-info/METADATA` (wheels,
 * pip) and `<name>.egg-info/PKG-INFO` or a single-file `<name>.egg-info` (setuptools,
 * Debian's python3-* packages). Name and Version are required; the licence is
 * License-Expression (metadata 2.4), else a one-line License, else the licence classifiers.
 */

const FIELDS = new Set(['Name', 'Version', 'License', 'License-Expression', 'Classifier']);

export function parsePythonMetadata(text: string, location: string): InstalledPackage | undefined {
  const headers = parseHeaders(text, FIELDS);
  const name = headers.get('Name')?.[0];
  const version = headers.get('Version')?.[0];
  if (!name || !version) return undefined;
  const pkg: InstalledPackage = { ecosystem: 'PyPI', name, version, location };
  const license = pythonLicense(headers);
  if (license) pkg.license = license;
  return pkg;
}

function pythonLicense(headers: Map<string, string[]>): string | undefined {
  const expression = headers.get('License-Expression')?.[0];
  if (expression) return expression;
  const license = headers.get('License')?.[0];
  // Some projects paste the whole licence text here; that is no name.
  if (license && license !== 'UNKNOWN' && !license.includes('\n') && license.length <= 100) return license;
  const classifiers = (headers.get('Classifier') ?? [])
    .filter((c) => c.startsWith('License ::'))
    .map((c) => c.split('::').pop()!.trim())
    .filter((c) => c !== '' && c !== 'OSI Approved');
  return classifiers.length > 0 ? classifiers.join(' OR ') : undefined;
}
