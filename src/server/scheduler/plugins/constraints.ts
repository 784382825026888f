import type { PlacementRule } from '../expressions.js';
import {
  StateKey,
  type CycleState,
  type FilterPlugin,
  type HostInfo,
  type HostView,
  type PlacementRequest,
  type PreFilterPlugin,
  type PreFilterResult,
  type Rejection,
  type ScorePlugin,
} from '../types.js';
import { rulesOf } from './placement-rules.js';

/**
 * Constraints on hosts: `constraint:node==<name or id>` or `constraint:<host label><op><value>`.
 * A hard rule refuses hosts that do not satisfy it; a soft one (`==~`, `!=~`) only scores. A
 * host without the label fails `==` and satisfies `!=`, as in Swarm.
 */
export const Name = 'constraints';

interface Prepared {
  hard: { rule: PlacementRule; rejection: Rejection }[];
  soft: PlacementRule[];
}

const PREPARED = new StateKey<Prepared>(`${Name}/prepared`);
/** Most requests carry no constraint: they share these instead of allocating their own. */
const NO_RULES: Prepared = Object.freeze({ hard: [], soft: [] });
const NOTHING_TO_DO: PreFilterResult = Object.freeze({ skipFilter: true, skipScore: true });

export function hostMatches(rule: PlacementRule, host: HostInfo): boolean {
  if (rule.key === 'node') return rule.pattern.test(host.name) || rule.pattern.test(host.id);
  const value = host.labels[rule.key];
  return value !== undefined && rule.pattern.test(value);
}

function satisfies(rule: PlacementRule, host: HostInfo): boolean {
  return hostMatches(rule, host) !== rule.negated;
}

export class Constraints implements PreFilterPlugin, FilterPlugin, ScorePlugin {
  readonly name = Name;

  preFilter(state: CycleState, request: PlacementRequest): PreFilterResult {
    const { constraints } = rulesOf(state, request);
    if (constraints.length === 0) {
      state.write(PREPARED, NO_RULES);
      return NOTHING_TO_DO;
    }
    const prepared: Prepared = { hard: [], soft: [] };
    for (const rule of constraints) {
      if (rule.soft) prepared.soft.push(rule);
      else prepared.hard.push({ rule, rejection: { plugin: Name, phrase: `excluded by constraint ${rule.text}` } });
    }
    state.write(PREPARED, prepared);
    return { skipFilter: prepared.hard.length === 0, skipScore: prepared.soft.length === 0 };
  }

  filter(state: CycleState, _request: PlacementRequest, host: HostView): Rejection | null {
    const { hard } = state.read(PREPARED)!;
    for (const { rule, rejection } of hard) if (!satisfies(rule, host.info)) return rejection;
    return null;
  }

  score(state: CycleState, _request: PlacementRequest, host: HostView): number {
    const { soft } = state.read(PREPARED)!;
    let met = 0;
    for (const rule of soft) if (satisfies(rule, host.info)) met++;
    return (100 * met) / soft.length;
  }
}

export function create(): Constraints {
  return new Constraints();
}
