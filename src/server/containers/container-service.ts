import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RequestContext } from '../../common/context.js';
import { BerthError, conflict, invalidArgument, isKind, notFound, notModified } from '../../common/errors.js';
import { newId, randomName, VALID_NAME } from '../../common/ids.js';
import { KeyedMutex } from '../../common/keyed-mutex.js';
import type { Logger } from '../../common/logging.js';
import { nowRfc3339Nano, parseRfc3339 } from '../../common/human-time.js';
import type { ContainerRuntime, ContainerSpecInput, ExitRecord, ResourceLimits } from '../../agent/runtime/types.js';
import type { EventPublisher } from '../events/types.js';
import type { ImageResolver, RootfsManager } from '../images/types.js';
import type { Store, Stored } from '../store/store.js';
import { mergeContainerConfig, normaliseHostConfig, processEnv, type CreateBody } from './create-config.js';
import { ZERO_TIME, type ContainerRecord, type ContainerState, type HostConfig } from './model.js';
import { nextRestartDelay, parseRestartPolicy, shouldRestart } from './restart-policy.js';
import { normaliseSignal, signalNumber } from './signals.js';
import { containerInspect, containerSummary, selectContainers } from './container-views.js';
import type { MountPlanner, PlannedMounts } from '../mounts/mount-planner.js';
import { healthOnStart, type HealthState } from '../health/health-config.js';
import type { ContainerNetworking } from '../networks/types.js';
import { matchesNetworkFilters } from '../networks/container-filters.js';
import { labelMatches, parseFilters } from '../list-filters.js';
import type { IdRange } from '../../agent/userns/id-range.js';
import { chownToRangeRoot } from '../../agent/userns/ownership.js';
import { containerIdRange } from '../tenancy/userns-ranges.js';

/** The Store kind of container records (quotas count them straight from the store). */
export const CONTAINER_KIND = 'container';
const KIND = CONTAINER_KIND;

/**
 * Per-phase timings of one operation, logged at debug when BERTH_TRACE=1 (for finding where a
 * `docker run` spends its time). `mark(name)` closes the phase that ran since the last mark.
 */
interface PhaseTrace {
  mark(phase: string): void;
  end(): void;
}

const TRACING = process.env.BERTH_TRACE === '1';
const NO_TRACE: PhaseTrace = { mark: () => undefined, end: () => undefined };

