import { forbidden, invalidArgument } from '../../common/errors.js';

/**
 * Tenant quotas: what a tenant may hold at once, and how its use is counted.
 *
 * Terms:
 * - quota: the operator's ceiling for one resource of one tenant; an absent quota is unlimited.
 * - use: what the tenant holds now, counted as a cloud counts what it provisioned:
 *   - containers: every container that exists, running or not;
 *   - cpus, memory: the limits of every container that exists (a stopped container keeps its
 *     reservation, so starting it never fails on a quota). A container without a memory limit
 *     counts the tenant's default memory (admission gives every tenant container one anyway);
 *     one without a CPU limit counts every CPU of the host, since it may use them all;
 *   - volumes, images: the tenant's volumes and images (an image is one id, whatever its tags);
 *   - networks: the tenant's own networks (not the predefined bridge, host and none);
 *   - disk: bytes of the image layers the tenant's images use, its volumes' contents and its
 *     containers' writable layers — the figures `docker system df` shows.
 * - ask: what one request adds (one container, its limits, new named volumes, ...).
 *
 * A request is refused when use + ask would pass the quota. Disk is the exception: the size of
 * a pull, load, build or write is not known beforehand, so disk refuses any operation that adds
 * data once use has reached the quota (see docs/tenancy.md).
 */
export interface TenantQuotas {
  containers?: number;
  /** CPUs, fractions allowed (1.5). */
  cpus?: number;
  /** Bytes. */
  memory?: number;
  /** Bytes. */
  disk?: number;
  volumes?: number;
  networks?: number;
  images?: number;
}

export type QuotaName = keyof TenantQuotas;

export const QUOTA_NAMES: readonly QuotaName[] = ['containers', 'cpus', 'memory', 'disk', 'volumes', 'networks', 'images'];

/** The quotas counted in bytes (shown as sizes, set as 512m, 4g). */
const SIZE_QUOTAS: ReadonlySet<QuotaName> = new Set(['memory', 'disk']);

export type QuotaUsage = Partial<Record<QuotaName, number>>;

/** A quota change: a number sets it, null clears it (unlimited), absent leaves it. */
export type QuotaChange = Partial<Record<QuotaName, number | null>>;

export function isSizeQuota(name: QuotaName): boolean {
  return SIZE_QUOTAS.has(name);
}

/** Validates a change and applies it to the current quotas; the result has no cleared keys. */
export function applyQuotaChange(current: TenantQuotas | undefined, change: QuotaChange): TenantQuotas {
  const next: TenantQuotas = { ...current };
  for (const [key, value] of Object.entries(change)) {
    if (!(QUOTA_NAMES as readonly string[]).includes(key)) throw invalidArgument(`unknown quota "${key}": use one of ${QUOTA_NAMES.join(', ')}`);
    const name = key as QuotaName;
    if (value === undefined) continue;
    if (value === null) {
      delete next[name];
      continue;
    }
    const valid = name === 'cpus' ? Number.isFinite(value) && value > 0 && value <= 1e6 : Number.isSafeInteger(value) && value >= 0;
    if (!valid) throw invalidArgument(`quota ${name} must be ${name === 'cpus' ? 'a positive number of CPUs' : 'a whole number, 0 or more'}`);
    next[name] = value;
  }
  return next;
}

/** The resource limits of a container that count against cpus and memory. */
export interface ContainerLimits {
  Memory: number;
  NanoCpus: number;
  CpuQuota: number;
  CpuPeriod: number;
  CpusetCpus: string;
}

/** How many CPUs a container may use, by the limits it has; `hostCpus` when it has none. */
export function cpusOf(limits: ContainerLimits, hostCpus: number): number {
  if (limits.NanoCpus > 0) return limits.NanoCpus / 1e9;
  if (limits.CpuQuota > 0) return limits.CpuQuota / (limits.CpuPeriod > 0 ? limits.CpuPeriod : 100_000);
  if (limits.CpusetCpus) return Math.min(cpusetSize(limits.CpusetCpus), hostCpus);
  return hostCpus;
}

function cpusetSize(set: string): number {
  let count = 0;
  for (const part of set.split(',')) {
    const [from, to] = part.split('-').map(Number);
    if (from === undefined || !Number.isInteger(from)) continue;
    count += to !== undefined && Number.isInteger(to) && to >= from ? to - from + 1 : 1;
  }
  return Math.max(count, 1);
}

export function memoryOf(limits: ContainerLimits, defaultMemory: number): number {
  return limits.Memory > 0 ? limits.Memory : defaultMemory;
}

/**
 * The limits a container has after `docker update` with this body, by the engine's rule: a
 * zero, null or empty field leaves the limit as it was; NanoCpus replaces a quota/period pair.
 */
export function limitsAfterUpdate(current: ContainerLimits, body: Record<string, unknown>): ContainerLimits {
  const next = { ...current };
  const given = (key: keyof ContainerLimits): boolean => body[key] !== undefined && body[key] !== null && body[key] !== 0 && body[key] !== '';
  if (given('Memory') && typeof body.Memory === 'number') next.Memory = body.Memory;
  if (given('CpuQuota') && typeof body.CpuQuota === 'number') next.CpuQuota = body.CpuQuota;
  if (given('CpuPeriod') && typeof body.CpuPeriod === 'number') next.CpuPeriod = body.CpuPeriod;
  if (given('CpusetCpus') && typeof body.CpusetCpus === 'string') next.CpusetCpus = body.CpusetCpus;
  if (given('NanoCpus') && typeof body.NanoCpus === 'number') {
    next.NanoCpus = body.NanoCpus;
    next.CpuQuota = 0;
    next.CpuPeriod = 0;
  }
  return next;
}

