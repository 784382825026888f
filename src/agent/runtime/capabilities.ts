import { invalidArgument } from '../../common/errors.js';

/**
 * Linux capabilities of a container's process, computed the way `docker run --cap-add/--cap-drop`
 * computes them.
 *
 * Terms: a capability name is canonical when upper case with the CAP_ prefix (CAP_NET_ADMIN).
 * Users may write it in any case and without the prefix (net_admin); "ALL" names every
 * capability. The result is always canonical, without duplicates.
 */

/** Every capability of Linux 6.x, in kernel number order (CAP_CHOWN = 0 … CAP_CHECKPOINT_RESTORE = 40). */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** The 14 capabilities a Docker container gets when nothing is added or dropped. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const ALL = 'ALL';
const known = new Set(ALL_CAPABILITIES);

/**
 * Canonical form of a user-written capability name, or "ALL".
 * Throws InvalidArgument with Docker's message for a name Linux does not have.
 */
export function normalizeCapability(name: string): string {
  const upper = name.toUpperCase();
  if (upper === ALL) return ALL;
  const canonical = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!known.has(canonical)) {
    throw invalidArgument(`unknown capability: ${JSON.stringify(canonical)}`);
  }
  return canonical;
}

/**
 * The capability set for a container, by Docker's rules:
 * - nothing added or dropped → the 14 defaults;
 * - "ALL" in capAdd → every capability except those dropped;
 * - else "ALL" in capDrop → exactly the added ones;
 * - else the defaults minus the dropped, plus the added (an added name wins over a drop).
 * Both lists are validated first, so a bad name fails the whole call.
 */
export function effectiveCapabilities(capAdd: readonly string[], capDrop: readonly string[]): string[] {
  const drop = capDrop.map(normalizeCapability);
  const add = capAdd.map(normalizeCapability);
  let caps: string[];
  if (add.includes(ALL)) {
    caps = ALL_CAPABILITIES.filter((c) => !drop.includes(c));
  } else if (drop.includes(ALL)) {
    caps = add;
  } else {
    caps = [...DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c)), ...add];
  }
  return [...new Set(caps)];
}

/**
 * The capability bitmask as /proc/<pid>/status prints it (CapEff etc.): 16 hex digits.
 * Used by tests and by introspection to compare a live process with its spec.
 */
export function capabilityMask(caps: readonly string[]): string {
  let mask = 0n;
  for (const c of caps) {
    const bit = ALL_CAPABILITIES.indexOf(c);
    if (bit < 0) throw invalidArgument(`unknown capability: ${JSON.stringify(c)}`);
    mask |= 1n << BigInt(bit);
  }
  return mask.toString(16).padStart(16, '0');
}
