/**
 * OSV JSON (https://ossf.github.io/osv-schema/, schema 1.x): one record per vulnerability,
 * each `affected[]` entry naming a package in an ecosystem with `ranges` (events introduced /
 * fixed / last_affected, type SEMVER, ECOSYSTEM or GIT) and/or an explicit `versions` list.
 *
 * Each affected entry for a supported ecosystem becomes one Advisory:
 * - npm and PyPI keep the ranges and versions for matching (GIT ranges are dropped: they
 *   name commits, not releases); PyPI names are normalised per PEP 503;
 * - Debian (`Debian:12`) becomes a `deb` advisory for `debian:<codename>` with the range's
 *   fixed version, matching like the tracker's.
 * Severity: the record's own rating (GHSA's database_specific.severity, an affected entry's
 * ecosystem_specific/database_specific severity), else the highest CVSS v3 base score.
 * Withdrawn records and malformed entries are skipped, never thrown.
 */
import { invalidArgument } from '../../../common/errors.js';
import type { Advisory, AffectedRange, Ecosystem, Severity } from '../model.js';
import { SEVERITIES, severityRank } from '../model.js';
import { normalizePypiName } from '../versions/pypi.js';
import { cvss3BaseScore, severityFromScore } from './cvss.js';

/** Debian major versions -> codenames, for OSV's `Debian:<version>` ecosystems. */
export const DEBIAN_CODENAMES: Record<string, string> = {
  '9': 'stretch',
  '10': 'buster',
  '11': 'bullseye',
  '12': 'bookworm',
  '13': 'trixie',
  '14': 'forky',
};

type Json = Record<string, unknown>;

function record(value: unknown): Json | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : null;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && v.trim() !== '') : [];
}

function ratingToSeverity(value: unknown): Severity | null {
  if (typeof value !== 'string') return null;
  const word = value.trim().toLowerCase();
  if (word === 'moderate') return 'medium';
  if (word === 'unimportant') return 'negligible';
  return (SEVERITIES as readonly string[]).includes(word) && word !== 'unknown' ? (word as Severity) : null;
}

function cvssSeverity(list: unknown): Severity | null {
  let best: Severity | null = null;
  for (const entry of Array.isArray(list) ? list : []) {
    const e = record(entry);
    if (e === null || typeof e.score !== 'string') continue;
    const score = cvss3BaseScore(e.score);
    if (score === null) continue;
    const severity = severityFromScore(score);
    if (best === null || severityRank(severity) > severityRank(best)) best = severity;
  }
  return best;
}

function parseRanges(value: unknown): AffectedRange[] {
  const ranges: AffectedRange[] = [];
  for (const r of Array.isArray(value) ? value : []) {
    const range = record(r);
    if (range === null || (range.type !== 'SEMVER' && range.type !== 'ECOSYSTEM')) continue;
    const events: AffectedRange['events'] = [];
    for (const e of Array.isArray(range.events) ? range.events : []) {
      const event = record(e);
      if (typeof event?.introduced === 'string') events.push({ introduced: event.introduced });
      else if (typeof event?.fixed === 'string') events.push({ fixed: event.fixed });
      else if (typeof event?.last_affected === 'string') events.push({ last_affected: event.last_affected });
    }
    if (events.length > 0) ranges.push({ type: range.type, events });
  }
  return ranges;
}

function target(pkg: Json): { ecosystem: Ecosystem; release?: string; name: string } | null {
  const ecosystem = typeof pkg.ecosystem === 'string' ? pkg.ecosystem : '';
  const name = typeof pkg.name === 'string' ? pkg.name.trim() : '';
  if (name === '') return null;
  if (ecosystem === 'npm') return { ecosystem: 'npm', name };
  if (ecosystem === 'PyPI') return { ecosystem: 'PyPI', name: normalizePypiName(name) };
  const debian = /^Debian:(\d+)/.exec(ecosystem);
  const codename = debian === null ? undefined : DEBIAN_CODENAMES[debian[1]!];
  if (codename !== undefined) return { ecosystem: 'deb', release: `debian:${codename}`, name };
  return null;
}

function fixedEvents(ranges: AffectedRange[]): string[] {
  return ranges.flatMap((r) => r.events.flatMap((e) => ('fixed' in e ? [e.fixed] : [])));
}

function importRecord(raw: unknown): Advisory[] {
  const osv = record(raw);
  if (osv === null || typeof osv.id !== 'string' || osv.id.trim() === '' || typeof osv.withdrawn === 'string') return [];
  const id = osv.id.trim();
  const aliases = strings(osv.aliases);
  const summary = typeof osv.summary === 'string' && osv.summary.trim() !== '' ? osv.summary.trim() : typeof osv.details === 'string' && osv.details.trim() !== '' ? osv.details.trim().split('\n')[0] : undefined;
  const recordSeverity = ratingToSeverity(record(osv.database_specific)?.severity) ?? cvssSeverity(osv.severity);
  const advisories: Advisory[] = [];
  for (const a of Array.isArray(osv.affected) ? osv.affected : []) {
    const affected = record(a);
    const pkg = record(affected?.package);
    if (affected === null || pkg === null) continue;
    const where = target(pkg);
    if (where === null) continue;
    const ranges = parseRanges(affected.ranges);
    const versions = strings(affected.versions);
    if (ranges.length === 0 && versions.length === 0) continue;
    const severity = ratingToSeverity(record(affected.ecosystem_specific)?.severity) ?? ratingToSeverity(record(affected.database_specific)?.severity) ?? cvssSeverity(affected.severity) ?? recordSeverity;
    const fixes = fixedEvents(ranges);
    const base = {
      id,
      ...(aliases.length > 0 ? { aliases } : {}),
      ecosystem: where.ecosystem,
      package: where.name,
      severity: severity ?? 'unknown',
      severitySource: severity === null ? 'none' : 'osv',
      ...(summary !== undefined ? { summary } : {}),
      source: 'osv',
    };
    if (where.ecosystem === 'deb') {
      // Debian OSV data has one ECOSYSTEM range per release: introduced 0, fixed <version>.
      advisories.push({ ...base, release: where.release, status: fixes.length > 0 ? 'fixed' : 'unfixed', ...(fixes[0] !== undefined ? { fixedVersion: fixes[0] } : {}) });
    } else {
      advisories.push({ ...base, status: fixes.length > 0 ? 'fixed' : 'unfixed', ...(ranges.length > 0 ? { ranges } : {}), ...(versions.length > 0 ? { versions } : {}) });
    }
  }
  return advisories;
}

export function importOsv(records: unknown[]): Advisory[] {
  if (!Array.isArray(records)) throw invalidArgument('OSV input must be an array of OSV records');
  return records.flatMap(importRecord);
}
