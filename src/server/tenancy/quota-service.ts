import { availableParallelism } from 'node:os';
import type { RequestContext } from '../../common/context.js';
import { KeyedMutex } from '../../common/keyed-mutex.js';
import {
  cpusOf,
  enforceQuotas,
  limitsAfterUpdate,
  memoryOf,
  QUOTA_NAMES,
  volumesOfCreate,
  type ContainerLimits,
  type QuotaCheck,
  type QuotaUsage,
  type TenantQuotas,
} from './quotas.js';

/** Where the quota service reads a tenant's use; every call is scoped by the context. */
export interface QuotaUsageSources {
  /** Every container of the tenant, with its resource limits. */
  containers(ctx: RequestContext): Promise<(ContainerLimits & { id: string; name: string })[]>;
  volumeNames(ctx: RequestContext): Promise<string[]>;
  /** The tenant's own networks (not the predefined ones). */
  networkCount(ctx: RequestContext): Promise<number>;
  imageCount(ctx: RequestContext): Promise<number>;
  /** Whether a reference already names an image of the tenant (a pull of it updates, not adds). */
  hasImage(ctx: RequestContext, ref: string): Promise<boolean>;
  /** Image layers + volume contents + container writable layers, in bytes (system df's figures). */
  diskBytes(ctx: RequestContext): Promise<number>;
}

export interface QuotaServiceOptions {
  sources: QuotaUsageSources;
  /** A tenant's quotas; undefined for the operator and tenants without any. */
  quotasOf(tenant: string): TenantQuotas | undefined;
  /** The memory a container without a limit gets (the tenant's default). */
  defaultMemoryOf(tenant: string): number;
  hostCpus?: number;
}

/**
 * Enforces tenant quotas on the requests that add to a tenant's use: container create and
 * update, volume and network create, and everything that adds images or disk (pull, load,
 * import, build, commit).
 *
 * Race safety: each guarded operation checks the use and performs its work under a per-tenant
 * lock for its group of resources (containers, volumes, networks, images), so two concurrent
 * creates of one tenant cannot both pass a check made before either existed. Different tenants
 * never wait for each other, and a tenant without quotas takes no lock at all.
 */
export class QuotaService {
  private readonly locks = new KeyedMutex();
  private readonly hostCpus: number;

  constructor(private readonly options: QuotaServiceOptions) {
    this.hostCpus = options.hostCpus ?? availableParallelism();
  }

  /** The tenant's quotas and current use of each quota it has (all seven when `all`). */
  async usage(ctx: RequestContext, all = false): Promise<{ quotas: TenantQuotas; usage: QuotaUsage }> {
    const quotas = this.options.quotasOf(ctx.tenant) ?? {};
    const wanted = new Set(all ? QUOTA_NAMES : (Object.keys(quotas) as (keyof TenantQuotas)[]));
    const usage: QuotaUsage = {};
    const { sources } = this.options;
    if (wanted.has('containers') || wanted.has('cpus') || wanted.has('memory')) {
      const containers = await sources.containers(ctx);
      usage.containers = containers.length;
      usage.cpus = this.sumCpus(containers);
      usage.memory = this.sumMemory(ctx.tenant, containers);
    }
    if (wanted.has('volumes')) usage.volumes = (await sources.volumeNames(ctx)).length;
    if (wanted.has('networks')) usage.networks = await sources.networkCount(ctx);
    if (wanted.has('images')) usage.images = await sources.imageCount(ctx);
    if (wanted.has('disk')) usage.disk = await sources.diskBytes(ctx);
    for (const name of QUOTA_NAMES) if (!wanted.has(name)) delete usage[name];
    return { quotas, usage };
  }

