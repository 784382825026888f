/**
 * Compliance checks of images and live containers (issue 8). Every check has a stable id,
 * documented in docs/advisor-checks.md; ids are never reused for another meaning.
 *
 * A subject is a container when it carries a HostConfig or runtime state, else an image;
 * each check declares which of the two it applies to.
 */
import type { ComplianceFinding, ComplianceSubject, Severity } from '../model.js';
import { emptyPasswords, healthcheckMissing, imageUserRoot, uidZeroAccounts } from './accounts.js';
import { CheckContext, type ComplianceCheck, type SubjectKind } from './check.js';
import { envSecrets } from './env-secrets.js';
import { passwordMaxDays, passwordMinDays, passwordMinLength } from './password-policy.js';
import { addedCapabilities, hostMounts, hostNamespaces, noMemoryLimit, noPidsLimit, privileged, sensitiveMounts, writableRootfs } from './runtime-settings.js';
import { unexpectedSetuid } from './setuid.js';
import { sshEmptyPasswords, sshPasswordAuthentication, sshRootLogin, sshServerInstalled, sshServerRunning } from './ssh.js';

export const CHECKS: readonly ComplianceCheck[] = [
  passwordMaxDays,
  passwordMinDays,
  passwordMinLength,
  sshServerInstalled,
  sshServerRunning,
  sshRootLogin,
  sshPasswordAuthentication,
  sshEmptyPasswords,
  uidZeroAccounts,
  emptyPasswords,
  imageUserRoot,
  unexpectedSetuid,
  envSecrets,
  healthcheckMissing,
  privileged,
  addedCapabilities,
  hostNamespaces,
  sensitiveMounts,
  hostMounts,
  noMemoryLimit,
  noPidsLimit,
  writableRootfs,
];

/** The catalogue the service shows and validates exemptions against (remediation is extra). */
export const COMPLIANCE_CHECKS: { id: string; title: string; severity: Severity; appliesTo: SubjectKind[]; remediation: string }[] = CHECKS.map(
  ({ id, title, severity, appliesTo, remediation }) => ({ id, title, severity, appliesTo: [...appliesTo], remediation }),
);

export function subjectKind(subject: ComplianceSubject): SubjectKind {
  return subject.hostConfig !== undefined || subject.runtime !== undefined ? 'container' : 'image';
}

export async function runComplianceChecks(subject: ComplianceSubject): Promise<ComplianceFinding[]> {
  const kind = subjectKind(subject);
  const context = new CheckContext(subject);
  const applicable = CHECKS.filter((c) => c.appliesTo.includes(kind));
  const results = await Promise.all(applicable.map((c) => c.run(context)));
  return applicable.flatMap((check, i) =>
    results[i]!.map((v) => ({ checkId: check.id, title: check.title, severity: v.severity ?? check.severity, detail: v.detail, remediation: check.remediation })),
  );
}

export type { ComplianceCheck, SubjectKind } from './check.js';
