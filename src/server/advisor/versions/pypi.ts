/**
 * PyPI versions follow PEP 440 (epochs, pre/post/dev releases, local versions), compared with
 * `@renovatebot/pep440`. Names are compared after PEP 503 normalisation.
 */
import * as pep440 from '@renovatebot/pep440';

export function isValidPypiVersion(version: string): boolean {
  return pep440.valid(version.trim()) !== null;
}

/** -1, 0 or 1; throws when either side is not a PEP 440 version. */
export function comparePypiVersions(a: string, b: string): number {
  const ta = a.trim();
  const tb = b.trim();
  if (pep440.valid(ta) === null) throw new TypeError(`Invalid PEP 440 version: ${a}`);
  if (pep440.valid(tb) === null) throw new TypeError(`Invalid PEP 440 version: ${b}`);
  return Math.sign(pep440.compare(ta, tb));
}

/** PEP 503: lower case, runs of `-`, `_` and `.` become one `-`. */
export function normalizePypiName(name: string): string {
  return name.trim().toLowerCase().replace(/[-_.]+/g, '-');
}
