/** Version rules per ecosystem: dpkg's for deb, SemVer for npm, PEP 440 for PyPI. */
import type { Ecosystem } from '../model.js';
import { compareDebianVersions } from './debian.js';
import { compareNpmVersions, parseNpmVersion } from './npm.js';
import { comparePypiVersions, isValidPypiVersion } from './pypi.js';

export { compareDebianVersions, compareParsedDebianVersions, parseDebianVersion, type DebianVersion } from './debian.js';
export { compareNpmVersions, parseNpmVersion } from './npm.js';
export { comparePypiVersions, isValidPypiVersion, normalizePypiName } from './pypi.js';

/** Compares two versions of one ecosystem: -1, 0 or 1. */
export type VersionComparator = (a: string, b: string) => number;

/** The comparator and validity test for an ecosystem's versions. */
export interface VersionScheme {
  compare: VersionComparator;
  isValid(version: string): boolean;
}

const SCHEMES: Partial<Record<Ecosystem, VersionScheme>> = {
  deb: { compare: compareDebianVersions, isValid: (v) => v.trim() !== '' },
  npm: { compare: compareNpmVersions, isValid: (v) => parseNpmVersion(v) !== null },
  PyPI: { compare: comparePypiVersions, isValid: isValidPypiVersion },
};

export function versionScheme(ecosystem: Ecosystem): VersionScheme | undefined {
  return SCHEMES[ecosystem];
}
