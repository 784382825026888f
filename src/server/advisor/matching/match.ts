/**
 * Matching an inventory against a feed index: pure and allocation-light, because the service
 * re-matches every stored inventory whenever a new feed arrives.
 *
 * - OS packages (deb) match only advisories of the inventory's own release, by SOURCE package
 *   and source version (a binNMU 1.2-3+b1 is source 1.2-3), compared as dpkg does. Tracker
 *   states: fixed -> a finding while installed < fixed; not-affected -> none; unfixed,
 *   postponed, ignored, undetermined -> a finding carrying that status and no fix.
 * - Kernel packages are skipped: a container runs the host's kernel.
 * - npm and PyPI packages match advisories of their own ecosystem by name (PEP 503 for PyPI),
 *   against OSV ranges and version lists; never by bare name across ecosystems.
 * - An advisory and its alias (GHSA-x and PYSEC-y naming the same CVE) found for the same
 *   installed package give one finding, not two.
 */
import { isKernelBinary, isKernelSource } from '../feeds/kernel.js';
import type { Inventory, InstalledPackage, VulnerabilityFinding } from '../model.js';
import { severityRank } from '../model.js';
import { compareParsedDebianVersions, parseDebianVersion, type DebianVersion } from '../versions/debian.js';
import type { FeedIndex, IndexedAdvisory } from './feed-index.js';
import { evaluateRanges } from './osv-ranges.js';
import { releaseOf } from './release.js';
import { remediationCommand } from './remediation.js';

/**
 * The apt-get line per source package: every installed binary of it, built once per inventory
 * and only for sources that have a fixed finding.
 */
class DebRemediations {
  private bySource: Map<string, string[]> | undefined;
  private readonly commands = new Map<string, string | null>();

  constructor(private readonly packages: InstalledPackage[]) {}

  command(source: string, name: string, fixedVersion: string): string | null {
    let command = this.commands.get(source);
    if (command === undefined) {
      command = remediationCommand('deb', { name, fixedVersion, binaries: this.binaries().get(source) });
      this.commands.set(source, command);
    }
    return command;
  }

  private binaries(): Map<string, string[]> {
    if (this.bySource !== undefined) return this.bySource;
    const map = new Map<string, string[]>();
    for (const p of this.packages) {
      if (p.ecosystem !== 'deb') continue;
      const source = p.sourceName ?? p.name;
      const list = map.get(source);
      if (list === undefined) map.set(source, [p.name]);
      else if (!list.includes(p.name)) list.push(p.name);
    }
    for (const list of map.values()) list.sort();
    return (this.bySource = map);
  }
}

function debFinding(pkg: InstalledPackage, installed: DebianVersion, { advisory, fixed }: IndexedAdvisory, remediations: DebRemediations): VulnerabilityFinding | null {
  const source = pkg.sourceName ?? pkg.name;
  switch (advisory.status) {
    case 'not-affected':
      return null;
    case 'fixed':
      if (fixed === null || advisory.fixedVersion === undefined) return null;
      if (compareParsedDebianVersions(installed, fixed) >= 0) return null;
      return finding(pkg, advisory, source, advisory.fixedVersion, remediations.command(source, pkg.name, advisory.fixedVersion));
    default:
      // unfixed, postponed, ignored, undetermined: vulnerable (or unknown) at every version.
      return finding(pkg, advisory, source, null, null);
  }
}

function languageFinding(pkg: InstalledPackage, { advisory, ranges }: IndexedAdvisory): VulnerabilityFinding | null {
  if (ranges === null) return null;
  const { affected, fixedVersion } = evaluateRanges(ranges, pkg.version.trim());
  if (!affected) return null;
  return finding(pkg, advisory, advisory.package, fixedVersion, remediationCommand(pkg.ecosystem, { name: pkg.name, fixedVersion }));
}

