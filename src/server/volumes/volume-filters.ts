import { invalidArgument } from '../../common/errors.js';
import type { VolumeRecord } from './model.js';
import { labelMatches, parseFilters, type Filters } from '../list-filters.js';

const LIST_FILTERS = new Set(['dangling', 'name', 'label', 'driver']);
const PRUNE_FILTERS = new Set(['label', 'label!', 'all']);

export function parseVolumeFilters(raw: string | undefined, prune = false): Filters {
  const filters = parseFilters(raw, prune ? PRUNE_FILTERS : LIST_FILTERS);
  for (const v of filters.dangling ?? []) {
    if (!['true', 'false', '1', '0'].includes(v.toLowerCase())) throw invalidArgument(`invalid filter 'dangling=${v}'`);
  }
  return filters;
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
