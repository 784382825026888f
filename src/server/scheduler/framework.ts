import { BerthError, internal } from '../../common/errors.js';
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
  /**
   * The hosts found feasible in the current cycle: its first `found` entries. One array for
   * every cycle, written over, never shrunk (V8 frees an array's storage when its length is
   * set to 0): cycles never overlap (`selectHost` is synchronous and plugins never call back
   * into it), and growing a fresh array to 100 hosts was half of a placement's garbage.
   * Entries past `found` are stale views (perhaps of removed hosts) and are never read.
   */
  private readonly feasible: HostView[] = [];
  /** The filters and scorers left once the skipped ones are removed, by skip mask (bit i: plugin i skipped). */
  private readonly activeFilters = new Map<number, FilterPlugin[]>();
  private readonly activeScorers = new Map<number, { plugin: ScorePlugin; weight: number }[]>();
  /** Plugin name → its bit in a skip mask of filters (of scorers): bit i is the profile's i-th filter (scorer). */
  private readonly filterBits = new Map<string, number>();
  private readonly scorerBits = new Map<string, number>();
  constructor(
    readonly profile: Profile,
    private readonly sampling: SamplingOptions = DEFAULT_SAMPLING,
  ) {
    if (profile.filters.length > 30 || profile.scorers.length > 30) throw internal(`scheduler profile ${profile.name}: more than 30 filters or scorers`);
    profile.filters.forEach((plugin, i) => this.filterBits.set(plugin.name, (this.filterBits.get(plugin.name) ?? 0) | (1 << i)));
    profile.scorers.forEach(({ plugin }, i) => this.scorerBits.set(plugin.name, (this.scorerBits.get(plugin.name) ?? 0) | (1 << i)));
  }

  /**
   * Pre-filter, filter (sampled) and score; returns the best host. Throws InvalidArgument for
   * bad placement rules and NoHostFitsError when every host refuses. Reserve is separate
   * (`reserve`), so the caller can assume the container in the cache first.
   */
  selectHost(request: PlacementRequest, cluster: ClusterView): Selection {
    const state = new CycleState();
    let onlyHosts: ReadonlySet<string> | undefined;
    let outsideRejection: Rejection | undefined;
    let skipFilters = 0;
    let skipScorers = 0;
    for (const plugin of this.profile.preFilters) {
      const result = plugin.preFilter(state, request, cluster);
      if (!result) continue;
      if (result.skipFilter) skipFilters |= this.filterBits.get(plugin.name) ?? 0;
      if (result.skipScore) skipScorers |= this.scorerBits.get(plugin.name) ?? 0;
      if (result.onlyHosts && (!onlyHosts || result.onlyHosts.size < onlyHosts.size)) {
        onlyHosts = result.onlyHosts;
        outsideRejection = result.rejection;
      }
    }
    const cycle: Cycle = {
      state,
      request,
      filters: this.filtersWithout(skipFilters),
      scorers: this.scorersWithout(skipScorers),
      hostCount: cluster.hostCount,
      diagnosis: undefined,
    };
    const feasible = this.feasible;
    let found = 0;
    const wanted = feasibleHostsToFind(cluster.hostCount, this.sampling);
    let examined = 0;
    if (onlyHosts) {
      for (const id of onlyHosts) {
        if (found >= wanted) break;
        const host = cluster.host(id);
        if (!host) continue;
        examined++;
        if (fits(cycle, host)) feasible[found++] = host;
      }
    } else {
      const hosts = cluster.hosts();
      const count = hosts.length;
      const start = this.profile.walk === 'rotate' && count > 0 ? this.nextStart % count : 0;
      for (; examined < count && found < wanted; examined++) {
        const host = hosts[(start + examined) % count]!;
        if (fits(cycle, host)) feasible[found++] = host;
      }
      if (count > 0) this.nextStart = (start + examined) % count;
    }
    if (found === 0) {
      const diagnosis = diagnosisOf(cycle);
      if (onlyHosts && outsideRejection) {
        for (const host of cluster.hosts()) if (!onlyHosts.has(host.id)) diagnosis.rejections.set(host.id, outsideRejection);
      }
      throw new NoHostFitsError(diagnosis);
    }
    return { hostId: best(cycle, feasible, found), state, hostsExamined: examined, feasibleHosts: found };
  }

  private filtersWithout(skipped: number): FilterPlugin[] {
    let filters = this.activeFilters.get(skipped);
    if (!filters) this.activeFilters.set(skipped, (filters = this.profile.filters.filter((_, i) => (skipped & (1 << i)) === 0)));
    return filters;
  }

  private scorersWithout(skipped: number): { plugin: ScorePlugin; weight: number }[] {
    let scorers = this.activeScorers.get(skipped);
    if (!scorers) this.activeScorers.set(skipped, (scorers = this.profile.scorers.filter((_, i) => (skipped & (1 << i)) === 0)));
    return scorers;
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
  hostCount: number;
  /** Made at the first refusal: most placements meet none. */
  diagnosis: Diagnosis | undefined;
}

function diagnosisOf(cycle: Cycle): Diagnosis {
  return (cycle.diagnosis ??= new Diagnosis(cycle.hostCount));
}

function fits(cycle: Cycle, host: HostView): boolean {
  for (const plugin of cycle.filters) {
    const rejection = plugin.filter(cycle.state, cycle.request, host);
    if (rejection) {
      diagnosisOf(cycle).rejections.set(host.id, rejection);
      return false;
    }
  }
  return true;
}

/** The highest weighted score; ties go to the host met first in the walk. */
function best(cycle: Cycle, feasible: readonly HostView[], found: number): string {
  let bestHost = feasible[0]!;
  if (cycle.scorers.length === 0) return bestHost.id;
  let bestScore = -Infinity;
  for (let i = 0; i < found; i++) {
    const host = feasible[i]!;
    let total = 0;
    for (const { plugin, weight } of cycle.scorers) total += weight * plugin.score(cycle.state, cycle.request, host);
    if (total > bestScore) {
      bestScore = total;
      bestHost = host;
    }
  }
  return bestHost.id;
}
