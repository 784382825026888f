import type { Advisory } from './model.js';

/**
 * How a new feed version is made from the one before and what was just imported.
 *
 * An advisory is one fact about (ecosystem, release, package, id). A newly imported fact
 * replaces the stored one, except for severity: the distribution's own rating wins over
 * anybody else's (issue 8: "severity comes from the distribution first"), so an OSV or NVD
 * rating never overwrites Debian's, while Debian's replaces theirs. Among the distribution's
 * own sources a known rating beats `unknown` (the archive changelog carries none).
 */
export function mergeAdvisories(base: readonly Advisory[], incoming: readonly Advisory[]): Advisory[] {
  const merged = new Map<string, Advisory>();
  for (const a of base) merged.set(keyOf(a), a);
  for (const a of incoming) {
    const key = keyOf(a);
    const old = merged.get(key);
    merged.set(key, old ? withPreferredSeverity(a, old) : a);
  }
  return [...merged.values()];
}

const keyOf = (a: Advisory): string => `${a.ecosystem}|${a.release ?? ''}|${a.package}|${a.id}`;

/** Whether the severity is the distribution's own (Debian's tracker urgency, the archive's changelog). */
export function isDistributionSeverity(a: Advisory): boolean {
  return a.ecosystem !== 'npm' && a.ecosystem !== 'PyPI' && /^(debian|ubuntu|alpine|redhat)/i.test(a.severitySource);
}

function withPreferredSeverity(next: Advisory, old: Advisory): Advisory {
  const nextDistro = isDistributionSeverity(next);
  const oldDistro = isDistributionSeverity(old);
  const keepOld = (oldDistro && !nextDistro) || (oldDistro === nextDistro && next.severity === 'unknown' && old.severity !== 'unknown');
  return keepOld ? { ...next, severity: old.severity, severitySource: old.severitySource } : next;
}
