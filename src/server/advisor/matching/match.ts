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
import { compareDebianVersions } from '../versions/debian.js';
import type { FeedIndex, IndexedAdvisory } from './feed-index.js';
import { evaluateRanges } from './osv-ranges.js';
import { releaseOf } from './release.js';
import { remediationCommand } from './remediation.js';

/** Installed binaries per source package, for the apt-get line (built only when needed). */
function binariesBySource(packages: InstalledPackage[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const p of packages) {
    if (p.ecosystem !== 'deb') continue;
    const source = p.sourceName ?? p.name;
    const list = map.get(source);
    if (list === undefined) map.set(source, [p.name]);
    else if (!list.includes(p.name)) list.push(p.name);
  }
  for (const list of map.values()) list.sort();
  return map;
}

function debFinding(pkg: InstalledPackage, { advisory }: IndexedAdvisory, binaries: () => Map<string, string[]>): VulnerabilityFinding | null {
  const source = pkg.sourceName ?? pkg.name;
  let fixedVersion: string | null = null;
  switch (advisory.status) {
    case 'not-affected':
      return null;
    case 'fixed':
      if (advisory.fixedVersion === undefined) return null;
      if (compareDebianVersions(pkg.sourceVersion ?? pkg.version, advisory.fixedVersion) >= 0) return null;
      fixedVersion = advisory.fixedVersion;
      break;
    default:
      // unfixed, postponed, ignored, undetermined: vulnerable (or unknown) at every version.
      break;
  }
  return finding(pkg, advisory, source, fixedVersion, remediationCommand('deb', { name: pkg.name, fixedVersion, binaries: binaries().get(source) }));
}

function languageFinding(pkg: InstalledPackage, { advisory, ranges }: IndexedAdvisory): VulnerabilityFinding | null {
  if (ranges === null) return null;
  const { affected, fixedVersion } = evaluateRanges(ranges, pkg.version.trim());
  if (!affected) return null;
  const result = finding(pkg, advisory, advisory.package, fixedVersion, remediationCommand(pkg.ecosystem, { name: pkg.name, fixedVersion }));
  // The record says a fix exists, but not for this version's line: still unfixed for it.
  if (fixedVersion === null) result.status = 'unfixed';
  return result;
}

function finding(pkg: InstalledPackage, advisory: IndexedAdvisory['advisory'], advisoryPackage: string, fixedVersion: string | null, remediation: string | null): VulnerabilityFinding {
  return {
    advisoryId: advisory.id,
    ...(advisory.aliases !== undefined ? { aliases: advisory.aliases } : {}),
    ecosystem: pkg.ecosystem,
    package: pkg.name,
    advisoryPackage,
    installedVersion: pkg.version,
    fixedVersion,
    status: advisory.status === 'fixed' && fixedVersion === null ? 'unfixed' : advisory.status,
    severity: advisory.severity,
    severitySource: advisory.severitySource,
    ...(advisory.summary !== undefined ? { summary: advisory.summary } : {}),
    remediation,
  };
}

/** Whether `f` names the same flaw as a finding already kept for the same installed package. */
function duplicateOf(kept: VulnerabilityFinding[], f: VulnerabilityFinding): boolean {
  return kept.some(
    (k) => k.advisoryId === f.advisoryId || (k.aliases?.includes(f.advisoryId) ?? false) || (f.aliases?.includes(k.advisoryId) ?? false),
  );
}

export function matchInventory(inventory: Inventory, index: FeedIndex): VulnerabilityFinding[] {
  const release = releaseOf(inventory.os);
  let bySource: Map<string, string[]> | undefined;
  const binaries = (): Map<string, string[]> => (bySource ??= binariesBySource(inventory.packages));
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
      if (isKernelBinary(pkg.name) || isKernelSource(source)) continue;
      for (const indexed of index.lookup('deb', release, source)) {
        const f = debFinding(pkg, indexed, binaries);
        if (f !== null) matched.push(f);
      }
    } else {
      for (const indexed of index.lookup(pkg.ecosystem, undefined, pkg.name)) {
        const f = languageFinding(pkg, indexed);
        if (f !== null) matched.push(f);
      }
    }
    // Of an alias pair (DSA-x and CVE-y, GHSA-x and PYSEC-y), keep the more useful half: the
    // distribution's own statement first, then the higher severity, then one with a fix.
    const distribution = release?.split(':')[0];
    if (matched.length > 1) matched.sort(
      (a, b) =>
        Number(b.severitySource === distribution) - Number(a.severitySource === distribution) ||
        severityRank(b.severity) - severityRank(a.severity) ||
        Number(b.fixedVersion !== null) - Number(a.fixedVersion !== null),
    );
    const kept: VulnerabilityFinding[] = [];
    for (const f of matched) if (!duplicateOf(kept, f)) kept.push(f);
    for (const f of kept) findings.push(f);
  }
  return findings;
}