  /**
   * docker create: one more container, its CPUs and memory, the named volumes it would create,
   * and no disk once the disk quota is used up. `create` runs under the lock with the body to
   * create: under a cpus quota a container that names no CPU limit gets DEFAULT_CONTAINER_CPUS,
   * so what is counted is what the kernel enforces.
   */
  async guardContainerCreate<T>(ctx: RequestContext, requested: Record<string, unknown>, create: (body: Record<string, unknown>) => Promise<T>): Promise<T> {
    const quotas = this.options.quotasOf(ctx.tenant);
    if (!quotas) return create(requested);
    const body = quotas.cpus !== undefined ? withDefaultCpus(requested) : requested;
    const groups = quotas.volumes !== undefined ? ['containers', 'volumes'] : ['containers'];
    return this.locked(ctx.tenant, groups, async () => {
      const { sources } = this.options;
      const containers = await sources.containers(ctx);
      const limits = limitsOfCreate(body);
      const checks: QuotaCheck[] = [
        { name: 'containers', use: containers.length, ask: 1, asker: 'this container' },
        { name: 'cpus', use: this.sumCpus(containers), ask: cpusOf(limits, this.hostCpus), asker: 'this container' },
        { name: 'memory', use: this.sumMemory(ctx.tenant, containers), ask: memoryOf(limits, this.options.defaultMemoryOf(ctx.tenant)), asker: 'this container' },
      ];
      if (quotas.volumes !== undefined) {
        const existing = new Set(await sources.volumeNames(ctx));
        const wanted = volumesOfCreate(body);
        const ask = wanted.named.filter((n) => !existing.has(n)).length + wanted.anonymous;
        checks.push({ name: 'volumes', use: existing.size, ask, asker: `this container's volume${ask === 1 ? '' : 's'}` });
      }
      if (quotas.disk !== undefined) checks.push({ name: 'disk', use: await sources.diskBytes(ctx), ask: 0, asker: 'this container' });
      enforceQuotas(quotas, checks);
      return create(body);
    });
  }

