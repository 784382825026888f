import { conflict } from '../../common/errors.js';
import { ClusterState } from './cluster-state.js';
import { DEFAULT_SAMPLING, Framework, type SamplingOptions } from './framework.js';
import { buildProfile, DEFAULT_PROFILES, type ProfileConfig } from './registry.js';
import type { PlacementRequest, Strategy } from './types.js';

export interface SchedulerOptions {
  /** The tenant's strategy; spread when not given. */
  strategyFor?: (tenant: string) => Strategy;
  sampling?: SamplingOptions;
  profiles?: Record<Strategy, ProfileConfig>;
}

/**
 * An in-flight placement. Exactly one of `confirm` (the container was created on the host)
 * or `release` (creation failed) should follow; both are safe to call again.
 */
export interface Placement {
  readonly hostId: string;
  readonly containerId: string;
  /** Hosts filtered and found feasible in this cycle (sampling stops early). */
  readonly hostsExamined: number;
  readonly feasibleHosts: number;
  confirm(): void;
  release(): void;
}

/**
 * The placement scheduler: the cluster cache plus one framework per strategy.
 *
 * Lifecycle: the cluster work feeds hosts (`cluster.upsertHost`, `removeHost`) and existing
 * containers (`cluster.addContainer`, `removeContainer`); a create calls `place`, creates the
 * container on the returned host, then `confirm`s or `release`s. `place` is synchronous, so
 * two placements never interleave; a later one sees every earlier claim.
 */
export class Scheduler {
  readonly cluster: ClusterState;
  private readonly frameworks: Record<Strategy, Framework>;
  private readonly strategyFor: (tenant: string) => Strategy;

  constructor(options: SchedulerOptions = {}, cluster = new ClusterState()) {
    this.cluster = cluster;
    this.strategyFor = options.strategyFor ?? (() => 'spread');
    const profiles = options.profiles ?? DEFAULT_PROFILES;
    const sampling = options.sampling ?? DEFAULT_SAMPLING;
    this.frameworks = {
      spread: new Framework(buildProfile(profiles.spread, { cluster }), sampling),
      binpack: new Framework(buildProfile(profiles.binpack, { cluster }), sampling),
    };
  }

  /**
   * Chooses a host and claims it. Throws InvalidArgument (400) for bad placement rules and
   * NoHostFitsError (409) with the reasons when no host fits; neither leaves a claim behind.
   */
  place(request: PlacementRequest): Placement {
    const framework = this.frameworks[this.strategyFor(request.tenant)];
    const selection = framework.selectHost(request, this.cluster);
    const refusal = framework.reserve(selection.state, request, selection.hostId);
    if (refusal) throw conflict(`no host fits: 1 host ${refusal.phrase}`);
    const cluster = this.cluster;
    return {
      hostId: selection.hostId,
      containerId: request.id,
      hostsExamined: selection.hostsExamined,
      feasibleHosts: selection.feasibleHosts,
      confirm: () => {
        if (cluster.isAssumed(request.id)) cluster.confirm(request.id);
      },
      release: () => framework.unreserve(selection.state, request, selection.hostId),
    };
  }
}
