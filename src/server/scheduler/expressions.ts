import { invalidArgument } from '../../common/errors.js';

/**
 * Placement rules in the syntax Docker Swarm (standalone) and Triton's sdc-docker accept:
 *
 *   env    -e constraint:<key><op><value>     -e affinity:<key><op><value>
 *   labels com.docker.swarm.constraints='["<key><op><value>", ...]'
 *          com.docker.swarm.affinities='["<key><op><value>", ...]'
 *
 * `<op>` is `==` (must), `!=` (must not), or `==~` / `!=~`: the same as a soft rule, a
 * preference that scores hosts and never rejects one. `<value>` is an exact string, a glob
 * with `*` (matching the whole value), or `/regexp/` (JavaScript syntax, searched anywhere in
 * the value unless anchored; a leading `(?i)` makes it case-insensitive, as in Swarm's RE2).
 *
 * Constraint keys: `node` (the host's name or id) or a host label. Affinity keys: `container`
 * (a container's name or id), `image` (an image the host holds) or a container label.
 */

export const CONSTRAINTS_LABEL = 'com.docker.swarm.constraints';
export const AFFINITIES_LABEL = 'com.docker.swarm.affinities';

/** Longest regexp body accepted: tenant regexps run on the control plane's event loop. */
const MAX_REGEX_LENGTH = 256;

export interface ValuePattern {
  /** The value as written, e.g. `web-*` or `/web-[0-9]+/`. */
  readonly text: string;
  readonly kind: 'exact' | 'glob' | 'regex';
  test(value: string): boolean;
}

export type RuleKind = 'constraint' | 'affinity';

export interface PlacementRule {
  kind: RuleKind;
  key: string;
  /** `!=`: the host must (or, soft, should) not match. */
  negated: boolean;
  /** `~`: a preference that becomes a score, never a rejection. */
  soft: boolean;
  pattern: ValuePattern;
  /** The rule as written without its prefix, e.g. `container!=web-1`; used in messages. */
  text: string;
}

export interface PlacementRules {
  constraints: PlacementRule[];
  affinities: PlacementRule[];
}

const RULE = /^([A-Za-z_][A-Za-z0-9_.-]*)(==|!=)(~?)(?!~)(.+)$/;
const CONSTRAINT_PREFIX = 'constraint:';
const AFFINITY_PREFIX = 'affinity:';

/** Every placement rule a container's env and labels carry; throws InvalidArgument (400) on bad syntax. */
export function parsePlacementRules(env: readonly string[], labels: Readonly<Record<string, string>>): PlacementRules {
  const rules: PlacementRules = { constraints: [], affinities: [] };
  const add = (rule: PlacementRule): void => {
    (rule.kind === 'constraint' ? rules.constraints : rules.affinities).push(rule);
  };
  for (const entry of env) {
    const kind = placementEnvKind(entry);
    if (kind) add(parseRule(kind, entry.slice(kind.length + 1), entry));
  }
  addLabelRules(labels, CONSTRAINTS_LABEL, 'constraint', add);
  addLabelRules(labels, AFFINITIES_LABEL, 'affinity', add);
  return rules;
}

function addLabelRules(labels: Readonly<Record<string, string>>, label: string, kind: RuleKind, add: (rule: PlacementRule) => void): void {
  const raw = labels[label];
  if (raw === undefined) return;
  for (const text of parseLabelArray(label, raw)) add(parseRule(kind, text, text));
}

/** `constraint` or `affinity` when an env entry is a placement rule, so callers can keep it out of the container's env. */
export function placementEnvKind(entry: string): RuleKind | undefined {
  // Two plain tests, not a walk over a table: this runs for every env entry of every placement.
  if (entry.startsWith(CONSTRAINT_PREFIX)) return 'constraint';
  if (entry.startsWith(AFFINITY_PREFIX)) return 'affinity';
  return undefined;
}

function parseLabelArray(label: string, raw: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every((item): item is string => typeof item === 'string')) {
    throw invalidArgument(`invalid label ${label}: expected a JSON array of strings such as ["region==eu"]`);
  }
  return parsed;
}

/** One rule without its `constraint:`/`affinity:` prefix; `source` is what the user wrote, for the message. */
export function parseRule(kind: RuleKind, text: string, source = `${kind}:${text}`): PlacementRule {
  const match = RULE.exec(text);
  if (!match) {
    throw invalidArgument(
      `invalid ${kind} expression "${source}": expected <key>==<value> or <key>!=<value> (==~ and !=~ for soft rules), the key starting with a letter or underscore`,
    );
  }
  const [, key, op, tilde, value] = match as unknown as [string, string, string, string, string];
  return { kind, key, negated: op === '!=', soft: tilde === '~', pattern: parseValuePattern(value, `${kind} expression "${source}"`), text };
}

/** An exact value, a `*` glob or a `/regexp/`; `what` names the expression in errors. */
export function parseValuePattern(value: string, what: string): ValuePattern {
  if (/\s/.test(value)) throw invalidArgument(`invalid ${what}: the value must not contain spaces`);
  if (value.length >= 2 && value.startsWith('/') && value.endsWith('/')) return regexPattern(value, what);
  if (value.includes('*')) {
    const regex = new RegExp(`^${value.split('*').map(escapeRegExp).join('.*')}$`);
    return { text: value, kind: 'glob', test: (candidate) => regex.test(candidate) };
  }
  return { text: value, kind: 'exact', test: (candidate) => candidate === value };
}

function regexPattern(value: string, what: string): ValuePattern {
  let body = value.slice(1, -1);
  let flags = '';
  if (body.startsWith('(?i)')) {
    body = body.slice(4);
    flags = 'i';
  }
  if (body.length === 0) throw invalidArgument(`invalid ${what}: empty regular expression`);
  if (body.length > MAX_REGEX_LENGTH) throw invalidArgument(`invalid ${what}: regular expression longer than ${MAX_REGEX_LENGTH} characters`);
  let regex: RegExp;
  try {
    regex = new RegExp(body, flags);
  } catch (err) {
    throw invalidArgument(`invalid ${what}: ${(err as Error).message.replace(/^Invalid regular expression: /, 'bad regular expression ')}`);
  }
  return { text: value, kind: 'regex', test: (candidate) => regex.test(candidate) };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * The form image references are indexed under: `redis` and `docker.io/library/redis` become
 * `redis:latest`; ids and digests stay as they are.
 */
export function normalizeImageReference(reference: string): string {
  let ref = reference;
  if (ref.startsWith('sha256:') || ref.includes('@')) return ref;
  if (ref.startsWith('docker.io/')) ref = ref.slice('docker.io/'.length);
  if (ref.startsWith('library/')) ref = ref.slice('library/'.length);
  const lastSlash = ref.lastIndexOf('/');
  return ref.indexOf(':', lastSlash + 1) === -1 ? `${ref}:latest` : ref;
}
