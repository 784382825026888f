import { invalidArgument } from '../../../common/errors.js';
import type { PlacementRequest, Resources } from '../../scheduler/types.js';

/**
 * Turns a Docker create body into what the scheduler needs: the resources the container asks
 * for (from its HostConfig limits), its env (where `constraint:` and `affinity:` rules live)
 * and labels. Pure; the caller supplies the id and name it chose.
 */

interface CreateShape {
  Image?: unknown;
  Env?: unknown;
  Labels?: unknown;
  HostConfig?: {
    NanoCpus?: unknown;
    CpuQuota?: unknown;
    CpuPeriod?: unknown;
    Memory?: unknown;
    StorageOpt?: unknown;
    DeviceRequests?: unknown;
    RestartPolicy?: { Name?: unknown };
    Binds?: unknown;
    Mounts?: unknown;
  };
}

function wholeNumber(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4 };

/** `--storage-opt size=10G`: the docker CLI's units (binary, case-insensitive). */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  const factor = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || factor === undefined) throw invalidArgument(`invalid size: '${text}'`);
  return Math.round(Number(match[1]) * factor);
}

/** What the container asks the host for; zero where it sets no limit. */
export function requestedResources(body: CreateShape): Resources {
  const hc = body.HostConfig ?? {};
  let milliCpus = Math.round(wholeNumber(hc.NanoCpus) / 1e6);
  const quota = wholeNumber(hc.CpuQuota);
  if (milliCpus === 0 && quota > 0) milliCpus = Math.round((quota / (wholeNumber(hc.CpuPeriod) || 100_000)) * 1000);
  const storage = hc.StorageOpt && typeof hc.StorageOpt === 'object' ? (hc.StorageOpt as Record<string, unknown>).size : undefined;
  const diskBytes = typeof storage === 'string' && storage !== '' ? parseSize(storage) : 0;
  let gpus = 0;
  if (Array.isArray(hc.DeviceRequests)) {
    for (const request of hc.DeviceRequests as { Count?: unknown; DeviceIDs?: unknown }[]) {
      // Count -1 is "all": at least one whole device must be free.
      const count = typeof request.Count === 'number' ? (request.Count < 0 ? 1 : request.Count) : 0;
      gpus += Math.max(count, Array.isArray(request.DeviceIDs) ? request.DeviceIDs.length : 0);
    }
  }
  return { milliCpus, memoryBytes: wholeNumber(hc.Memory), diskBytes, gpus };
}

export function restartPolicyOf(body: CreateShape): string {
  const name = body.HostConfig?.RestartPolicy?.Name;
  return typeof name === 'string' ? name : '';
}

/** Restart policies under which a container is placed again when its host dies. */
export function survivesHostLoss(policy: string): boolean {
  return policy === 'always' || policy === 'unless-stopped' || policy === 'on-failure';
}

export function labelsOf(body: CreateShape): Record<string, string> {
  const labels: Record<string, string> = {};
  if (body.Labels && typeof body.Labels === 'object') {
    for (const [key, value] of Object.entries(body.Labels as Record<string, unknown>)) if (typeof value === 'string') labels[key] = value;
  }
  return labels;
}

/** Names of the named volumes the container mounts (`-v name:/path`, `--mount type=volume`). */
export function namedVolumesOf(body: CreateShape): string[] {
  const names = new Set<string>();
  const hc = body.HostConfig ?? {};
  if (Array.isArray(hc.Binds)) {
    for (const bind of hc.Binds) {
      if (typeof bind !== 'string') continue;
      const source = bind.split(':')[0] ?? '';
      // A bind mount's source is an absolute path; anything else names a volume.
      if (source !== '' && !source.startsWith('/')) names.add(source);
    }
  }
  if (Array.isArray(hc.Mounts)) {
    for (const mount of hc.Mounts as { Type?: unknown; Source?: unknown }[]) {
      if ((mount.Type ?? 'volume') === 'volume' && typeof mount.Source === 'string' && mount.Source !== '') names.add(mount.Source);
    }
  }
  return [...names];
}

/**
 * The scheduler's request. `pinnedHost` (the host holding the container's named volumes)
 * becomes a hard `constraint:node==` rule the scheduler alone sees; the container's env is
 * untouched.
 */
export function placementRequestOf(tenant: string, id: string, name: string, body: CreateShape, pinnedHosts: string[] = []): PlacementRequest {
  if (typeof body.Image !== 'string' || body.Image === '') throw invalidArgument('Config.Image must be specified');
  const env = Array.isArray(body.Env) ? (body.Env as unknown[]).filter((e): e is string => typeof e === 'string') : [];
  return {
    tenant,
    id,
    name,
    image: body.Image,
    resources: requestedResources(body),
    env: [...env, ...pinnedHosts.map((hostId) => `constraint:node==${hostId}`)],
    labels: labelsOf(body),
  };
}
