import { invalidArgument } from '../../common/errors.js';
import type { DockerEvent } from './types.js';

/**
 * Docker's filter arguments: a key maps to the set of values the user gave for it
 * (`--filter type=container --filter type=image` → `{ type: ['container', 'image'] }`).
 */
export type FilterArgs = Readonly<Record<string, readonly string[]>>;

/**
 * Parses the `filters` query parameter as dockerd does: a JSON object whose values are either
 * `{"value": true}` maps (the current form) or `["value"]` arrays (the legacy form). Empty
 * means no filter. Malformed input is InvalidArgument "invalid filter".
 */
export function parseFilterJson(text: string | undefined): FilterArgs {
  if (text === undefined || text.trim() === '') return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw invalidArgument('invalid filter', err);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidArgument('invalid filter');
  const out: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
      out[key] = [...new Set(value as string[])];
    } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      // dockerd keeps a value when the map says true; false entries are not filters.
      out[key] = Object.entries(value as Record<string, unknown>)
        .filter(([, on]) => on === true)
        .map(([v]) => v);
    } else {
      throw invalidArgument(`invalid filter '${key}'`);
    }
  }
  return out;
}

/** The event types Docker knows; `type` filters and published events use these names. */
export const EVENT_TYPES: readonly DockerEvent['Type'][] = [
  'container', 'image', 'volume', 'network', 'daemon', 'plugin', 'service', 'node', 'secret', 'config',
];

/** Keys `docker events --filter` accepts: one per event type (matching actor id or name) plus these. */
const EVENT_FILTER_KEYS = new Set<string>([...EVENT_TYPES, 'type', 'event', 'label', 'scope']);

/**
 * Rejects keys and closed-set values dockerd would silently ignore (it then matches nothing
 * or everything), so a typo gets an error instead of a surprising stream.
 */
export function validateEventFilters(filters: FilterArgs): void {
  for (const [key, values] of Object.entries(filters)) {
    if (!EVENT_FILTER_KEYS.has(key)) throw invalidArgument(`invalid filter '${key}'`);
    if (key === 'type') {
      for (const v of values) {
        if (!(EVENT_TYPES as readonly string[]).includes(v)) throw invalidArgument(`invalid filter 'type=${v}'`);
      }
    }
    if (key === 'scope') {
      for (const v of values) {
        if (v !== 'local' && v !== 'swarm') throw invalidArgument(`invalid filter 'scope=${v}'`);
      }
    }
  }
}

/**
 * Docker's event filter semantics (daemon/events/filter.go): every key present must match
 * (AND across keys); within a key any value may match (OR) — except `label`, where every
 * given label must be present (AND), as `docker events` documents.
 *
 * - type, scope: exact.
 * - event: exact on Action; `exec_create`, `exec_start` and `health_status` also match as a
 *   prefix, because their actions carry a suffix (`exec_start: sh -c ...`).
 * - container, volume, network, daemon (and the swarm kinds): a prefix of the actor's id or of
 *   its `name` attribute. As in dockerd this applies to every event, so `container=x` drops
 *   events of other types whose actor is not x.
 * - image: exact on the actor id or image name (`image` attribute of a container event, `name`
 *   of an image event), with or without its tag or digest (`busybox` matches `busybox:latest`).
 * - label: `key` requires the attribute, `key=value` requires that value.
 */
export function eventMatches(filters: FilterArgs, event: DockerEvent): boolean {
  const attrs = event.Actor.Attributes;
  const eventValues = filters.event ?? [];
  const fuzzyEvent = eventValues.some((v) => v === 'exec_create' || v === 'exec_start' || v === 'health_status');
  if (!(fuzzyEvent ? fuzzyMatch(filters, 'event', event.Action) : exactMatch(filters, 'event', event.Action))) return false;
  if (!exactMatch(filters, 'type', event.Type)) return false;
  if (!exactMatch(filters, 'scope', event.scope)) return false;
  for (const kind of EVENT_TYPES) {
    if (kind === 'image') continue;
    if (!(fuzzyMatch(filters, kind, event.Actor.ID) || fuzzyMatch(filters, kind, attrs.name ?? ''))) return false;
  }
  if (!matchImage(filters, event)) return false;
  return matchLabels(filters, attrs);
}

/** True when the key is absent or one of its values equals source. */
function exactMatch(filters: FilterArgs, key: string, source: string): boolean {
  const values = filters[key];
  if (!values || values.length === 0) return true;
  return values.includes(source);
}

/** True when the key is absent or one of its values equals or prefixes source. */
function fuzzyMatch(filters: FilterArgs, key: string, source: string): boolean {
  const values = filters[key];
  if (!values || values.length === 0) return true;
  return values.some((v) => source.startsWith(v));
}

function matchImage(filters: FilterArgs, event: DockerEvent): boolean {
  const values = filters.image;
  if (!values || values.length === 0) return true;
  const id = event.Actor.ID;
  const name = event.Actor.Attributes[event.Type === 'image' ? 'name' : 'image'] ?? '';
  const candidates = [id, name, familiarName(id), familiarName(name)];
  return values.some((v) => candidates.includes(v));
}

function matchLabels(filters: FilterArgs, attrs: Record<string, string>): boolean {
  const values = filters.label;
  if (!values || values.length === 0) return true;
  return values.every((v) => {
    const eq = v.indexOf('=');
    if (eq < 0) return Object.hasOwn(attrs, v);
    const key = v.slice(0, eq);
    return Object.hasOwn(attrs, key) && attrs[key] === v.slice(eq + 1);
  });
}

/**
 * An image reference without tag or digest, in the short form users type:
 * `docker.io/library/busybox:1.36` → `busybox`, `localhost:5000/app@sha256:…` → `localhost:5000/app`.
 * Ids (`sha256:…`) come back unchanged.
 */
export function familiarName(ref: string): string {
  if (ref === '' || ref.startsWith('sha256:')) return ref;
  let name = ref;
  const at = name.indexOf('@');
  if (at >= 0) name = name.slice(0, at);
  const lastSlash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > lastSlash) name = name.slice(0, colon);
  if (name.startsWith('docker.io/')) name = name.slice('docker.io/'.length);
  else if (name.startsWith('index.docker.io/')) name = name.slice('index.docker.io/'.length);
  if (name.startsWith('library/') && name.indexOf('/', 'library/'.length) < 0) name = name.slice('library/'.length);
  return name;
}
