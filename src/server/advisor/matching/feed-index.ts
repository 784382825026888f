/**
 * A feed indexed for matching: advisories keyed by (ecosystem, release, package), so matching
 * an inventory is one map lookup per installed package.
 *
 * Terms: the key's `release` is `debian:bookworm` for OS packages and empty for npm/PyPI, whose
 * advisories hold for every distribution; the key's package is the source package for deb and
 * the (PEP 503 normalised, for PyPI) package name otherwise.
 *
 * When several feeds state the same advisory about the same package and release (the tracker,
 * Debian's OSV data and the archive builder all know CVE-2024-1234 in openssl on bookworm),
 * they are merged into one: state and fixed version from the most authoritative source
 * (tracker, then OSV, then the archive changelogs), severity from the distribution first, then
 * any other source that rated it.
 */
import type { Advisory, Ecosystem } from '../model.js';
import { parseDebianVersion, type DebianVersion } from '../versions/debian.js';
import { normalizePypiName } from '../versions/pypi.js';
import { compileRanges, type CompiledRanges } from './osv-ranges.js';

const SOURCE_PRIORITY = ['debian-tracker', 'osv', 'debian-archive-changelog'];

function sourceRank(source: string): number {
  const rank = SOURCE_PRIORITY.indexOf(source);
  return rank < 0 ? SOURCE_PRIORITY.length : rank;
}

/** One advisory ready to match: its deb fixed version parsed, a language advisory's ranges compiled. */
export interface IndexedAdvisory {
  advisory: Advisory;
  fixed: DebianVersion | null;
  ranges: CompiledRanges | null;
}

export function indexPackageName(ecosystem: Ecosystem, name: string): string {
  return ecosystem === 'PyPI' ? normalizePypiName(name) : name;
}

function key(ecosystem: Ecosystem, release: string | undefined, pkg: string): string {
  return `${ecosystem}\u0000${release ?? ''}\u0000${indexPackageName(ecosystem, pkg)}`;
}

function isOsEcosystem(ecosystem: Ecosystem): boolean {
  return ecosystem === 'deb' || ecosystem === 'apk' || ecosystem === 'rpm';
}

/** Merges statements about one advisory, package and release from several sources. */
function merge(statements: Advisory[]): Advisory {
  const ordered = [...statements].sort((a, b) => sourceRank(a.source) - sourceRank(b.source));
  const primary = ordered[0]!;
  const rated = ordered.filter((a) => a.severity !== 'unknown');
  const distribution = primary.release?.split(':')[0];
  const severityFrom = rated.find((a) => a.severitySource === distribution) ?? rated[0];
  const aliases = [...new Set(ordered.flatMap((a) => a.aliases ?? []))];
  return {
    ...primary,
    ...(aliases.length > 0 ? { aliases } : {}),
    summary: primary.summary ?? ordered.find((a) => a.summary !== undefined)?.summary,
    ...(severityFrom !== undefined ? { severity: severityFrom.severity, severitySource: severityFrom.severitySource } : {}),
  };
}

export class FeedIndex {
  private readonly byPackage = new Map<string, IndexedAdvisory[]>();
  /** How many advisories were given, before merging. */
  readonly size: number;

  constructor(advisories: Advisory[]) {
    this.size = advisories.length;
    const statements = new Map<string, Map<string, Advisory[]>>();
    for (const advisory of advisories) {
      // An OS advisory without a release could match any distribution: refuse to guess.
      if (isOsEcosystem(advisory.ecosystem) && advisory.release === undefined) continue;
      const packageKey = key(advisory.ecosystem, isOsEcosystem(advisory.ecosystem) ? advisory.release : undefined, advisory.package);
      let byId = statements.get(packageKey);
      if (byId === undefined) statements.set(packageKey, (byId = new Map()));
      const list = byId.get(advisory.id);
      if (list === undefined) byId.set(advisory.id, [advisory]);
      else list.push(advisory);
    }
    for (const [packageKey, byId] of statements) {
      const indexed: IndexedAdvisory[] = [];
      for (const list of byId.values()) {
        if (isOsEcosystem(list[0]!.ecosystem)) {
          const advisory = merge(list);
          const fixed = advisory.ecosystem === 'deb' && advisory.fixedVersion !== undefined ? parseDebianVersion(advisory.fixedVersion) : null;
          indexed.push({ advisory, fixed, ranges: null });
        } else {
          // OSV records of one id can split a package's ranges over several affected entries:
          // each keeps its own ranges.
          for (const advisory of list) indexed.push({ advisory, fixed: null, ranges: compileRanges(advisory) });
        }
      }
      this.byPackage.set(packageKey, indexed);
    }
  }

  /** Advisories about `pkg` (source package for deb) in `release` (OS ecosystems only). */
  lookup(ecosystem: Ecosystem, release: string | undefined, pkg: string): readonly IndexedAdvisory[] {
    return this.byPackage.get(key(ecosystem, isOsEcosystem(ecosystem) ? release : undefined, pkg)) ?? [];
  }
}