  /** docker update: raising a container's limits counts against cpus and memory. */
  async guardContainerUpdate<T>(ctx: RequestContext, ref: string, body: Record<string, unknown>, update: () => Promise<T>): Promise<T> {
    const quotas = this.options.quotasOf(ctx.tenant);
    if (!quotas || (quotas.cpus === undefined && quotas.memory === undefined)) return update();
    return this.locked(ctx.tenant, ['containers'], async () => {
      const containers = await this.options.sources.containers(ctx);
      // The container itself: by full id, else by what the user typed (name or id prefix).
      const target = containers.find((c) => c.id === ref) ?? containers.find((c) => c.name === ref.replace(/^\//, '')) ?? containers.find((c) => c.id.startsWith(ref));
      if (!target) return update(); // the engine answers "No such container"
      const others = containers.filter((c) => c !== target);
      const after = limitsAfterUpdate(target, body);
      const defaultMemory = this.options.defaultMemoryOf(ctx.tenant);
      enforceQuotas(quotas, [
        { name: 'cpus', use: this.sumCpus(others), ask: cpusOf(after, this.hostCpus), asker: 'this container' },
        { name: 'memory', use: this.sumMemory(ctx.tenant, others), ask: memoryOf(after, defaultMemory), asker: 'this container' },
      ]);
      return update();
    });
  }

  /** docker volume create; an existing name is not a new volume (create answers it as is). */
  async guardVolumeCreate<T>(ctx: RequestContext, name: string | undefined, create: () => Promise<T>): Promise<T> {
    const quotas = this.options.quotasOf(ctx.tenant);
    if (!quotas || (quotas.volumes === undefined && quotas.disk === undefined)) return create();
    return this.locked(ctx.tenant, ['volumes'], async () => {
      const existing = await this.options.sources.volumeNames(ctx);
      const isNew = name === undefined || name === '' || !existing.includes(name);
      const checks: QuotaCheck[] = [{ name: 'volumes', use: existing.length, ask: isNew ? 1 : 0, asker: 'this volume' }];
      if (isNew && quotas.disk !== undefined) checks.push({ name: 'disk', use: await this.options.sources.diskBytes(ctx), ask: 0, asker: 'this volume' });
      enforceQuotas(quotas, checks);
      return create();
    });
  }

  async guardNetworkCreate<T>(ctx: RequestContext, create: () => Promise<T>): Promise<T> {
    const quotas = this.options.quotasOf(ctx.tenant);
    if (!quotas || quotas.networks === undefined) return create();
    return this.locked(ctx.tenant, ['networks'], async () => {
      enforceQuotas(quotas, [{ name: 'networks', use: await this.options.sources.networkCount(ctx), ask: 1, asker: 'this network' }]);
      return create();
    });
  }

  /**
   * Pull, load, import, build and commit: they may add an image and bytes. A pull of a
   * reference the tenant already has refreshes it and passes the images quota. How many images
   * and bytes an archive or a build brings is known only afterwards, so these are refused once
   * the tenant is at its images or disk quota (one load may bring several images).
   */
  async guardImageAdd<T>(ctx: RequestContext, operation: string, pullRef: string | undefined, add: () => Promise<T>): Promise<T> {
    const quotas = this.options.quotasOf(ctx.tenant);
    if (!quotas || (quotas.images === undefined && quotas.disk === undefined)) return add();
    return this.locked(ctx.tenant, ['images'], async () => {
      const { sources } = this.options;
      const checks: QuotaCheck[] = [];
      if (quotas.images !== undefined) {
        const refreshes = pullRef !== undefined && (await sources.hasImage(ctx, pullRef));
        checks.push({ name: 'images', use: await sources.imageCount(ctx), ask: refreshes ? 0 : 1, asker: `this ${operation}` });
      }
      if (quotas.disk !== undefined) checks.push({ name: 'disk', use: await sources.diskBytes(ctx), ask: 0, asker: `this ${operation}` });
      enforceQuotas(quotas, checks);
      return add();
    });
  }

  private sumCpus(containers: readonly ContainerLimits[]): number {
    return containers.reduce((sum, c) => sum + cpusOf(c, this.hostCpus), 0);
  }

  private sumMemory(tenant: string, containers: readonly ContainerLimits[]): number {
    const fallback = this.options.defaultMemoryOf(tenant);
    return containers.reduce((sum, c) => sum + memoryOf(c, fallback), 0);
  }

  /** Runs `work` holding the tenant's locks of `groups`, taken in one fixed order (no deadlock). */
  private locked<T>(tenant: string, groups: readonly string[], work: () => Promise<T>): Promise<T> {
    const [first, ...rest] = [...groups].sort();
    if (first === undefined) return work();
    return this.locks.run(`${tenant}\u0000${first}`, () => this.locked(tenant, rest, work));
  }
}

/** The CPUs a tenant's container gets under a cpus quota when it names no CPU limit. */
export const DEFAULT_CONTAINER_CPUS = 1;

function withDefaultCpus(body: Record<string, unknown>): Record<string, unknown> {
  const limits = limitsOfCreate(body);
  if (limits.NanoCpus > 0 || limits.CpuQuota > 0 || limits.CpusetCpus !== '') return body;
  return { ...body, HostConfig: { ...((body.HostConfig ?? {}) as Record<string, unknown>), NanoCpus: DEFAULT_CONTAINER_CPUS * 1e9 } };
}

/** The limits a create request asks for, as the engine will read them (zero when absent). */
export function limitsOfCreate(body: Record<string, unknown>): ContainerLimits {
  const hc = (body.HostConfig ?? {}) as Record<string, unknown>;
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return {
    Memory: num(hc.Memory),
    NanoCpus: num(hc.NanoCpus),
    CpuQuota: num(hc.CpuQuota),
    CpuPeriod: num(hc.CpuPeriod),
    CpusetCpus: typeof hc.CpusetCpus === 'string' ? hc.CpusetCpus : '',
  };
}
