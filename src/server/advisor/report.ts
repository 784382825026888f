import { severityRank, type ComplianceFinding, type Severity, type VulnerabilityFinding } from './model.js';
import type { Exemption } from './tenant-records.js';

/**
 * A report: the findings of one image or container under one feed version, with exemptions
 * applied (an exempted finding stays in the report, marked, so nothing is hidden; it only
 * stops counting for policy and alerts).
 */
export interface Report {
  subject: { kind: 'image' | 'container'; id: string; name: string; imageId: string };
  feedVersion: number | null;
  inventoryTakenAt: string;
  os: string | null;
  packages: number;
  vulnerabilities: (VulnerabilityFinding & { exemption?: ExemptionNote })[];
  compliance: (ComplianceFinding & { exemption?: ExemptionNote })[];
  summary: Record<Severity, number>;
}

export interface ExemptionNote {
  id: string;
  reason: string;
  expiresAt: string | null;
}

/** One finding as policy, alerts and messages see it: an id, a package, a severity. */
export interface FindingRef {
  id: string;
  package?: string;
  severity: Severity;
  installedVersion?: string;
  fixedVersion?: string | null;
}

export function isExemptionActive(exemption: Exemption, now: Date): boolean {
  return exemption.expiresAt === null || Date.parse(exemption.expiresAt) > now.getTime();
}

/** The active exemption covering a finding of `imageId`, if any. */
export function exemptionFor(
  exemptions: readonly Exemption[],
  imageId: string,
  ids: readonly string[],
  now: Date,
): ExemptionNote | undefined {
  const hit = exemptions.find(
    (e) => isExemptionActive(e, now) && (e.imageId === '*' || e.imageId === imageId) && ids.some((id) => id.toUpperCase() === e.findingId.toUpperCase()),
  );
  return hit ? { id: hit.id, reason: hit.reason, expiresAt: hit.expiresAt } : undefined;
}

const bySeverityThenId = (a: FindingRef, b: FindingRef): number =>
  severityRank(b.severity) - severityRank(a.severity) || a.id.localeCompare(b.id) || (a.package ?? '').localeCompare(b.package ?? '');

/** Builds a report: findings sorted worst first, exemptions marked, a count per severity. */
export function buildReport(input: {
  subject: Report['subject'];
  feedVersion: number | null;
  inventoryTakenAt: string;
  os: string | null;
  packages: number;
  vulnerabilities: VulnerabilityFinding[];
  compliance: ComplianceFinding[];
  exemptions: readonly Exemption[];
  now?: Date;
}): Report {
  const now = input.now ?? new Date();
  const vulnerabilities = input.vulnerabilities
    .map((v): Report['vulnerabilities'][number] => {
      const exemption = exemptionFor(input.exemptions, input.subject.imageId, [v.advisoryId, ...(v.aliases ?? [])], now);
      return exemption ? { ...v, exemption } : { ...v };
    })
    .sort((a, b) => bySeverityThenId(refOfVulnerability(a), refOfVulnerability(b)));
  const compliance = input.compliance
    .map((c): Report['compliance'][number] => {
      const exemption = exemptionFor(input.exemptions, input.subject.imageId, [c.checkId], now);
      return exemption ? { ...c, exemption } : { ...c };
    })
    .sort((a, b) => bySeverityThenId(refOfCompliance(a), refOfCompliance(b)));
  const summary = { unknown: 0, negligible: 0, low: 0, medium: 0, high: 0, critical: 0 } as Record<Severity, number>;
  for (const f of [...vulnerabilities, ...compliance]) if (!f.exemption) summary[f.severity]++;
  return { ...input, subject: input.subject, vulnerabilities, compliance, summary };
}

export function refOfVulnerability(v: VulnerabilityFinding): FindingRef {
  return { id: v.advisoryId, package: v.package, severity: v.severity, installedVersion: v.installedVersion, fixedVersion: v.fixedVersion };
}

export function refOfCompliance(c: ComplianceFinding): FindingRef {
  return { id: c.checkId, severity: c.severity };
}

/** A stable key per finding: what "new since last time" compares. */
export function findingKey(ref: FindingRef): string {
  return ref.package ? `${ref.id}|${ref.package}` : ref.id;
}

/** The non-exempt findings of a report at or above `threshold`, worst first. */
export function blockingFindings(report: Report, threshold: Severity): FindingRef[] {
  const min = severityRank(threshold);
  return [
    ...report.vulnerabilities.filter((v) => !v.exemption && severityRank(v.severity) >= min).map(refOfVulnerability),
    ...report.compliance.filter((c) => !c.exemption && severityRank(c.severity) >= min).map(refOfCompliance),
  ].sort(bySeverityThenId);
}

/** The non-exempt finding refs of a report (for alert comparisons). */
export function activeFindings(report: Report): FindingRef[] {
  return [
    ...report.vulnerabilities.filter((v) => !v.exemption).map(refOfVulnerability),
    ...report.compliance.filter((c) => !c.exemption).map(refOfCompliance),
  ];
}

/** "CVE-2024-1 (critical, libssl3 3.0.11-1 → fixed in 3.0.15-1)" */
export function describeFinding(f: FindingRef): string {
  if (f.package === undefined) return `${f.id} (${f.severity})`;
  const fix = f.fixedVersion ? `, fixed in ${f.fixedVersion}` : f.installedVersion !== undefined ? ', no fix yet' : '';
  return `${f.id} (${f.severity}, ${f.package}${f.installedVersion ? ` ${f.installedVersion}` : ''}${fix})`;
}

/** The message `docker run` shows when policy refuses an image. */
export function policyRefusal(imageRef: string, threshold: Severity, findings: FindingRef[], shown = 3): string {
  const top = findings.slice(0, shown).map(describeFinding).join('; ');
  const more = findings.length > shown ? ` and ${findings.length - shown} more` : '';
  return (
    `image ${imageRef} is blocked by the vulnerability policy (findings at or above ${threshold}): ${top}${more}. ` +
    `See every finding with \`berth advisor image ${imageRef}\` or GET /berth/v1/advisor/images/${imageRef}/report; ` +
    `an operator can exempt a finding with \`berth advisor exempt\`.`
  );
}
