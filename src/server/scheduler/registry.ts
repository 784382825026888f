import { internal } from '../../common/errors.js';
import type { ClusterState } from './cluster-state.js';
import type { Profile } from './framework.js';
import * as affinity from './plugins/affinity.js';
import * as binpack from './plugins/binpack.js';
import * as capacity from './plugins/capacity.js';
import * as claims from './plugins/claims.js';
import * as constraints from './plugins/constraints.js';
import * as hostHealth from './plugins/host-health.js';
import * as imageLocality from './plugins/image-locality.js';
import * as spread from './plugins/spread.js';
import type { FilterPlugin, Plugin, PreFilterPlugin, ReservePlugin, ScorePlugin, Strategy } from './types.js';

/** What a plugin factory may use. */
export interface PluginContext {
  cluster: ClusterState;
}

/** The one map of plugin name → factory. */
export const REGISTRY: Record<string, (context: PluginContext) => Plugin> = {
  [hostHealth.Name]: () => hostHealth.create(),
  [capacity.Name]: () => capacity.create(),
  [constraints.Name]: () => constraints.create(),
  [affinity.Name]: () => affinity.create(),
  [spread.Name]: () => spread.create(),
  [binpack.Name]: () => binpack.create(),
  [imageLocality.Name]: () => imageLocality.create(),
  [claims.Name]: (context) => claims.create(context.cluster),
};

/** A profile by plugin names, as an operator's configuration would give it. */
export interface ProfileConfig {
  name: string;
  preFilters: string[];
  filters: string[];
  scorers: { name: string; weight: number }[];
  reservers: string[];
  walk: Profile['walk'];
}

/**
 * Weights: a satisfied soft rule (50 × 100) outweighs any difference the strategy can make
 * (10 × 100), and the strategy outweighs image locality (2 × 100) except between hosts it
 * finds nearly equal: spreading a tenant's containers matters more than saving a pull.
 */
const SOFT_RULE_WEIGHT = 50;
const STRATEGY_WEIGHT = 10;
const IMAGE_LOCALITY_WEIGHT = 2;

function strategyProfile(strategy: Strategy): ProfileConfig {
  return {
    name: strategy,
    preFilters: [constraints.Name, affinity.Name, imageLocality.Name, ...(strategy === 'spread' ? [spread.Name] : [])],
    filters: [hostHealth.Name, capacity.Name, constraints.Name, affinity.Name],
    scorers: [
      { name: strategy, weight: STRATEGY_WEIGHT },
      { name: imageLocality.Name, weight: IMAGE_LOCALITY_WEIGHT },
      { name: constraints.Name, weight: SOFT_RULE_WEIGHT },
      { name: affinity.Name, weight: SOFT_RULE_WEIGHT },
    ],
    reservers: [claims.Name],
    walk: strategy === 'spread' ? 'rotate' : 'from-start',
  };
}

export const DEFAULT_PROFILES: Record<Strategy, ProfileConfig> = {
  spread: strategyProfile('spread'),
  binpack: strategyProfile('binpack'),
};

/**
 * Builds a profile; an unknown name, a plugin at a point it does not implement or a bad weight
 * fails here, at start-up, never during a placement. One instance per plugin name is shared by
 * the points it serves.
 */
export function buildProfile(config: ProfileConfig, context: PluginContext): Profile {
  const instances = new Map<string, Plugin>();
  const get = <T extends Plugin>(name: string, method: string): T => {
    let plugin = instances.get(name);
    if (!plugin) {
      const factory = REGISTRY[name];
      if (!factory) throw internal(`scheduler profile ${config.name}: unknown plugin ${name}`);
      plugin = factory(context);
      instances.set(name, plugin);
    }
    if (typeof (plugin as unknown as Record<string, unknown>)[method] !== 'function') {
      throw internal(`scheduler profile ${config.name}: plugin ${name} has no ${method} point`);
    }
    return plugin as T;
  };
  return {
    name: config.name,
    preFilters: config.preFilters.map((n) => get<PreFilterPlugin>(n, 'preFilter')),
    filters: config.filters.map((n) => get<FilterPlugin>(n, 'filter')),
    scorers: config.scorers.map(({ name, weight }) => {
      if (!(weight > 0)) throw internal(`scheduler profile ${config.name}: weight of ${name} must be positive`);
      return { plugin: get<ScorePlugin>(name, 'score'), weight };
    }),
    reservers: config.reservers.map((n) => get<ReservePlugin>(n, 'reserve')),
    walk: config.walk,
  };
}
