import { RANGE_SIZE, type IdRange } from '../../agent/userns/id-range.js';

/**
 * The next tenant's user-namespace ID range: RANGE_SIZE ids starting above every range
 * handed out so far and at or above `base`. Ranges of removed tenants are never handed out
 * again (allocation only moves up): a new tenant must never own files an old one left on
 * the host (volumes, logs, a host's leftovers). 2^32 uids leave room for ~65000 tenants.
 */
export function nextIdRange(base: number, taken: IdRange[]): IdRange {
  const end = taken.reduce((top, r) => Math.max(top, r.base + r.count), base);
  // Aligned, so that a host uid tells its tenant's slot at a glance (uid >> 16).
  const start = Math.ceil(end / RANGE_SIZE) * RANGE_SIZE;
  if (start + RANGE_SIZE > 2 ** 32 - 1) throw new Error('no user-namespace ID range left');
  return { base: start, count: RANGE_SIZE };
}

/**
 * The ID range a tenant's container runs in: the tenant's, unless the container shares a
 * namespace of the host or is privileged, which only a policy the operator loosened lets a
 * tenant ask for. Those run without a user namespace, as dockerd --userns-remap runs them
 * only with --userns=host: a host namespace is owned by the host's user namespace, so root
 * of a range could not use it (mount sysfs or proc, configure the network) anyway.
 */
export function containerIdRange(
  tenantRange: IdRange | undefined,
  hostConfig: { Privileged?: boolean; NetworkMode?: string; PidMode?: string; IpcMode?: string; UTSMode?: string; UsernsMode?: string },
): IdRange | undefined {
  if (!tenantRange) return undefined;
  const sharesHost = [hostConfig.NetworkMode, hostConfig.PidMode, hostConfig.IpcMode, hostConfig.UTSMode, hostConfig.UsernsMode].some((mode) => mode === 'host');
  return hostConfig.Privileged === true || sharesHost ? undefined : tenantRange;
}
