import { invalidArgument } from '../../common/errors.js';
import type { VolumeRecord } from './model.js';

export type Filters = Record<string, string[]>;

const LIST_FILTERS = new Set(['dangling', 'name', 'label', 'driver']);
const PRUNE_FILTERS = new Set(['label', 'label!', 'all']);

/** Docker sends filters as {"key": ["v1"]} or the legacy {"key": {"v1": true}}. */
export function parseVolumeFilters(raw: string | undefined, prune = false): Filters {
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
    if (!(prune ? PRUNE_FILTERS : LIST_FILTERS).has(key)) throw invalidArgument(`invalid filter '${key}'`);
    if (Array.isArray(value)) filters[key] = value.map(String);
    else if (typeof value === 'object' && value !== null) filters[key] = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k]);
    else throw invalidArgument(`invalid filter '${raw}'`);
  }
  for (const v of filters.dangling ?? []) {
    if (!['true', 'false', '1', '0'].includes(v.toLowerCase())) throw invalidArgument(`invalid filter 'dangling=${v}'`);
  }
  return filters;
}

export function labelMatches(labels: Record<string, string>, wanted: string): boolean {
  const eq = wanted.indexOf('=');
  return eq === -1 ? wanted in labels : labels[wanted.slice(0, eq)] === wanted.slice(eq + 1);
}

/** `docker volume ls` semantics: values of one key are ORed, keys ANDed, labels ANDed. */
export function volumeMatches(volume: VolumeRecord, inUse: boolean, f: Filters): boolean {
  if (f.name && !f.name.some((n) => volume.name.includes(n))) return false;
  if (f.driver && !f.driver.includes(volume.driver)) return false;
  if (f.label && !f.label.every((l) => labelMatches(volume.labels, l))) return false;
  if (f.dangling) {
    const wantDangling = ['true', '1'].includes(f.dangling[0]!.toLowerCase());
    if (wantDangling === inUse) return false;
  }
  return true;
}
