/**
 * The Debian security tracker's JSON export (https://security-tracker.debian.org/tracker/data/json):
 *
 *     { "<source>": { "<CVE or TEMP id>": { "description", "scope", "debianbug",
 *         "releases": { "<codename>": { "status": "resolved"|"open"|"undetermined",
 *           "fixed_version"?, "urgency", "nodsa"?, "nodsa_reason"?, "repositories": {...} } } } } }
 *
 * States become AdvisoryStatus as the tracker's web pages show them: resolved with fixed
 * version "0" means the release never had the flaw (not-affected); resolved otherwise is fixed
 * at that version; open is unfixed unless the security team postponed or ignored it
 * (nodsa_reason); undetermined stays undetermined. Urgency is the distribution's severity.
 * Malformed parts are skipped one by one (the file is large and hand-curated), never thrown.
 */
import { invalidArgument } from '../../../common/errors.js';
import type { Advisory, AdvisoryStatus, Severity } from '../model.js';

export interface DebianTrackerOptions {
  /** Codenames to import (bookworm, trixie...); default: every release present. */
  releases?: string[];
  /** Distribution id for Advisory.release: `<distribution>:<codename>`; default debian. */
  distribution?: string;
}

/** Tracker urgency -> Severity. `**` marks an urgency set from NVD, still the tracker's word. */
export function severityFromUrgency(urgency: unknown): Severity {
  if (typeof urgency !== 'string') return 'unknown';
  switch (urgency.replace(/\*+$/, '').trim().toLowerCase()) {
    case 'unimportant':
      return 'negligible';
    case 'low':
      return 'low';
    case 'medium':
      return 'medium';
    case 'high':
      return 'high';
    default:
      // "not yet assigned", "end-of-life" and anything new.
      return 'unknown';
  }
}

function record(value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

function trackerStatus(release: Record<string, unknown>): { status: AdvisoryStatus; fixedVersion?: string } | null {
  const fixed = typeof release.fixed_version === 'string' ? release.fixed_version.trim() : undefined;
  switch (release.status) {
    case 'resolved':
      if (fixed === undefined || fixed === '') return null;
      return fixed === '0' ? { status: 'not-affected' } : { status: 'fixed', fixedVersion: fixed };
    case 'open': {
      const reason = typeof release.nodsa_reason === 'string' ? release.nodsa_reason.trim().toLowerCase() : '';
      if (reason === 'postponed') return { status: 'postponed' };
      if (reason === 'ignored') return { status: 'ignored' };
      return { status: 'unfixed' };
    }
    case 'undetermined':
      return { status: 'undetermined' };
    default:
      return null;
  }
}

export function importDebianTracker(json: unknown, opts: DebianTrackerOptions = {}): Advisory[] {
  const sources = record(json);
  if (sources === null) throw invalidArgument('The Debian security tracker JSON must be an object keyed by source package');
  const wanted = opts.releases === undefined ? null : new Set(opts.releases);
  const distribution = opts.distribution ?? 'debian';
  const advisories: Advisory[] = [];
  for (const [source, issues] of Object.entries(sources)) {
    for (const [id, issueValue] of Object.entries(record(issues) ?? {})) {
      const issue = record(issueValue);
      const releases = record(issue?.releases);
      if (issue === null || releases === null) continue;
      const description = typeof issue.description === 'string' && issue.description.trim() !== '' ? issue.description.trim() : undefined;
      for (const [codename, releaseValue] of Object.entries(releases)) {
        const release = record(releaseValue);
        if (release === null || (wanted !== null && !wanted.has(codename))) continue;
        const state = trackerStatus(release);
        if (state === null) continue;
        advisories.push({
          id,
          ecosystem: 'deb',
          release: `${distribution}:${codename}`,
          package: source,
          ...state,
          severity: severityFromUrgency(release.urgency),
          severitySource: distribution,
          ...(description !== undefined ? { summary: description } : {}),
          source: 'debian-tracker',
        });
      }
    }
  }
  return advisories;
}
