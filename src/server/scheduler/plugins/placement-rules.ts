import { parsePlacementRules, type PlacementRules } from '../expressions.js';
import { StateKey, type CycleState, type PlacementRequest } from '../types.js';

const KEY = new StateKey<PlacementRules>('placement-rules');

/** The request's rules, parsed once per placement and shared by the constraint and affinity plugins. */
export function rulesOf(state: CycleState, request: PlacementRequest): PlacementRules {
  let rules = state.read(KEY);
  if (!rules) {
    rules = parsePlacementRules(request.env, request.labels);
    state.write(KEY, rules);
  }
  return rules;
}
