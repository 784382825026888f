import { invalidArgument } from '../../common/errors.js';
import type { ImageRecord } from './image-record.js';
import { repositoryOf } from './reference.js';
import { labelMatches } from '../list-filters.js';

/** Parsed `filters` of ImageList and ImagePrune. Times are milliseconds since the epoch. */
export interface ImageFilters {
  dangling?: boolean;
  labels: string[];
  notLabels: string[];
  references: string[];
  before?: string;
  since?: string;
  beforeTime?: number;
  sinceTime?: number;
  until?: number;
}

const LIST_KEYS = new Set(['dangling', 'label', 'before', 'since', 'reference', 'until']);
const PRUNE_KEYS = new Set(['dangling', 'label', 'label!', 'until']);

function parse(filters: Readonly<Record<string, readonly string[]>>, allowed: Set<string>): ImageFilters {
  const out: ImageFilters = { labels: [], notLabels: [], references: [] };
  for (const [key, values] of Object.entries(filters)) {
    if (!allowed.has(key)) throw invalidArgument(`invalid filter '${key}'`);
    for (const value of values) {
      switch (key) {
        case 'dangling':
          if (['true', '1'].includes(value.toLowerCase())) out.dangling = true;
          else if (['false', '0'].includes(value.toLowerCase())) out.dangling = false;
          else throw invalidArgument(`invalid filter 'dangling=${value}'`);
          break;
        case 'label':
          out.labels.push(value);
          break;
        case 'label!':
          out.notLabels.push(value);
          break;
        case 'reference':
          out.references.push(value);
          break;
        case 'before':
          out.before = value;
          break;
        case 'since':
          out.since = value;
          break;
        case 'until':
          out.until = parseTimestamp(value);
          break;
      }
    }
  }
  return out;
}

export const parseImageFilters = (filters: Readonly<Record<string, readonly string[]>>): ImageFilters => parse(filters, LIST_KEYS);

/** Prune filters: dangling defaults to true, as in dockerd. */
export function pruneFilters(filters: Readonly<Record<string, readonly string[]>>): ImageFilters {
  const parsed = parse(filters, PRUNE_KEYS);
  return { ...parsed, dangling: parsed.dangling ?? true };
}

/** "2024-01-01T00:00:00Z", unix seconds ("1700000000.5") or a duration before now ("10m", "24h"). */
export function parseTimestamp(value: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const duration = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/.exec(value);
  if (duration) {
    const unit = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[duration[2]!]!;
    return now - Number(duration[1]) * unit;
  }
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw invalidArgument(`failed to parse value as time or duration: "${value}"`);
  return time;
}


/** Docker's reference pattern: path.Match globs where `*` stops at "/". */
function globMatch(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${re}$`).test(value);
}

export function matchImageFilters(image: ImageRecord, f: ImageFilters): boolean {
  const dangling = image.repoTags.length === 0 && image.repoDigests.length === 0;
  if (f.dangling === true && !dangling) return false;
  const labels = image.config.config?.Labels ?? {};
  if (!f.labels.every((l) => labelMatches(labels, l))) return false;
  if (f.notLabels.some((l) => labelMatches(labels, l))) return false;
  const created = Date.parse(image.created);
  if (f.until !== undefined && !(created < f.until)) return false;
  if (f.beforeTime !== undefined && !(created < f.beforeTime)) return false;
  if (f.sinceTime !== undefined && !(created > f.sinceTime)) return false;
  if (f.references.length > 0) {
    const hit = image.repoTags.some((tag) => f.references.some((p) => globMatch(p, tag) || globMatch(p, repositoryOf(tag))));
    if (!hit) return false;
  }
  return true;
}
