import { invalidArgument } from '../common/errors.js';

/** A list endpoint's `filters` query, as Docker sends it: key → values. */
export type Filters = Record<string, string[]>;

/**
 * Parses Docker's filters JSON: {"key": ["v1","v2"]} or the legacy {"key": {"v1": true}}.
 * With `allowedKeys`, an unknown key is refused by name before its value is looked at.
 */
export function parseFilters(raw: string | undefined, allowedKeys?: ReadonlySet<string>): Filters {
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalidArgument(`invalid filter '${raw}'`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalidArgument(`invalid filter '${raw}'`);
  const filters: Filters = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (allowedKeys && !allowedKeys.has(key)) throw invalidArgument(`invalid filter '${key}'`);
    if (Array.isArray(value)) filters[key] = value.map(String);
    else if (typeof value === 'object' && value !== null) filters[key] = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k]);
    else throw invalidArgument(`invalid filter '${raw}'`);
  }
  return filters;
}

/** A `label` filter value: "key" (present) or "key=value" (equal). */
export function labelMatches(labels: Record<string, string>, wanted: string): boolean {
  const eq = wanted.indexOf('=');
  return eq === -1 ? wanted in labels : labels[wanted.slice(0, eq)] === wanted.slice(eq + 1);
}
