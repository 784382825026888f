/**
 * npm versions are SemVer 2.0 as the `semver` package (npm's own) reads them. Registry
 * metadata is occasionally loose ("v1.2.3", "1.2.3 "), so parsing is loose; a version semver
 * cannot read at all is not comparable and `parseNpmVersion` returns null for it.
 */
import semver from 'semver';

const LOOSE = { loose: true } as const;

export function parseNpmVersion(version: string): semver.SemVer | null {
  return semver.parse(version.trim(), LOOSE);
}

/** -1, 0 or 1; throws a TypeError when either side is not a SemVer version. */
export function compareNpmVersions(a: string, b: string): number {
  return semver.compare(a.trim(), b.trim(), LOOSE);
}
