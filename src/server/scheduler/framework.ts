import { BerthError } from '../../common/errors.js';
import {
  CycleState,
  type ClusterView,
  type FilterPlugin,
  type HostView,
  type PlacementRequest,
  type PreFilterPlugin,
  type Rejection,
  type ReservePlugin,
  type ScorePlugin,
} from './types.js';

/**
 * One scheduling profile: the plugins at each extension point, in order. Filters run in order
 * and the first refusal is the host's reason, so cheap and common refusals go first.
 */
export interface Profile {
  name: string;
  preFilters: PreFilterPlugin[];
  filters: FilterPlugin[];
  scorers: { plugin: ScorePlugin; weight: number }[];
  reservers: ReservePlugin[];
  /**
   * `rotate` starts each walk over the hosts where the last one stopped, so sampled placements
   * visit every host in turn (spread); `from-start` always starts at the first host, so the
   * same hosts fill up first (binpack).
   */
  walk: 'rotate' | 'from-start';
}

export interface SamplingOptions {
  /**
   * Stop filtering once this percentage of the cluster's hosts has been found feasible
   * (kube-scheduler's percentageOfNodesToScore). 0 picks it from the cluster's size: 50 %
   * minus 1 % per 100 hosts, never under 2 % (kube-scheduler: per 125 hosts, never under 5 %;
   * Berth's per-host cost in Node is higher, see docs/scheduler.md). 100 examines all.
   */
  percentageOfHostsToScore: number;
  /** Never stop before this many feasible hosts (kube-scheduler's floor is 100). */
  minFeasibleHostsToScore: number;
}

export const DEFAULT_SAMPLING: SamplingOptions = { percentageOfHostsToScore: 0, minFeasibleHostsToScore: 100 };

/** How many feasible hosts to find before scoring, for a cluster of `hostCount`. */
export function feasibleHostsToFind(hostCount: number, sampling: SamplingOptions): number {
  if (hostCount <= sampling.minFeasibleHostsToScore || sampling.percentageOfHostsToScore >= 100) return hostCount;
  const percentage = sampling.percentageOfHostsToScore > 0 ? sampling.percentageOfHostsToScore : Math.max(2, 50 - hostCount / 100);
  return Math.max(sampling.minFeasibleHostsToScore, Math.floor((hostCount * percentage) / 100));
}

/** The outcome of one placement cycle. */
export interface Selection {
  hostId: string;
  state: CycleState;
  /** Hosts whose filters ran; the rest of the cluster was not looked at (sampling). */
  hostsExamined: number;
  feasibleHosts: number;
}

/** Why each host was refused; complete (every host of the cluster) when no host fits. */
export class Diagnosis {
  readonly rejections = new Map<string, Rejection>();
  constructor(readonly hostCount: number) {}

  /** "3 hosts without enough memory (need 2 GiB), 2 excluded by anti-affinity to web-1, 1 cordoned". */
  summary(): string {
    if (this.hostCount === 0) return 'the cluster has no hosts';
    const counts = new Map<string, number>();
    for (const rejection of this.rejections.values()) counts.set(rejection.phrase, (counts.get(rejection.phrase) ?? 0) + 1);
    const groups = [...counts].sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
    return groups
      .map(([phrase, count], i) => (i === 0 ? `${count} ${count === 1 ? 'host' : 'hosts'} ${phrase}` : `${count} ${phrase}`))
      .join(', ');
  }
}

/**
 * "No host fits", answered as 409 Conflict like Triton's DockerNoComputeResourcesError: the
 * request is valid but the cluster's state refuses it now. The diagnosis keeps each host's
 * reason for logs and operators; the message is the one-line summary.
 */
export class NoHostFitsError extends BerthError {
  constructor(readonly diagnosis: Diagnosis) {
    super('Conflict', `no host fits: ${diagnosis.summary()}`);
  }
}

export class Framework {
  private nextStart = 0;
  constructor(
    readonly profile: Profile,
    private readonly sampling: SamplingOptions = DEFAULT_SAMPLING,
  ) {}

