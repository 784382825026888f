/**
 * The scheduler's vocabulary.
 *
 * - A **host** is one machine an agent runs on; it reports capacity, labels, health and the
 *   images it holds. The control plane may **cordon** it (no new placements).
 * - A **placement request** asks for one container: its tenant, its id and name (assigned by
 *   the caller before scheduling, so a claim can be found again), image, resources, and the
 *   placement expressions taken from its env and labels.
 * - A **claim** is an in-flight placement: the scheduler has chosen a host and assumed the
 *   container there (its resources count as allocated, affinity rules see it) but the
 *   container is not yet created. The caller confirms the claim when creation succeeded or
 *   releases it when it failed, as kube-scheduler assumes a pod until it is bound.
 * - A **rejection** says why one host cannot take the request. Its `phrase` never names the
 *   host, so rejections of many hosts aggregate into one "no host fits" line.
 *
 * Extension points, run in this order for each request (after the Kubernetes scheduler
 * framework): pre-filter (once per request: parse, resolve affinity targets), filter (once
 * per host, pure), score (once per feasible host, 0–100), reserve/unreserve (on the chosen
 * host; unreserve undoes reserve and is safe to call twice).
 */

/** Quantities a host offers and a container asks for. Zero means "asks for none". */
export interface Resources {
  /** Thousandths of a CPU (Docker's NanoCpus / 1e6). */
  milliCpus: number;
  memoryBytes: number;
  diskBytes: number;
  /** Whole devices (GPUs); counted, never shared. */
  gpus: number;
}

export const NO_RESOURCES: Readonly<Resources> = Object.freeze({ milliCpus: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 });

/** What the control plane knows about a host, as its agent last reported it. */
export interface HostInfo {
  id: string;
  name: string;
  labels: Readonly<Record<string, string>>;
  capacity: Readonly<Resources>;
  /** False once heartbeats stop; a down host takes no placements. */
  healthy: boolean;
  /** Set by the operator (`berth host cordon`); existing containers stay, new ones go elsewhere. */
  cordoned: boolean;
  /** References of the images the host holds: `name:tag` and `sha256:` ids. */
  images: readonly string[];
  /**
   * Most containers the host takes, whatever their size (Swarm's `containerslots`, kubelet's
   * max pods): containers without limits ask for no resources, so capacity alone would let
   * binpack stack them on one host without end. Unset: no limit.
   */
  maxContainers?: number;
}

/** A container the scheduler accounts for on a host, placed (confirmed) or assumed (claimed). */
export interface ContainerRecord {
  tenant: string;
  id: string;
  name: string;
  hostId: string;
  image: string;
  labels: Readonly<Record<string, string>>;
  resources: Readonly<Resources>;
}

