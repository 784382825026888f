/**
 * OSV affected ranges evaluated as the OSV schema specifies: events sorted by version
 * (`introduced: "0"` lowest), a version is affected from an `introduced` up to but excluding
 * the next `fixed`, or up to and including the next `last_affected`. Also: affected when it
 * is in the explicit `versions` list. Version rules: SEMVER ranges by SemVer, ECOSYSTEM
 * ranges by the ecosystem's own (npm: SemVer, PyPI: PEP 440). A version the rule cannot
 * read matches no range (it can still match the versions list).
 */
import type { Advisory, AffectedRange } from '../model.js';
import { compareNpmVersions } from '../versions/npm.js';
import { versionScheme, type VersionComparator } from '../versions/index.js';

export interface Interval {
  introduced: string | null;
  fixed: string | null;
  lastAffected: string | null;
}

export interface CompiledRanges {
  ranges: { compare: VersionComparator; intervals: Interval[] }[];
  versions: Set<string>;
  compareVersions: VersionComparator | null;
}

function safe(compare: VersionComparator): VersionComparator {
  return (a, b) => {
    try {
      return compare(a, b);
    } catch {
      return Number.NaN;
    }
  };
}

type Event = AffectedRange['events'][number];

function eventVersion(e: Event): string {
  return 'introduced' in e ? e.introduced : 'fixed' in e ? e.fixed : e.last_affected;
}

function compileRange(range: AffectedRange, compare: VersionComparator): Interval[] {
  // An event whose version the rule cannot read (compare gives NaN even against itself)
  // cannot be placed in the order, so it is dropped rather than guessed.
  const events = range.events
    .filter((e) => !Number.isNaN(eventVersion(e) === '0' ? 0 : compare(eventVersion(e), eventVersion(e))))
    .sort((a, b) => {
      const va = eventVersion(a);
      const vb = eventVersion(b);
      if ('introduced' in a && va === '0') return -1;
      if ('introduced' in b && vb === '0') return 1;
      return compare(va, vb) || 0;
    });
  const intervals: Interval[] = [];
  let open: Interval | null = null;
  for (const e of events) {
    if ('introduced' in e) {
      if (open === null) open = { introduced: e.introduced === '0' ? null : e.introduced, fixed: null, lastAffected: null };
    } else if (open !== null) {
      if ('fixed' in e) open.fixed = e.fixed;
      else open.lastAffected = e.last_affected;
      intervals.push(open);
      open = null;
    }
  }
  if (open !== null) intervals.push(open);
  return intervals;
}

export function compileRanges(advisory: Advisory): CompiledRanges {
  const scheme = versionScheme(advisory.ecosystem);
  const ecosystemCompare = scheme === undefined ? null : safe(scheme.compare);
  const semverCompare = safe(compareNpmVersions);
  const ranges = (advisory.ranges ?? []).flatMap((range) => {
    const compare = range.type === 'SEMVER' ? semverCompare : ecosystemCompare;
    return compare === null ? [] : [{ compare, intervals: compileRange(range, compare) }];
  });
  return { ranges, versions: new Set(advisory.versions ?? []), compareVersions: ecosystemCompare };
}

/**
 * Whether `version` is affected, and if so the version that fixes it (the end of the interval
 * it falls in; null when none is known).
 */
export function evaluateRanges(compiled: CompiledRanges, version: string): { affected: boolean; fixedVersion: string | null } {
  for (const { compare, intervals } of compiled.ranges) {
    for (const interval of intervals) {
      if (interval.introduced !== null && !(compare(version, interval.introduced) >= 0)) continue;
      if (interval.fixed !== null && !(compare(version, interval.fixed) < 0)) continue;
      if (interval.lastAffected !== null && !(compare(version, interval.lastAffected) <= 0)) continue;
      return { affected: true, fixedVersion: interval.fixed };
    }
  }
  if (compiled.versions.size > 0 && (compiled.versions.has(version) || [...compiled.versions].some((v) => compiled.compareVersions?.(v, version) === 0))) {
    return { affected: true, fixedVersion: firstFixAbove(compiled, version) };
  }
  return { affected: false, fixedVersion: null };
}

/** The lowest fixed event above `version`, for a version listed explicitly. */
function firstFixAbove(compiled: CompiledRanges, version: string): string | null {
  let best: string | null = null;
  for (const { compare, intervals } of compiled.ranges) {
    for (const { fixed } of intervals) {
      if (fixed !== null && compare(fixed, version) > 0 && (best === null || compare(fixed, best) < 0)) best = fixed;
    }
  }
  return best;
}