function finding(pkg: InstalledPackage, advisory: IndexedAdvisory['advisory'], advisoryPackage: string, fixedVersion: string | null, remediation: string | null): VulnerabilityFinding {
  // Built field by field rather than with spreads: re-matching creates hundreds of thousands.
  const result: VulnerabilityFinding = {
    advisoryId: advisory.id,
    ecosystem: pkg.ecosystem,
    package: pkg.name,
    advisoryPackage,
    installedVersion: pkg.version,
    fixedVersion,
    // A record with a fix, but none for this version's line (last_affected, a listed
    // version): still unfixed for this package.
    status: advisory.status === 'fixed' && fixedVersion === null ? 'unfixed' : advisory.status,
    severity: advisory.severity,
    severitySource: advisory.severitySource,
    remediation,
  };
  if (advisory.aliases !== undefined) result.aliases = advisory.aliases;
  if (advisory.summary !== undefined) result.summary = advisory.summary;
  return result;
}

/** Whether `f` names the same flaw as a finding already kept for the same installed package. */
function duplicateOf(kept: VulnerabilityFinding[], f: VulnerabilityFinding): boolean {
  return kept.some(
    (k) => k.advisoryId === f.advisoryId || (k.aliases?.includes(f.advisoryId) ?? false) || (f.aliases?.includes(k.advisoryId) ?? false),
  );
}

/** Of an alias pair, which to keep: the distribution's statement, then severity, then a fix. */
function preference(distribution: string | undefined): (a: VulnerabilityFinding, b: VulnerabilityFinding) => number {
  return (a, b) =>
    Number(b.severitySource === distribution) - Number(a.severitySource === distribution) ||
    severityRank(b.severity) - severityRank(a.severity) ||
    Number(b.fixedVersion !== null) - Number(a.fixedVersion !== null);
}

export function matchInventory(inventory: Inventory, index: FeedIndex): VulnerabilityFinding[] {
  const release = releaseOf(inventory.os);
  const prefer = preference(release?.split(':')[0]);
  const remediations = new DebRemediations(inventory.packages);
  const findings: VulnerabilityFinding[] = [];
  // The same package at the same version in two places (nested node_modules) is one finding.
  const seen = new Set<string>();
  for (const pkg of inventory.packages) {
    const identity = `${pkg.ecosystem}\u0000${pkg.name}\u0000${pkg.version}`;
    if (seen.has(identity)) continue;
    seen.add(identity);
    const matched: VulnerabilityFinding[] = [];
    if (pkg.ecosystem === 'deb' || pkg.ecosystem === 'apk' || pkg.ecosystem === 'rpm') {
      if (release === undefined || pkg.ecosystem !== 'deb') continue;
      const source = pkg.sourceName ?? pkg.name;
      const advisories = index.lookup('deb', release, source);
      if (advisories.length === 0 || isKernelBinary(pkg.name) || isKernelSource(source)) continue;
      const installed = parseDebianVersion(pkg.sourceVersion ?? pkg.version);
      for (const indexed of advisories) {
        const f = debFinding(pkg, installed, indexed, remediations);
        if (f !== null) matched.push(f);
      }
    } else {
      for (const indexed of index.lookup(pkg.ecosystem, undefined, pkg.name)) {
        const f = languageFinding(pkg, indexed);
        if (f !== null) matched.push(f);
      }
    }
    // deb advisories are unique per id after FeedIndex's merge; only aliases can repeat a flaw.
    if (matched.length <= 1 || (pkg.ecosystem === 'deb' && !matched.some((f) => f.aliases !== undefined))) {
      for (const f of matched) findings.push(f);
      continue;
    }
    // Of an alias pair (DSA-x and CVE-y, GHSA-x and PYSEC-y), keep the more useful half.
    matched.sort(prefer);
    const kept: VulnerabilityFinding[] = [];
    for (const f of matched) if (!duplicateOf(kept, f)) kept.push(f);
    for (const f of kept) findings.push(f);
  }
  return findings;
}