export const STRATEGIES = ['spread', 'binpack'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface PlacementRequest {
  tenant: string;
  /** The container's id, assigned by the caller before placement. */
  id: string;
  name: string;
  image: string;
  resources: Readonly<Resources>;
  /** Container env as `KEY=value`; `constraint:` and `affinity:` entries are placement rules. */
  env: readonly string[];
  /** Container labels; `com.docker.swarm.constraints` / `.affinities` hold JSON arrays of rules. */
  labels: Readonly<Record<string, string>>;
}

/**
 * Why a host was refused. `phrase` completes "N hosts …" (e.g. "without enough memory (need
 * 2 GiB)"), is the same string for every host refused for the same cause, and never names a
 * host, so the summary can group by it.
 */
export interface Rejection {
  plugin: string;
  phrase: string;
}

/**
 * A typed key into CycleState. Each plugin makes its keys once, at module load; a key is a
 * slot number, so a read in the per-host loop is an array access, not a hash lookup.
 */
export class StateKey<T> {
  private static nextSlot = 0;
  readonly slot = StateKey.nextSlot++;
  declare readonly __type?: T;
  constructor(readonly name: string) {}
}

/** Per-request scratch space; each plugin keeps what it parsed or resolved under its own keys. */
export class CycleState {
  private readonly slots: unknown[] = [];
  write<T>(key: StateKey<T>, value: T): void {
    this.slots[key.slot] = value;
  }
  read<T>(key: StateKey<T>): T | undefined {
    return this.slots[key.slot] as T | undefined;
  }
}

/** The live view of hosts and containers plugins read; see cluster-state.ts. */
export interface ClusterView {
  readonly hostCount: number;
  host(id: string): HostView | undefined;
  /** Every host, in a stable order (the framework walks it round-robin). */
  hosts(): readonly HostView[];
  /** Per-tenant container indexes: affinity never sees another tenant's containers. */
  tenant(tenant: string): TenantView;
  /** Hosts holding an image reference exactly (normalised), for image affinity. */
  hostsWithImage(reference: string): ReadonlySet<string> | undefined;
  /** The same by host slot (`HostView.slot`): 1 where the host holds the image; slots past the end hold none. */
  hostSlotsWithImage(reference: string): Readonly<Uint8Array> | undefined;
  /** Every distinct (normalised) image reference some host holds, for image globs and regexps. */
  imageReferences(): Iterable<string>;
}

/**
 * A host as plugins read it. `id`, `capacity`, `healthy` and `cordoned` are copies of the
 * reported HostInfo in one fixed object shape, so the per-host loop reads them fast.
 */
export interface HostView {
  readonly id: string;
  /** A small integer naming the host while it is in the cluster (freed slots are reused); per-host arrays are indexed by it. */
  readonly slot: number;
  readonly info: HostInfo;
  readonly capacity: Readonly<Resources>;
  readonly healthy: boolean;
  readonly cordoned: boolean;
  /** HostInfo.maxContainers, or Infinity. */
  readonly maxContainers: number;
  /** Sum of the resources of placed and assumed containers. */
  readonly allocated: Readonly<Resources>;
  /** Containers (of every tenant) accounted on this host. */
  readonly containerCount: number;
}

/** hostId → number of matching containers there. */
export type HostCounts = ReadonlyMap<string, number>;

export interface TenantView {
  readonly containerCount: number;
  byName(name: string): ContainerRecord | undefined;
  /** A full id, or a prefix of at least 12 characters (docker's short id). */
  byIdOrPrefix(idOrPrefix: string): ContainerRecord | undefined;
  names(): Iterable<string>;
  /** Hosts holding this tenant's containers with label `key` = `value`. */
  hostsWithLabel(key: string, value: string): HostCounts | undefined;
  /** The distinct values of label `key` among this tenant's containers. */
  labelValues(key: string): Iterable<string>;
  /** This tenant's containers on the host in `slot` (`HostView.slot`). */
  containersOn(slot: number): number;
}

export interface Plugin {
  readonly name: string;
}

/** Hosts the request can only go to, decided once per request (e.g. `affinity:container==web-1`). */
export interface PreFilterResult {
  /** When set, hosts outside it are rejected with `rejection` without running filters. */
  onlyHosts?: ReadonlySet<string>;
  rejection?: Rejection;
  /** This plugin's filter has nothing to check for this request (no hard rules): skip it. */
  skipFilter?: boolean;
  /** This plugin's score would be the same for every host (no soft rules): skip it. */
  skipScore?: boolean;
}

export interface PreFilterPlugin extends Plugin {
  /** Parses and resolves once per request. Throws a BerthError(InvalidArgument) for bad syntax. */
  preFilter(state: CycleState, request: PlacementRequest, cluster: ClusterView): PreFilterResult | undefined;
}

export interface FilterPlugin extends Plugin {
  /** Null when the host fits; never throws for an expected refusal. */
  filter(state: CycleState, request: PlacementRequest, host: HostView): Rejection | null;
}

export interface ScorePlugin extends Plugin {
  /** 0–100, higher is better; called only for hosts every filter accepted. */
  score(state: CycleState, request: PlacementRequest, host: HostView): number;
}

export interface ReservePlugin extends Plugin {
  /** Null on success; a rejection makes the framework unreserve every plugin and give up the host. */
  reserve(state: CycleState, request: PlacementRequest, hostId: string): Rejection | null;
  /** Undoes reserve; idempotent. */
  unreserve(state: CycleState, request: PlacementRequest, hostId: string): void;
}
