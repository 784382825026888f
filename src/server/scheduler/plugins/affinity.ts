import type { PlacementRule } from '../expressions.js';
import {
  StateKey,
  type ClusterView,
  type CycleState,
  type FilterPlugin,
  type HostView,
  type PlacementRequest,
  type PreFilterPlugin,
  type PreFilterResult,
  type Rejection,
  type ScorePlugin,
  type TenantView,
} from '../types.js';
import { rulesOf } from './placement-rules.js';

/**
 * Affinity and anti-affinity: `affinity:container<op><name or id>`, `affinity:image<op><ref>`
 * (hosts that hold the image) and `affinity:<container label><op><value>`.
 *
 * `==` wants a host holding at least one matching container (or the image); `!=` a host
 * holding none. Only the requesting tenant's containers are visible: another tenant's
 * containers neither attract nor repel, and their names are never revealed.
 *
 * Each rule is resolved once per placement into the set of hosts that match it (through the
 * cluster's indexes), so the per-host filter is one set lookup per rule. Hard `==` rules also
 * narrow the hosts the framework walks to the matching ones.
 */
export const Name = 'affinity';

interface HostSet {
  has(hostId: string): boolean;
  readonly size: number;
}

interface ResolvedRule {
  rule: PlacementRule;
  hosts: HostSet;
  rejection: Rejection;
}

interface Prepared {
  hard: ResolvedRule[];
  soft: ResolvedRule[];
}

const PREPARED = new StateKey<Prepared>(`${Name}/prepared`);
const NO_HOSTS: HostSet = new Set<string>();
/** Most requests carry no affinity: they share these instead of allocating their own. */
const NO_RULES: Prepared = Object.freeze({ hard: [], soft: [] });
const NOTHING_TO_DO: PreFilterResult = Object.freeze({ skipFilter: true, skipScore: true });

export class Affinity implements PreFilterPlugin, FilterPlugin, ScorePlugin {
  readonly name = Name;

  preFilter(state: CycleState, request: PlacementRequest, cluster: ClusterView): PreFilterResult {
    const { affinities } = rulesOf(state, request);
    if (affinities.length === 0) {
      state.write(PREPARED, NO_RULES);
      return NOTHING_TO_DO;
    }
    const prepared: Prepared = { hard: [], soft: [] };
    let narrowest: ResolvedRule | undefined;
    const tenant = cluster.tenant(request.tenant);
    for (const rule of affinities) {
      const resolved: ResolvedRule = {
        rule,
        hosts: matchingHosts(rule, tenant, cluster),
        rejection: { plugin: Name, phrase: `excluded by ${rule.negated ? 'anti-affinity' : 'affinity'} to ${target(rule)}` },
      };
      if (rule.soft) {
        prepared.soft.push(resolved);
      } else {
        prepared.hard.push(resolved);
        if (!rule.negated && (!narrowest || resolved.hosts.size < narrowest.hosts.size)) narrowest = resolved;
      }
    }
    state.write(PREPARED, prepared);
    const skips = { skipFilter: prepared.hard.length === 0, skipScore: prepared.soft.length === 0 };
    if (!narrowest) return skips;
    return { ...skips, onlyHosts: toSet(narrowest.hosts), rejection: narrowest.rejection };
  }

  filter(state: CycleState, _request: PlacementRequest, host: HostView): Rejection | null {
    const { hard } = state.read(PREPARED)!;
    for (const { rule, hosts, rejection } of hard) if (hosts.has(host.id) === rule.negated) return rejection;
    return null;
  }

  score(state: CycleState, _request: PlacementRequest, host: HostView): number {
    const { soft } = state.read(PREPARED)!;
    let met = 0;
    for (const { rule, hosts } of soft) if (hosts.has(host.id) !== rule.negated) met++;
    return (100 * met) / soft.length;
  }
}

/** How a rule's subject reads in a rejection: `web-1`, `image redis`, `role=db`. */
function target(rule: PlacementRule): string {
  if (rule.key === 'container') return rule.pattern.text;
  if (rule.key === 'image') return `image ${rule.pattern.text}`;
  return `${rule.key}=${rule.pattern.text}`;
}

/** The hosts holding something the rule's value matches. */
function matchingHosts(rule: PlacementRule, tenant: TenantView, cluster: ClusterView): HostSet {
  const { pattern } = rule;
  if (rule.key === 'container') {
    if (pattern.kind === 'exact') {
      const container = tenant.byName(pattern.text) ?? tenant.byIdOrPrefix(pattern.text);
      return container ? new Set([container.hostId]) : NO_HOSTS;
    }
    const hosts = new Set<string>();
    for (const name of tenant.names()) if (pattern.test(name)) hosts.add(tenant.byName(name)!.hostId);
    return hosts;
  }
  if (rule.key === 'image') {
    if (pattern.kind === 'exact') return cluster.hostsWithImage(pattern.text) ?? NO_HOSTS;
    const hosts = new Set<string>();
    for (const reference of cluster.imageReferences()) {
      if (pattern.test(reference) || pattern.test(reference.replace(/:latest$/, ''))) {
        for (const id of cluster.hostsWithImage(reference) ?? []) hosts.add(id);
      }
    }
    return hosts;
  }
  if (pattern.kind === 'exact') return tenant.hostsWithLabel(rule.key, pattern.text) ?? NO_HOSTS;
  const hosts = new Set<string>();
  for (const value of tenant.labelValues(rule.key)) {
    if (!pattern.test(value)) continue;
    for (const id of tenant.hostsWithLabel(rule.key, value)!.keys()) hosts.add(id);
  }
  return hosts;
}

function toSet(hosts: HostSet): ReadonlySet<string> {
  if (hosts instanceof Set) return hosts;
  return new Set((hosts as ReadonlyMap<string, number>).keys());
}

export function create(): Affinity {
  return new Affinity();
}