/** One quota's check: use + ask must stay within the quota. */
export interface QuotaCheck {
  name: QuotaName;
  use: number;
  ask: number;
  /** What is asking, for the message: "this container", "this volume". */
  asker: string;
}

/**
 * Refuses (Forbidden, 403) the first check that would pass its quota, with a message naming
 * the quota, the use and the ask: "quota exceeded: memory 3 GiB of 4 GiB in use, this
 * container asks 2 GiB". A check against an unset quota always passes.
 */
export function enforceQuotas(quotas: TenantQuotas, checks: readonly QuotaCheck[]): void {
  for (const check of checks) {
    const limit = quotas[check.name];
    if (limit === undefined) continue;
    if (check.name === 'disk') {
      if (check.use >= limit) {
        throw forbidden(
          `quota exceeded: disk ${formatQuota('disk', check.use)} of ${formatQuota('disk', limit)} in use, ${check.asker} would add more; ` +
            'free some (docker system df) or ask the operator for a larger quota',
        );
      }
      continue;
    }
    if (check.ask > 0 && check.use + check.ask > limit + 1e-9) {
      throw forbidden(
        `quota exceeded: ${check.name} ${formatQuota(check.name, check.use)} of ${formatQuota(check.name, limit)} in use, ` +
          `${check.asker} asks ${formatQuota(check.name, check.ask)}`,
      );
    }
  }
}

/** A quota's value as people read it: sizes in binary units, CPUs with up to two decimals. */
export function formatQuota(name: QuotaName, value: number): string {
  if (isSizeQuota(name)) return formatBytes(value);
  if (name === 'cpus') return String(Math.round(value * 100) / 100);
  return String(value);
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  return `${Number.isInteger(value) ? String(value) : value.toFixed(1)} ${units[unit]}`;
}

/**
 * The named volumes a create request mounts (-v name:/dir, --mount type=volume,source=name)
 * and how many anonymous ones it asks for by itself (-v /dir, --mount without a source).
 * Volumes an image declares are not known before the image is resolved; they are counted
 * once they exist.
 */
export function volumesOfCreate(body: Record<string, unknown>): { named: string[]; anonymous: number } {
  const named = new Set<string>();
  let anonymous = 0;
  const hostConfig = (body.HostConfig ?? {}) as Record<string, unknown>;
  for (const bind of Array.isArray(hostConfig.Binds) ? hostConfig.Binds : []) {
    if (typeof bind !== 'string') continue;
    const source = bind.split(':')[0] ?? '';
    if (source !== '' && !source.startsWith('/') && bind.includes(':')) named.add(source);
  }
  for (const mount of Array.isArray(hostConfig.Mounts) ? hostConfig.Mounts : []) {
    if (typeof mount !== 'object' || mount === null) continue;
    const m = mount as Record<string, unknown>;
    if (m.Type !== 'volume') continue;
    if (typeof m.Source === 'string' && m.Source !== '') named.add(m.Source);
    else anonymous++;
  }
  const volumes = body.Volumes;
  if (typeof volumes === 'object' && volumes !== null) anonymous += Object.keys(volumes).length;
  return { named: [...named], anonymous };
}

/** Quotas as the admin API shows and takes them: Docker-style field names, bytes for sizes. */
export type QuotasView = Partial<Record<'Containers' | 'Cpus' | 'Memory' | 'Disk' | 'Volumes' | 'Networks' | 'Images', number>>;

const fieldOf = (name: QuotaName): keyof QuotasView => (name[0]!.toUpperCase() + name.slice(1)) as keyof QuotasView;

export function quotasView(quotas: TenantQuotas | QuotaUsage): QuotasView {
  const view: QuotasView = {};
  for (const name of QUOTA_NAMES) if (quotas[name] !== undefined) view[fieldOf(name)] = quotas[name];
  return view;
}

/** Reads an admin API quota change: {"Memory": 4294967296, "Cpus": null, ...}; null clears. */
export function parseQuotaChange(raw: unknown): QuotaChange {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidArgument('Quotas must be an object');
  const change: QuotaChange = {};
  const byField = new Map(QUOTA_NAMES.map((n) => [fieldOf(n) as string, n]));
  for (const [field, value] of Object.entries(raw)) {
    const name = byField.get(field);
    if (!name) throw invalidArgument(`unknown quota "${field}": use ${[...byField.keys()].join(', ')}`);
    if (value !== null && typeof value !== 'number') throw invalidArgument(`Quotas.${field} must be a number, or null to clear it`);
    change[name] = value;
  }
  return change;
}

/** `docker info` labels for a tenant's quotas: "berth.quota.memory=3 GiB of 4 GiB in use". */
export function quotaLabels(quotas: TenantQuotas, usage: QuotaUsage): string[] {
  return QUOTA_NAMES.filter((name) => quotas[name] !== undefined).map(
    (name) => `berth.quota.${name}=${formatQuota(name, usage[name] ?? 0)} of ${formatQuota(name, quotas[name]!)} in use`,
  );
}