  /**
   * Pre-filter, filter (sampled) and score; returns the best host. Throws InvalidArgument for
   * bad placement rules and NoHostFitsError when every host refuses. Reserve is separate
   * (`reserve`), so the caller can assume the container in the cache first.
   */
  selectHost(request: PlacementRequest, cluster: ClusterView): Selection {
    const state = new CycleState();
    let onlyHosts: ReadonlySet<string> | undefined;
    let outsideRejection: Rejection | undefined;
    const skipFilter = new Set<string>();
    const skipScore = new Set<string>();
    for (const plugin of this.profile.preFilters) {
      const result = plugin.preFilter(state, request, cluster);
      if (!result) continue;
      if (result.skipFilter) skipFilter.add(plugin.name);
      if (result.skipScore) skipScore.add(plugin.name);
      if (result.onlyHosts && (!onlyHosts || result.onlyHosts.size < onlyHosts.size)) {
        onlyHosts = result.onlyHosts;
        outsideRejection = result.rejection;
      }
    }
    const cycle: Cycle = {
      state,
      request,
      filters: this.profile.filters.filter((p) => !skipFilter.has(p.name)),
      scorers: this.profile.scorers.filter(({ plugin }) => !skipScore.has(plugin.name)),
      diagnosis: new Diagnosis(cluster.hostCount),
    };
    const feasible: HostView[] = [];
    const wanted = feasibleHostsToFind(cluster.hostCount, this.sampling);
    let examined = 0;
    if (onlyHosts) {
      for (const id of onlyHosts) {
        if (feasible.length >= wanted) break;
        const host = cluster.host(id);
        if (!host) continue;
        examined++;
        if (fits(cycle, host)) feasible.push(host);
      }
    } else {
      const hosts = cluster.hosts();
      const count = hosts.length;
      const start = this.profile.walk === 'rotate' && count > 0 ? this.nextStart % count : 0;
      for (; examined < count && feasible.length < wanted; examined++) {
        const host = hosts[(start + examined) % count]!;
        if (fits(cycle, host)) feasible.push(host);
      }
      if (count > 0) this.nextStart = (start + examined) % count;
    }
    if (feasible.length === 0) {
      if (onlyHosts && outsideRejection) {
        for (const host of cluster.hosts()) if (!onlyHosts.has(host.id)) cycle.diagnosis.rejections.set(host.id, outsideRejection);
      }
      throw new NoHostFitsError(cycle.diagnosis);
    }
    return { hostId: best(cycle, feasible), state, hostsExamined: examined, feasibleHosts: feasible.length };
  }

  /** Runs every reserve plugin on the chosen host; on a refusal, unreserves them all and returns it. */
  reserve(state: CycleState, request: PlacementRequest, hostId: string): Rejection | null {
    for (const plugin of this.profile.reservers) {
      const refusal = plugin.reserve(state, request, hostId);
      if (refusal) {
        this.unreserve(state, request, hostId);
        return refusal;
      }
    }
    return null;
  }

  /** Undoes reserve in reverse order; each plugin's unreserve is idempotent. */
  unreserve(state: CycleState, request: PlacementRequest, hostId: string): void {
    for (const plugin of [...this.profile.reservers].reverse()) plugin.unreserve(state, request, hostId);
  }
}

/** One placement's plugins (those not skipped for this request) and its findings. */
interface Cycle {
  state: CycleState;
  request: PlacementRequest;
  filters: FilterPlugin[];
  scorers: { plugin: ScorePlugin; weight: number }[];
  diagnosis: Diagnosis;
}

function fits(cycle: Cycle, host: HostView): boolean {
  for (const plugin of cycle.filters) {
    const rejection = plugin.filter(cycle.state, cycle.request, host);
    if (rejection) {
      cycle.diagnosis.rejections.set(host.id, rejection);
      return false;
    }
  }
  return true;
}

/** The highest weighted score; ties go to the host met first in the walk. */
function best(cycle: Cycle, feasible: HostView[]): string {
  let bestHost = feasible[0]!;
  if (cycle.scorers.length === 0) return bestHost.id;
  let bestScore = -Infinity;
  for (const host of feasible) {
    let total = 0;
    for (const { plugin, weight } of cycle.scorers) total += weight * plugin.score(cycle.state, cycle.request, host);
    if (total > bestScore) {
      bestScore = total;
      bestHost = host;
    }
  }
  return bestHost.id;
}