function phaseTrace(log: Logger, op: string, id: string): PhaseTrace {
  if (!TRACING) return NO_TRACE;
  const began = performance.now();
  let last = began;
  const phases: Record<string, number> = {};
  return {
    mark(phase) {
      const now = performance.now();
      phases[phase] = Math.round((now - last) * 10) / 10;
      last = now;
    },
    end() {
      log.debug({ trace: op, id, phases, totalMs: Math.round((performance.now() - began) * 10) / 10 }, 'phase timings');
    },
  };
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

/** Called after the runtime created the container and before its process runs (attach hooks in here). */
export type BeforeStartHook = (ctx: RequestContext, record: ContainerRecord) => Promise<void>;

export type StartFailedHook = (ctx: RequestContext, record: ContainerRecord, error: unknown) => void;

export interface ContainerServiceOptions {
  store: Store;
  runtime: ContainerRuntime;
  images: ImageResolver;
  rootfs: RootfsManager;
  events: EventPublisher;
  dataRoot: string;
  logger: Logger;
  /** Volumes, binds and tmpfs mounts (server/mounts); without it a container has none. */
  mounts?: MountPlanner;
  /** Networks, addresses, ports and DNS of containers; without it containers get loopback only. */
  networking?: ContainerNetworking;
  /** A tenant's user-namespace ID range (docs/tenancy.md); none: no user namespace. */
  usernsOf?: (tenant: string) => IdRange | undefined;
}

interface Waiter {
  condition: WaitCondition;
  resolve: (result: { StatusCode: number; Error?: { Message: string } }) => void;
}

/**
 * Container lifecycle for one host: create, start, stop, kill, restart, pause, remove,
 * rename, update, wait; exit handling with restart policies; start-up reconcile.
 *
 * Every transition is written to the Store before it is acknowledged. Operations on one
 * container are serialised (KeyedMutex); exits are recorded by a watcher that does not take
 * that lock, so `stop` can wait for the exit it caused.
 */
export class ContainerService {
  private readonly store: Store;
  private readonly runtime: ContainerRuntime;
  private readonly images: ImageResolver;
  private readonly rootfs: RootfsManager;
  private readonly events: EventPublisher;
  private readonly dataRoot: string;
  private readonly log: Logger;
  private readonly mounts: MountPlanner | undefined;
  private readonly networking: ContainerNetworking | undefined;
  private readonly ops = new KeyedMutex();
  private readonly writes = new KeyedMutex();
  private readonly waiters = new Map<string, Waiter[]>();
  /** Resolves when the exit of the current run has been recorded. */
  private readonly exitRecorded = new Map<string, Promise<void>>();
  private readonly restartDelays = new Map<string, number>();
  private readonly restartTimers = new Map<string, NodeJS.Timeout>();
  /** Host cleanups of removed containers still under way (see cleanUpHost). */
  private readonly hostCleanups = new Map<string, Promise<void>>();
  private readonly beforeStartHooks: BeforeStartHook[] = [];
  private readonly startFailedHooks: StartFailedHook[] = [];
  private readonly tenants = new Map<string, string>();
  private closing = false;
  private readonly usernsOf: (tenant: string) => IdRange | undefined;

  constructor(options: ContainerServiceOptions) {
    this.store = options.store;
    this.runtime = options.runtime;
    this.images = options.images;
    this.rootfs = options.rootfs;
    this.events = options.events;
    this.dataRoot = options.dataRoot;
    this.log = options.logger;
    this.mounts = options.mounts;
    this.networking = options.networking;
    this.usernsOf = options.usernsOf ?? (() => undefined);
  }

  addBeforeStartHook(hook: BeforeStartHook): void {
    this.beforeStartHooks.push(hook);
  }

  /** Called when a user's start fails, so sessions waiting for the start (attach) can end. */
  addStartFailedHook(hook: StartFailedHook): void {
    this.startFailedHooks.push(hook);
  }

  /** The ID range a container's files are stored in (a tenant's), for those that read them raw. */
  idRangeOf(id: string): Promise<IdRange | undefined> {
    return this.rootfs.idRangeOf(id);
  }

  containerDir(id: string): string {
    return join(this.dataRoot, 'containers', id);
  }

  /** Resolves a user's reference (id, name, unique prefix) within the tenant. */
  async lookup(ctx: RequestContext, ref: string): Promise<ContainerRecord> {
    return (await this.lookupStored(ctx, ref)).value;
  }

  private async lookupStored(ctx: RequestContext, ref: string): Promise<Stored<ContainerRecord>> {
    const name = ref.startsWith('/') ? ref.slice(1) : ref;
    if (name === '') throw notFound(`No such container: ${ref}`);
    try {
      return await this.store.lookup<ContainerRecord>(ctx, KIND, name);
    } catch (err) {
      if (isKind(err, 'NotFound')) throw notFound(`No such container: ${ref}`);
      throw err;
    }
  }

  async list(ctx: RequestContext): Promise<ContainerRecord[]> {
    // A listing taken after a removal was acknowledged also finds the host without it.
    await this.hostCleanupsSettled(5000);
    return (await this.store.list<ContainerRecord>(ctx, KIND)).map((stored) => stored.value);
  }

  /** Exec ids of a container, for inspect; supplied by the exec service at wiring time. */
  execIdsOf: (containerId: string) => string[] = () => [];

  // ---------------------------------------------------------------- views

  async listView(
    ctx: RequestContext,
    options: { all: boolean; limit: number; size: boolean; filters: string | undefined },
  ): Promise<Record<string, unknown>[]> {
    const filters = parseFilters(options.filters);
    const ancestors = new Map<string, string[]>();
    for (const ref of filters.ancestor ?? []) {
      const id = await this.images.resolve(ctx, ref).then((image) => image.id, () => undefined);
      ancestors.set(ref, id ? [id] : []);
    }
    const records = await this.list(ctx);
    const networkFacts = this.networking && (filters.network || filters.publish || filters.expose) ? await this.networking.filterFacts(ctx, records) : undefined;
    const selected = selectContainers(records, {
      all: options.all,
      limit: options.limit,
      filters,
      imageIdsFor: (ref) => ancestors.get(ref) ?? [],
      ...(networkFacts ? { networkFiltersMatch: (r: ContainerRecord) => matchesNetworkFilters(filters, r, networkFacts.get(r.id)) } : {}),
    });
    const networkSummaries = await this.networking?.summarySettings(ctx, selected);
    return Promise.all(
      selected.map(async (record) => {
        const network = networkSummaries?.get(record.id);
        const summary = options.size ? await this.rootfs.sizeRw(record.id).catch(() => 0).then((sizeRw) => containerSummary(record, { SizeRw: sizeRw, SizeRootFs: sizeRw })) : containerSummary(record);
        return network ? { ...summary, ...network } : summary;
      }),
    );
  }

  async inspectView(ctx: RequestContext, ref: string, size: boolean): Promise<Record<string, unknown>> {
    const record = await this.lookup(ctx, ref);
    const dir = this.containerDir(record.id);
    const view = containerInspect(record, {
      execIds: this.execIdsOf(record.id),
      rootfs: { upperDir: join(dir, 'upper'), workDir: join(dir, 'work'), mergedDir: join(dir, 'merged') },
    });
    if (this.networking) view.NetworkSettings = await this.networking.inspectSettings(ctx, record);
    if (size) {
      const sizeRw = await this.rootfs.sizeRw(record.id).catch(() => 0);
      view.SizeRw = sizeRw;
      view.SizeRootFs = sizeRw;
    }
    return view;
  }

  /** Removes stopped containers (filters: until, label, label!). */
  async prune(ctx: RequestContext, rawFilters: string | undefined): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    const filters = parseFilters(rawFilters);
    for (const key of Object.keys(filters)) {
      if (!['until', 'label', 'label!'].includes(key)) throw invalidArgument(`invalid filter '${key}'`);
    }
    const untilMs = filters.until?.[0] ? parseUntil(filters.until[0]) : undefined;
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const record of await this.list(ctx)) {
      if (record.state.Running || record.state.Status === 'restarting' || record.state.Status === 'removing') continue;
      if (untilMs !== undefined && parseRfc3339(record.created) >= untilMs) continue;
      if (filters.label && !filters.label.every((l) => labelMatches(record.config.Labels, l))) continue;
      if (filters['label!'] && filters['label!'].some((l) => labelMatches(record.config.Labels, l))) continue;
      const size = await this.rootfs.sizeRw(record.id).catch(() => 0);
      try {
        await this.remove(ctx, record.id, { force: false, volumes: false });
        deleted.push(record.id);
        reclaimed += size;
      } catch (err) {
        this.log.warn({ err, id: record.id }, 'prune could not remove a container');
      }
    }
    this.events.publish(ctx, { Type: 'container', Action: 'prune', Actor: { ID: '', Attributes: { reclaimed: String(reclaimed) } } });
    return { ContainersDeleted: deleted, SpaceReclaimed: reclaimed };
  }

  // ---------------------------------------------------------------- create

  /** `options.id`: the id the cluster's control plane chose (the same id after a failover). */
  async create(ctx: RequestContext, requestedName: string | undefined, body: CreateBody, options: { id?: string } = {}): Promise<{ Id: string; Warnings: string[] }> {
    if (typeof body !== 'object' || body === null) throw invalidArgument('invalid request body: a JSON object is required');
    if (typeof body.Image !== 'string' || body.Image === '') throw invalidArgument('Config.Image must be specified');
    let name = requestedName?.startsWith('/') ? requestedName.slice(1) : requestedName;
    if (name !== undefined && name !== '' && !VALID_NAME.test(name)) {
      throw invalidArgument(`Invalid container name (${requestedName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    }
    const hostConfig = normaliseHostConfig(body.HostConfig);
    const consoleSize = parseConsoleSize(body.HostConfig?.ConsoleSize);
    if (consoleSize) hostConfig.ConsoleSize = consoleSize;
    const image = await this.images.resolve(ctx, body.Image);
    const networkPlan = await this.networking?.planCreate(ctx, name ?? '', hostConfig, body.NetworkingConfig);
    const id = options.id ?? newId();
    const trace = phaseTrace(this.log, 'create', id);
    trace.mark('resolve');
    const config = mergeContainerConfig(body, image.config, id);
    if (name) await this.ensureNameFree(ctx, name);
    else name = await this.generateName(ctx);
    trace.mark('name');
    const planned = await this.planMounts(ctx, body, hostConfig, config.Volumes);

    const dir = this.containerDir(id);
    const record: ContainerRecord = {
      id,
      name,
      created: nowRfc3339Nano(),
      image: body.Image,
      imageId: image.id,
      path: [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])][0] ?? '',
      args: [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])].slice(1),
      config,
      hostConfig,
      state: initialState(),
      restartCount: 0,
      manuallyStopped: false,
      logPath: join(dir, 'container.log'),
      hostnamePath: join(dir, 'hostname'),
      hostsPath: join(dir, 'hosts'),
      resolvConfPath: join(dir, 'resolv.conf'),
      ...(planned ? { mounts: planned.points } : {}),
    };
    // The rootfs exists before the record so that a record never points at nothing; a crash in
    // between leaves an orphan directory that start-up reconcile removes.
    try {
      // Independent steps at once; both settle before a failure rolls back, so nothing they
      // create can appear after the cleanup.
      const idRange = containerIdRange(this.usernsOf(ctx.tenant), hostConfig);
      const prepared = await Promise.allSettled([this.rootfs.prepare(id, image.id, idRange), this.writeEtcFiles(record, idRange)]);
      const failed = prepared.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed) throw failed.reason;
      trace.mark('rootfs+etc');
      await this.store.create<ContainerRecord>(ctx, KIND, { id, name, value: record });
      trace.mark('store');
      if (this.networking && networkPlan) {
        try {
          await this.networking.attachCreated(ctx, id, networkPlan);
        } catch (err) {
          await this.networking.removeContainer(ctx, id).catch(() => undefined);
          await this.store.delete(ctx, KIND, id).catch(() => undefined);
          throw err;
        }
      }
    } catch (err) {
      await this.rootfs.remove(id).catch(() => undefined);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      if (planned) await this.mounts!.release(ctx, planned);
      if (isKind(err, 'AlreadyExists')) throw await this.nameConflict(ctx, name);
      throw err;
    }
    this.tenants.set(id, ctx.tenant);
    this.publish(ctx, record, 'create');
    trace.end();
    return { Id: id, Warnings: [] };
  }

  private async planMounts(ctx: RequestContext, body: CreateBody, hostConfig: HostConfig, volumes: Record<string, object> | null | undefined): Promise<PlannedMounts | undefined> {
    if (!this.mounts) return undefined;
    return this.mounts.plan(
      ctx,
      {
        binds: hostConfig.Binds ?? [],
        mounts: hostConfig.Mounts ?? [],
        volumesFrom: hostConfig.VolumesFrom ?? [],
        configVolumes: Object.keys(volumes ?? {}),
        tmpfs: Object.keys(hostConfig.Tmpfs),
      },
      async (ref) => {
        const source = await this.lookup(ctx, ref);
        return { id: source.id, mounts: source.mounts ?? [] };
      },
    );
  }

  /** Writes State.Health (server/health) of a container; returns the record written. */
  async setHealth(ctx: RequestContext, id: string, update: (health: HealthState | undefined) => HealthState | undefined): Promise<ContainerRecord> {
    return this.mutate(ctx, id, (current) => {
      const health = update(current.state.Health as HealthState | undefined);
      if (health) current.state.Health = health;
      else delete current.state.Health;
    });
  }

  private async ensureNameFree(ctx: RequestContext, name: string): Promise<void> {
    const existing = await this.store.list<ContainerRecord>(ctx, KIND);
    if (existing.some((stored) => stored.name === name)) throw await this.nameConflict(ctx, name);
  }

  private async nameConflict(ctx: RequestContext, name: string): Promise<BerthError> {
    const holder = (await this.store.list<ContainerRecord>(ctx, KIND)).find((stored) => stored.name === name);
    return conflict(
      `Conflict. The container name "/${name}" is already in use by container "${holder?.id ?? 'unknown'}". You have to remove (or rename) that container to be able to reuse that name.`,
    );
  }

  private async generateName(ctx: RequestContext): Promise<string> {
    const taken = new Set((await this.store.list<ContainerRecord>(ctx, KIND)).map((stored) => stored.name));
    for (let attempt = 0; attempt < 20; attempt++) {
      const candidate = attempt < 10 ? randomName() : `${randomName()}${attempt}`;
      if (!taken.has(candidate)) return candidate;
    }
    return `berth_${newId().slice(0, 8)}`;
  }

  private async writeEtcFiles(record: ContainerRecord, idRange?: IdRange): Promise<void> {
    await mkdir(this.containerDir(record.id), { recursive: true });
    const hostname = record.config.Hostname;
    await writeFile(record.hostnamePath, `${hostname}\n`);
    await writeFile(
      record.hostsPath,
      `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t${hostname}\n`,
    );
    // The container has loopback only until networking lands; keep the host's search domains
    // but never point it at a resolver on the host's loopback, which it cannot reach.
    const hostResolv = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
    const lines = hostResolv.split('\n').filter((line) => !/^\s*nameserver\s+(127\.|::1)/.test(line));
    await writeFile(record.resolvConfPath, `${lines.join('\n').trim()}\n`);
    // Root in a tenant's container owns them, as root in the operator's does.
    if (idRange) await chownToRangeRoot(idRange, [record.hostnamePath, record.hostsPath, record.resolvConfPath]);
  }

  // ---------------------------------------------------------------- start

  async start(ctx: RequestContext, ref: string): Promise<void> {
    const { id } = await this.lookupStored(ctx, ref);
    await this.ops.run(id, async () => {
      const record = (await this.store.get<ContainerRecord>(ctx, KIND, id)).value;
      if (record.state.Status === 'paused') throw conflict('cannot start a paused container, try unpause instead');
      if (record.state.Running) throw notModified();
      if (record.state.Status === 'removing') throw conflict(`container is marked for removal and cannot be started`);
      this.cancelPendingRestart(id);
      try {
        await this.startLocked(ctx, record, false);
      } catch (err) {
        for (const hook of this.startFailedHooks) hook(ctx, record, err);
        // dockerd removes an auto-remove container whose start failed; its waiters (the CLI's
        // wait?condition=removed) and attach sessions end with it.
        if (record.hostConfig.AutoRemove) await this.removeLocked(ctx, id, { volumes: true }).catch(() => undefined);
        throw err;
      }
    });
  }

  /** Runs the container's process. The caller holds the container's op lock. */
  private async startLocked(ctx: RequestContext, record: ContainerRecord, isRestart: boolean): Promise<void> {
    const id = record.id;
    const trace = phaseTrace(this.log, 'start', id);
    // Independent: the filesystem, the etc files, and a previous run's runtime leftovers.
    const [rootfs] = await Promise.all([
      this.rootfs.mount(id),
      this.rootfs.idRangeOf(id).then((range) => this.writeEtcFiles(record, range)),
      this.runtime.delete(id).catch(() => undefined),
    ]);
    trace.mark('mount+etc+delete');
    let pid: number;
    // The range the container was created with (its files are stored in it).
    const idRange = await this.rootfs.idRangeOf(id);
    try {
      const mounts = await this.mounts?.prepare(ctx, { id, mounts: record.mounts ?? [] }, rootfs, idRange);
      const network = this.networking ? await this.networking.up(ctx, record, idRange) : {};
      trace.mark('network');
      ({ pid } = await this.runtime.create({ ...this.specInput(record, rootfs, mounts), ...network, ...(idRange ? { idRange } : {}) }));
      trace.mark('create');
    } catch (err) {
      await this.networking?.down(id).catch(() => undefined);
      const message = err instanceof Error ? err.message : String(err);
      await this.mutate(ctx, id, (current) => {
        current.state.Error = message;
        current.state.ExitCode = exitCodeForStartError(message);
        if (current.state.Status === 'restarting') current.state.Status = 'exited';
        current.state.Restarting = false;
      });
      await this.runtime.delete(id).catch(() => undefined);
      throw err instanceof BerthError ? err : invalidArgument(`failed to create task for container: ${message}`, err);
    }
    try {
      // The pid is known once runc created the process; the record says "running" before the
      // process runs, so an exit, however quick, is always recorded after the start.
      for (const hook of this.beforeStartHooks) await hook(ctx, record);
      trace.mark('hooks');
      const startedAt = nowRfc3339Nano();
      await this.mutate(ctx, id, (current) => {
        current.state = {
          ...current.state,
          Status: 'running',
          Running: true,
          Paused: false,
          Restarting: false,
          OOMKilled: false,
          Dead: false,
          Pid: pid,
          ExitCode: 0,
          Error: '',
          StartedAt: startedAt,
          FinishedAt: ZERO_TIME,
        };
        current.manuallyStopped = false;
        if (isRestart) current.restartCount += 1;
        const health = healthOnStart(current.config.Healthcheck, current.state.Health as HealthState | undefined);
        if (health) current.state.Health = health;
      });
      trace.mark('store');
      try {
        await this.runtime.start(id);
        trace.mark('runcStart');
      } catch (err) {
        await this.mutate(ctx, id, (current) => {
          current.state = { ...current.state, Status: 'created', Running: false, Pid: 0, ExitCode: 128, Error: String((err as Error).message ?? err) };
        });
        throw err;
      }
      this.watchExit(ctx, id);
    } catch (err) {
      this.exitRecorded.delete(id);
      await this.runtime.delete(id).catch(() => undefined);
      await this.networking?.down(id).catch(() => undefined);
      throw err;
    }
    this.publish(ctx, record, 'start');
    trace.end();
  }

  private specInput(
    record: ContainerRecord,
    rootfs: string,
    mounts?: { binds: NonNullable<ContainerSpecInput['mounts']>; tmpfs: Record<string, string> },
  ): ContainerSpecInput {
    const { config, hostConfig } = record;
    return {
      id: record.id,
      rootfs,
      readonlyRootfs: hostConfig.ReadonlyRootfs,
      hostname: config.Hostname,
      ...(config.Domainname ? { domainname: config.Domainname } : {}),
      process: {
        args: [record.path, ...record.args],
        env: processEnv(config.Env),
        cwd: config.WorkingDir || '/',
        user: config.User,
        groupAdd: hostConfig.GroupAdd ?? [],
        tty: config.Tty,
        ...(config.Tty && hostConfig.ConsoleSize ? { consoleSize: { height: hostConfig.ConsoleSize[0], width: hostConfig.ConsoleSize[1] } } : {}),
        openStdin: config.OpenStdin,
        stdinOnce: config.StdinOnce,
        init: hostConfig.Init === true,
      },
      capAdd: hostConfig.CapAdd ?? [],
      capDrop: hostConfig.CapDrop ?? [],
      tmpfs: { ...hostConfig.Tmpfs, ...mounts?.tmpfs },
      ...(mounts ? { mounts: mounts.binds } : {}),
      binds: [
        { source: record.hostnamePath, destination: '/etc/hostname', readonly: false },
        { source: record.hostsPath, destination: '/etc/hosts', readonly: false },
        { source: record.resolvConfPath, destination: '/etc/resolv.conf', readonly: false },
      ],
      resources: resourceLimits(hostConfig),
      logPath: record.logPath,
      ...(hostConfig.Sysctls ? { sysctls: hostConfig.Sysctls } : {}),
    };
  }

  // ---------------------------------------------------------------- exit handling

  /** Watches the current run; records its exit, wakes waiters, applies the restart policy. */
  private watchExit(ctx: RequestContext, id: string): Promise<void> {
    const recorded = this.runtime.waitExit(id).then(
      (exit) => this.recordExit(ctx, id, exit),
      (err: unknown) => this.log.error({ err, id }, 'lost track of a container exit'),
    );
    this.exitRecorded.set(id, recorded);
    return recorded;
  }

  private async recordExit(ctx: RequestContext, id: string, exit: ExitRecord): Promise<void> {
    const trace = phaseTrace(this.log, 'exit', id);
    if (TRACING) this.log.debug({ trace: 'exit', id, detectedAfterMs: Date.now() - parseRfc3339(exit.finishedAt) }, 'exit detection latency');
    let record: ContainerRecord | undefined;
    try {
      record = await this.mutate(ctx, id, (current) => {
        current.state = {
          ...current.state,
          // An auto-remove container goes straight to removal: one durable write instead of two,
          // and a crash from here on is finished off by reconcile like any 'removing' record.
          Status: current.hostConfig.AutoRemove && !this.closing ? 'removing' : 'exited',
          Running: false,
          Paused: false,
          Restarting: false,
          OOMKilled: exit.oomKilled,
          Pid: 0,
          ExitCode: exit.exitCode,
          FinishedAt: exit.finishedAt,
        };
      });
    } catch (err) {
      if (!isKind(err, 'NotFound')) this.log.error({ err, id }, 'recording an exit failed');
      return;
    }
    trace.mark('store');
    const removing = record.state.Status === 'removing';
    // The removal deletes the runtime's state itself, alongside the filesystem.
    if (!removing) await this.runtime.delete(id).catch((err: unknown) => this.log.warn({ err, id }, 'runtime cleanup after exit failed'));
    await this.networking?.down(id).catch((err: unknown) => this.log.warn({ err, id }, 'network cleanup after exit failed'));
    trace.mark('delete');
    trace.end();
    if (record.mounts?.length) void this.mounts?.afterExit(ctx, record.mounts).catch((err: unknown) => this.log.warn({ err, id }, 'releasing volumes after an exit failed'));
    if (exit.oomKilled) this.publish(ctx, record, 'oom');
    this.publish(ctx, record, 'die', { exitCode: String(exit.exitCode) });
    this.wake(id, 'next-exit', exit.exitCode);
    this.wake(id, 'not-running', exit.exitCode);
    if (removing) {
      void this.removeAfterExit(ctx, id);
      return;
    }
    if (this.closing) return;
    this.maybeScheduleRestart(ctx, record);
  }

  private maybeScheduleRestart(ctx: RequestContext, record: ContainerRecord): void {
    const restart = shouldRestart(record.hostConfig.RestartPolicy, {
      exitCode: record.state.ExitCode,
      manuallyStopped: record.manuallyStopped,
      restartCount: record.restartCount,
    });
    if (!restart) return;
    const ranFor = parseRfc3339(record.state.FinishedAt) - parseRfc3339(record.state.StartedAt);
    const delay = nextRestartDelay(this.restartDelays.get(record.id) ?? 0, Number.isFinite(ranFor) ? ranFor : 0);
    this.restartDelays.set(record.id, delay);
    void this.mutate(ctx, record.id, (current) => {
      current.state.Status = 'restarting';
      current.state.Restarting = true;
    }).catch(() => undefined);
    const timer = setTimeout(() => {
      this.restartTimers.delete(record.id);
      void this.ops
        .run(record.id, async () => {
          const current = (await this.store.get<ContainerRecord>(ctx, KIND, record.id)).value;
          if (current.state.Status !== 'restarting' || current.manuallyStopped) return;
          await this.startLocked(ctx, current, true);
        })
        .catch((err: unknown) => this.log.warn({ err, id: record.id }, 'restart failed'));
    }, delay);
    timer.unref();
    this.restartTimers.set(record.id, timer);
  }

  private cancelPendingRestart(id: string): void {
    const timer = this.restartTimers.get(id);
    if (timer) clearTimeout(timer);
    this.restartTimers.delete(id);
  }

  private async removeAfterExit(ctx: RequestContext, id: string): Promise<void> {
    try {
      await this.ops.run(id, () => this.removeLocked(ctx, id, { volumes: true }, true));
    } catch (err) {
      if (!isKind(err, 'NotFound')) this.log.warn({ err, id }, 'auto-remove failed');
    }
  }

  // ---------------------------------------------------------------- stop / kill / restart

  async stop(ctx: RequestContext, ref: string, options: { timeoutSeconds?: number; signal?: string }): Promise<void> {
    const { id } = await this.lookupStored(ctx, ref);
    const signal = options.signal ? normaliseSignal(options.signal) : undefined;
    await this.ops.run(id, async () => {
      const record = (await this.store.get<ContainerRecord>(ctx, KIND, id)).value;
      this.cancelPendingRestart(id);
      if (record.state.Status === 'restarting') {
        await this.mutate(ctx, id, (current) => {
          current.manuallyStopped = true;
          current.state.Status = 'exited';
          current.state.Restarting = false;
        });
        return;
      }
      if (!record.state.Running) throw notModified();
      await this.stopLocked(ctx, record, options.timeoutSeconds, signal);
    });
  }

  private async stopLocked(ctx: RequestContext, record: ContainerRecord, timeoutSeconds?: number, signalOverride?: string): Promise<void> {
    const id = record.id;
    await this.mutate(ctx, id, (current) => {
      current.manuallyStopped = true;
    });
    const signal = signalOverride ?? (record.config.StopSignal ? normaliseSignal(record.config.StopSignal) : 'SIGTERM');
    const timeout = timeoutSeconds ?? record.config.StopTimeout ?? 10;
    const recorded = this.exitRecorded.get(id) ?? this.watchExit(ctx, id);
    if (record.state.Paused) await this.runtime.resume(id).catch(() => undefined);
    this.publish(ctx, record, 'kill', { signal: String(signalNumber(signal)) });
    await this.runtime.kill(id, signal).catch(() => undefined);
    const exited = timeout < 0 ? await recorded.then(() => true) : await withTimeout(recorded, timeout * 1000);
    if (!exited) {
      this.publish(ctx, record, 'kill', { signal: '9' });
      await this.runtime.kill(id, 'SIGKILL').catch(() => undefined);
      await recorded;
    }
    this.publish(ctx, record, 'stop');
  }

  async kill(ctx: RequestContext, ref: string, signalName = 'SIGKILL'): Promise<void> {
    const signal = normaliseSignal(signalName);
    const { id } = await this.lookupStored(ctx, ref);
    await this.ops.run(id, async () => {
      const record = (await this.store.get<ContainerRecord>(ctx, KIND, id)).value;
      if (!record.state.Running) throw conflict(`Cannot kill container: ${ref}: Container ${id} is not running`);
      const stopping = signal === 'SIGKILL' || signal === (record.config.StopSignal ? normaliseSignal(record.config.StopSignal) : 'SIGTERM');
      if (stopping) {
        await this.mutate(ctx, id, (current) => {
          current.manuallyStopped = true;
        });
      }
      if (record.state.Paused && signal === 'SIGKILL') await this.runtime.resume(id).catch(() => undefined);
      await this.runtime.kill(id, signal);
      this.publish(ctx, record, 'kill', { signal: String(signalNumber(signal)) });
      if (signal === 'SIGKILL') await (this.exitRecorded.get(id) ?? Promise.resolve());
    });
  }

  async restart(ctx: RequestContext, ref: string, options: { timeoutSeconds?: number; signal?: string }): Promise<void> {
    const { id } = await this.lookupStored(ctx, ref);
    const signal = options.signal ? normaliseSignal(options.signal) : undefined;
    await this.ops.run(id, async () => {
      let record = (await this.store.get<ContainerRecord>(ctx, KIND, id)).value;
      this.cancelPendingRestart(id);
      if (record.state.Running) await this.stopLocked(ctx, record, options.timeoutSeconds, signal);
      record = (await this.store.get<ContainerRecord>(ctx, KIND, id)).value;
      await this.startLocked(ctx, record, false);
      this.publish(ctx, record, 'restart');
    });
  }

  // ---------------------------------------------------------------- pause / unpause

  async pause(ctx: RequestContext, ref: string): Promise<void> {
    const { id } = await this.lookupStored(ctx, ref);
    await this.ops.run(id, async () => {
      const record = (await this.store.get<ContainerRecord>(ctx, KIND, id)).value;
      if (!record.state.Running) throw conflict(`Container ${id} is not running`);
      if (record.state.Paused) throw conflict(`Container ${id} is already paused`);
      await this.runtime.pause(id);
      await this.mutate(ctx, id, (current) => {
        current.state.Status = 'paused';
        current.state.Paused = true;
      });
      this.publish(ctx, record, 'pause');
    });
  }

  async unpause(ctx: RequestContext, ref: string): Promise<void> {
    const { id } = await this.lookupStored(ctx, ref);
    await this.ops.run(id, async () => {
      const record = (await this.store.get<ContainerRecord>(ctx, KIND, id)).value;
      if (!record.state.Paused) throw conflict(`Container ${id} is not paused`);
      await this.runtime.resume(id);
      await this.mutate(ctx, id, (current) => {
        current.state.Status = 'running';
        current.state.Paused = false;
      });
      this.publish(ctx, record, 'unpause');
    });
  }

  // ---------------------------------------------------------------- wait

  async wait(ctx: RequestContext, ref: string, condition: WaitCondition): Promise<() => Promise<{ StatusCode: number; Error?: { Message: string } }>> {
    const record = await this.lookup(ctx, ref);
    if (!['not-running', 'next-exit', 'removed'].includes(condition)) {
      throw invalidArgument(`invalid condition: "${condition}"`);
    }
    // Returns a waiter registered now, so a caller can acknowledge and then await: the docker
    // CLI sends wait before start and must not miss the exit.
    if (condition === 'not-running' && !record.state.Running && record.state.Status !== 'restarting') {
      const code = record.state.ExitCode;
      return async () => ({ StatusCode: code });
    }
    const result = new Promise<{ StatusCode: number; Error?: { Message: string } }>((resolve) => {
      const list = this.waiters.get(record.id) ?? [];
      list.push({ condition, resolve });
      this.waiters.set(record.id, list);
    });
    return () => result;
  }

  private wake(id: string, condition: WaitCondition, exitCode: number): void {
    const list = this.waiters.get(id);
    if (!list) return;
    const remaining: Waiter[] = [];
    for (const waiter of list) {
      if (waiter.condition === condition) waiter.resolve({ StatusCode: exitCode });
      else remaining.push(waiter);
    }
    if (remaining.length > 0) this.waiters.set(id, remaining);
    else this.waiters.delete(id);
  }

  // ---------------------------------------------------------------- remove / rename / update

  async remove(ctx: RequestContext, ref: string, options: { force: boolean; volumes: boolean }): Promise<void> {
    const { id } = await this.lookupStored(ctx, ref);
    await this.ops.run(id, async () => {
      const record = (await this.store.get<ContainerRecord>(ctx, KIND, id)).value;
      if (record.state.Running && !options.force) {
        const what = record.state.Paused ? 'paused' : 'running';
        throw conflict(
          `cannot remove container "/${record.name}": container is ${what}: stop the container before removing or force remove`,
        );
      }
      this.cancelPendingRestart(id);
      if (record.state.Running) {
        await this.mutate(ctx, id, (current) => {
          current.manuallyStopped = true;
        });
        const recorded = this.exitRecorded.get(id) ?? this.watchExit(ctx, id);
        if (record.state.Paused) await this.runtime.resume(id).catch(() => undefined);
        await this.runtime.kill(id, 'SIGKILL').catch(() => undefined);
        await recorded;
      }
      await this.removeLocked(ctx, id, options);
    });
  }

  /**
   * Removes a stopped container: its runtime state (runc, monitor, bundle, cgroup) and its
   * filesystem (overlay mount, layer, etc files, log), those two at once as they do not depend
   * on each other, then its directory and record. Without `deferHostCleanup` the record is
   * marked 'removing' first and deleted last, so a failure leaves a record a retry (or
   * reconcile) finishes. With it (auto-remove after an exit, where nobody waits on the host)
   * the record goes first and the host's part follows off the caller's path (cleanUpHost).
   */
  private async removeLocked(ctx: RequestContext, id: string, options: { volumes: boolean }, deferHostCleanup = false): Promise<void> {
    const trace = phaseTrace(this.log, 'remove', id);
    let record = (await this.store.get<ContainerRecord>(ctx, KIND, id)).value;
    if (deferHostCleanup) {
      await this.networking?.removeContainer(ctx, id);
      await this.store.delete(ctx, KIND, id);
      this.cleanUpHost(id);
    } else {
      if (record.state.Status !== 'removing') {
        record = await this.mutate(ctx, id, (current) => {
          current.state.Status = 'removing';
        });
      }
      trace.mark('storeRemoving');
      await this.removeFromHost(id);
      await this.networking?.removeContainer(ctx, id);
      trace.mark('host');
      await this.store.delete(ctx, KIND, id);
    }
    trace.mark('storeDelete');
    // After the record: a volume is in use while any container record names it.
    if (options.volumes && record.mounts?.length) await this.mounts?.removeVolumes(ctx, record.mounts);
    trace.end();
    this.tenants.delete(id);
    this.restartDelays.delete(id);
    this.exitRecorded.delete(id);
    this.publish(ctx, record, 'destroy');
    this.wake(id, 'removed', record.state.ExitCode);
    this.wake(id, 'next-exit', record.state.ExitCode);
    this.wake(id, 'not-running', record.state.ExitCode);
  }

  /** Runtime state and filesystem at once, then the container's directory, last. Idempotent. */
  private async removeFromHost(id: string): Promise<void> {
    const results = await Promise.allSettled([this.runtime.delete(id), this.rootfs.remove(id)]);
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    await rm(this.containerDir(id), { recursive: true, force: true });
  }

  /**
   * removeFromHost for a container whose record is already deleted (the removal is durable and
   * acknowledged). Until it is done, the container's directory is the owner of what is left:
   * it goes last, and start-up reconcile removes everything of an id whose directory has no
   * record, so a crash in between loses nothing. Failures are logged; reconcile retries them.
   */
  private cleanUpHost(id: string): void {
    const trace = phaseTrace(this.log, 'hostCleanup', id);
    const done = this.removeFromHost(id)
      .then(
        () => trace.mark('all'),
        (err: unknown) => this.log.warn({ err, id }, 'cleaning up after a removed container failed; start-up reconcile retries'),
      )
      .finally(() => {
        trace.end();
        this.hostCleanups.delete(id);
      });
    this.hostCleanups.set(id, done);
  }

  /** Waits (up to `ms`) for the host cleanups of removed containers that are still running. */
  private async hostCleanupsSettled(ms: number): Promise<void> {
    if (this.hostCleanups.size > 0) await withTimeout(Promise.all(this.hostCleanups.values()), ms);
  }

  async rename(ctx: RequestContext, ref: string, newName: string): Promise<void> {
    const name = newName.startsWith('/') ? newName.slice(1) : newName;
    if (!name) throw invalidArgument('Neither old nor new names may be empty');
    if (!VALID_NAME.test(name)) throw invalidArgument(`Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const { id } = await this.lookupStored(ctx, ref);
    await this.ops.run(id, async () => {
      const stored = await this.store.get<ContainerRecord>(ctx, KIND, id);
      const oldName = stored.value.name;
      if (oldName === name) throw conflict(`Renaming a container with the same name as its current name`);
      const value = { ...stored.value, name };
      try {
        await this.store.update<ContainerRecord>(ctx, KIND, id, { value, name, expectedRevision: stored.revision });
      } catch (err) {
        if (isKind(err, 'AlreadyExists')) {
          const taken = await this.nameConflict(ctx, name);
          throw conflict(`Error when allocating new name: ${taken.message}`);
        }
        throw err;
      }
      await this.networking?.renamed(ctx, id, oldName, name).catch((err: unknown) => this.log.warn({ err, id }, 'DNS name did not follow the rename'));
      this.publish(ctx, value, 'rename', { oldName: `/${oldName}` });
    });
  }

  async update(ctx: RequestContext, ref: string, body: Record<string, unknown>): Promise<{ Warnings: string[] }> {
    const { id } = await this.lookupStored(ctx, ref);
    return this.ops.run(id, async () => {
      const record = (await this.store.get<ContainerRecord>(ctx, KIND, id)).value;
      const merged = { ...record.hostConfig } as unknown as Record<string, unknown>;
      for (const key of ['Memory', 'MemorySwap', 'MemoryReservation', 'NanoCpus', 'CpuShares', 'CpuPeriod', 'CpuQuota', 'CpusetCpus', 'PidsLimit', 'BlkioWeight']) {
        if (body[key] !== undefined && body[key] !== null && !(body[key] === 0 && key !== 'PidsLimit') && body[key] !== '') merged[key] = body[key];
      }
      if (body.RestartPolicy !== undefined && body.RestartPolicy !== null) {
        const policy = parseRestartPolicy(body.RestartPolicy);
        if (typeof policy === 'string') throw invalidArgument(policy);
        if (policy.Name !== '' && record.hostConfig.AutoRemove) {
          throw invalidArgument('Restart policy cannot be updated because AutoRemove is enabled for the container');
        }
        if (policy.Name !== '') merged.RestartPolicy = policy;
      }
      if (typeof body.NanoCpus === 'number' && body.NanoCpus > 0) {
        merged.CpuQuota = 0;
        merged.CpuPeriod = 0;
      }
      const hostConfig = normaliseHostConfig(merged);
      hostConfig.Tmpfs = record.hostConfig.Tmpfs;
      if (record.state.Running && record.hostConfig.Memory > 0 && hostConfig.Memory > 0 && record.hostConfig.MemorySwap > 0 && body.MemorySwap === undefined && hostConfig.Memory > record.hostConfig.MemorySwap) {
        throw invalidArgument('Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time');
      }
      if (record.state.Running) await this.runtime.update(id, resourceLimits(hostConfig));
      await this.mutate(ctx, id, (current) => {
        current.hostConfig = hostConfig;
      });
      this.publish(ctx, record, 'update');
      return { Warnings: [] };
    });
  }

  // ---------------------------------------------------------------- reconcile

  /**
   * Start-up reconcile: brings records and the host back in line after Berth stopped or was
   * killed. Running containers are re-watched; exits that happened while Berth was away are
   * recorded; half-removed containers are finished off; orphan directories and runc state
   * without a record are removed; restart policies are applied.
   */
  async reconcile(): Promise<void> {
    const records = await this.store.listAllTenants<ContainerRecord>(KIND);
    const live = new Map((await this.runtime.list()).map((entry) => [entry.id, entry]));
    const known = new Set<string>();
    for (const stored of records) {
      const ctx: RequestContext = { tenant: stored.tenant, requestId: 'reconcile' };
      const record = stored.value;
      known.add(record.id);
      this.tenants.set(record.id, stored.tenant);
      try {
        if (record.state.Status === 'removing') {
          await this.ops.run(record.id, () => this.removeLocked(ctx, record.id, { volumes: true }));
          continue;
        }
        await this.rootfs.mount(record.id);
        const entry = live.get(record.id);
        if (entry && (entry.status === 'running' || entry.status === 'paused')) {
          this.watchExit(ctx, record.id);
          const paused = entry.status === 'paused';
          await this.mutate(ctx, record.id, (current) => {
            current.state = { ...current.state, Status: paused ? 'paused' : 'running', Running: true, Paused: paused, Pid: entry.pid, Restarting: false };
          });
          continue;
        }
        if (record.state.Running || record.state.Status === 'restarting' || entry) {
          // It ran when Berth went away and is gone now: record how it ended, then apply its policy.
          if (entry?.status === 'stopped' || record.state.Running) {
            const exit = await withTimeoutValue(this.runtime.waitExit(record.id), 2000);
            await this.recordExit(ctx, record.id, exit ?? { exitCode: 255, oomKilled: false, finishedAt: nowRfc3339Nano() });
          } else {
            await this.runtime.delete(record.id).catch(() => undefined);
            const updated = (await this.store.get<ContainerRecord>(ctx, KIND, record.id)).value;
            this.maybeScheduleRestart(ctx, updated);
          }
          continue;
        }
        if (!record.manuallyStopped && (record.hostConfig.RestartPolicy.Name === 'always' || record.hostConfig.RestartPolicy.Name === 'unless-stopped') && record.state.StartedAt !== ZERO_TIME && record.state.Status === 'exited') {
          this.maybeScheduleRestart(ctx, record);
        }
      } catch (err) {
        this.log.error({ err, id: record.id }, 'reconcile of a container failed');
      }
    }
    for (const [id] of live) {
      if (!known.has(id)) {
        this.log.warn({ id }, 'removing runtime state without a record');
        await this.runtime.delete(id).catch(() => undefined);
      }
    }
    await this.removeOrphanDirectories(known);
  }

  private async removeOrphanDirectories(known: Set<string>): Promise<void> {
    const { readdir } = await import('node:fs/promises');
    const entries = await readdir(join(this.dataRoot, 'containers')).catch(() => [] as string[]);
    for (const entry of entries) {
      if (/^[0-9a-f]{64}$/.test(entry) && !known.has(entry)) {
        this.log.warn({ id: entry }, 'removing a container directory without a record');
        // Its runtime part may be left too when a cleanup after removal was cut short.
        await this.runtime.delete(entry).catch(() => undefined);
        await this.rootfs.remove(entry).catch(() => undefined);
        await rm(join(this.dataRoot, 'containers', entry), { recursive: true, force: true }).catch(() => undefined);
      }
    }
  }

  /** Stops exit handling from restarting containers while Berth shuts down; containers keep running. */
  shutdown(): void {
    this.closing = true;
    for (const timer of this.restartTimers.values()) clearTimeout(timer);
    this.restartTimers.clear();
  }

  // ---------------------------------------------------------------- helpers

  /** Read-modify-write of a record, serialised per container so concurrent writers compose. */
  private async mutate(ctx: RequestContext, id: string, change: (record: ContainerRecord) => void): Promise<ContainerRecord> {
    return this.writes.run(id, async () => {
      const stored = await this.store.get<ContainerRecord>(ctx, KIND, id);
      const value = structuredClone(stored.value);
      change(value);
      await this.store.update<ContainerRecord>(ctx, KIND, id, { value, expectedRevision: stored.revision });
      return value;
    });
  }

  private publish(ctx: RequestContext, record: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.events.publish(ctx, {
      Type: 'container',
      Action: action,
      Actor: { ID: record.id, Attributes: { ...record.config.Labels, image: record.image, name: record.name, ...extra } },
    });
  }
}

/** HostConfig.ConsoleSize as the docker CLI sends it ([height, width]); undefined when absent, zero or malformed. */
function parseConsoleSize(raw: unknown): [number, number] | undefined {
  if (!Array.isArray(raw) || raw.length !== 2) return undefined;
  const [height, width] = raw as unknown[];
  if (!Number.isInteger(height) || !Number.isInteger(width)) return undefined;
  const h = height as number;
  const w = width as number;
  return h > 0 && w > 0 && h <= 65535 && w <= 65535 ? [h, w] : undefined;
}


/** `until` as Docker takes it: unix seconds, RFC 3339, or a Go duration before now (10m, 1h30m). */
function parseUntil(value: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const duration = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(value);
  if (duration && value !== '') {
    const [, h = '0', m = '0', sec = '0'] = duration;
    return Date.now() - (Number(h) * 3600 + Number(m) * 60 + Number(sec)) * 1000;
  }
  const parsed = parseRfc3339(value);
  if (Number.isNaN(parsed)) throw invalidArgument(`invalid filter 'until=${value}'`);
  return parsed;
}

function initialState(): ContainerState {
  return {
    Status: 'created',
    Running: false,
    Paused: false,
    Restarting: false,
    OOMKilled: false,
    Dead: false,
    Pid: 0,
    ExitCode: 0,
    Error: '',
    StartedAt: ZERO_TIME,
    FinishedAt: ZERO_TIME,
  };
}

export function resourceLimits(hc: HostConfig): ResourceLimits {
  const limits: ResourceLimits = {};
  if (hc.Memory > 0) limits.memory = hc.Memory;
  if (hc.MemorySwap !== 0) limits.memorySwap = hc.MemorySwap;
  if (hc.MemoryReservation > 0) limits.memoryReservation = hc.MemoryReservation;
  if (hc.CpuShares > 0) limits.cpuShares = hc.CpuShares;
  if (hc.NanoCpus > 0) {
    limits.cpuPeriod = 100_000;
    limits.cpuQuota = Math.round((hc.NanoCpus / 1e9) * 100_000);
  } else {
    if (hc.CpuQuota > 0) limits.cpuQuota = hc.CpuQuota;
    if (hc.CpuPeriod > 0) limits.cpuPeriod = hc.CpuPeriod;
  }
  if (hc.CpusetCpus) limits.cpusetCpus = hc.CpusetCpus;
  if (hc.PidsLimit !== null && hc.PidsLimit > 0) limits.pidsLimit = hc.PidsLimit;
  if (hc.BlkioWeight > 0) limits.blkioWeight = hc.BlkioWeight;
  return limits;
}

/** The exit code dockerd records when a start fails, matching what the docker CLI reports. */
function exitCodeForStartError(message: string): number {
  if (/executable file not found|no such file or directory/i.test(message)) return 127;
  if (/permission denied/i.test(message)) return 126;
  return 128;
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function withTimeoutValue<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

