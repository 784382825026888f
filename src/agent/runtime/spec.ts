import path from 'node:path';
import { invalidArgument } from '../../common/errors.js';
import { effectiveCapabilities } from './capabilities.js';
import type { LinuxDevice, LinuxDeviceCgroup, LinuxNamespace, LinuxResources, Mount, Spec } from './oci-types.js';
import { defaultSeccompProfile } from './seccomp.js';
import { ociBindMount } from '../mounts/oci-mounts.js';
import type { ContainerSpecInput, ResourceLimits } from './types.js';
import { ociIdMapping } from '../userns/id-range.js';

/**
 * Builds the OCI runtime spec (a bundle's config.json) for one container: a pure function of
 * what the user asked for (ContainerSpecInput) and what the host decided (SpecHostContext).
 *
 * Hardened defaults, Docker's unless noted: the 14 default capabilities adjusted by
 * --cap-add/--cap-drop; Berth's seccomp allowlist (seccomp.ts); no_new_privileges (Berth
 * default; Docker needs --security-opt for it); masked and read-only /proc and /sys paths;
 * private pid, ipc, uts, mount and network namespaces; a device cgroup that denies all but the
 * pseudo-devices every program expects; RLIMIT_NOFILE 1048576; oom_score_adj 0 so containers
 * never inherit the agent's protection from the OOM killer. No AppArmor or SELinux label.
 *
 * Not done here (the caller's job): Docker's create-time rewrites of HostConfig (e.g.
 * MemorySwap = 2 × Memory when only Memory is given) and limit validation; creating cwd.
 *
 * Throws InvalidArgument (before anything exists on the host) for a bad capability name or a
 * bad --tmpfs option.
 */

export interface SpecHostContext {
  /** runc cgroupsPath, e.g. "/berth/<id>". */
  cgroupsPath: string;
  /** The process user, resolved against the rootfs by resolveUser. */
  user: { uid: number; gid: number; additionalGids: number[]; home: string };
  /** Host path of a static init (tini) for --init; without it --init is ignored. */
  initBinary?: string;
  /** runc and kernel make read-only volume and bind mounts read-only recursively (rro); default true. */
  recursiveReadonly?: boolean;
  /** Give the container a private cgroup namespace (Docker does so on cgroup v2 hosts). */
  cgroupNamespace?: boolean;
  /** Let the container use the 32-bit syscall ABI as well (see seccomp.ts). */
  compat32Syscalls?: boolean;
}

export const OCI_VERSION = '1.0.2';
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const INIT_PATH = '/sbin/docker-init';
export const NOFILE_LIMIT = 1048576;

export const MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

export const READONLY_PATHS: readonly string[] = [
  '/proc/asound',
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
];

/** Pseudo-devices created in every container's /dev (runc adds /dev/console and /dev/ptmx itself). */
export const DEFAULT_DEVICES: readonly LinuxDevice[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0 },
];

/** The device cgroup: deny everything, then allow what the default devices, ttys and mknod need. */
export const DEVICE_CGROUP_RULES: readonly LinuxDeviceCgroup[] = [
  { allow: false, access: 'rwm' },
  // mknod of any node is allowed (CAP_MKNOD still applies); using it is not, unless listed below.
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  ...DEFAULT_DEVICES.map((d): LinuxDeviceCgroup => ({ allow: true, type: 'c', major: d.major, minor: d.minor, access: 'rwm' })),
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' }, // /dev/console
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // /dev/ptmx
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // /dev/pts/*
];

function defaultMounts(): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  ];
}

export function buildOciSpec(input: ContainerSpecInput, host: SpecHostContext): Spec {
  const caps = effectiveCapabilities(input.capAdd, input.capDrop);
  const { uid, gid, additionalGids, home } = host.user;

  const initBinary = input.process.init ? host.initBinary : undefined;
  const useInit = initBinary !== undefined;
  const args = useInit ? [INIT_PATH, '--', ...input.process.args] : [...input.process.args];

  const userMounts = [
    ...Object.entries(input.tmpfs).map(([dest, opts]) => tmpfsMount(dest, opts)),
    ...(input.mounts ?? []).map((m) => ociBindMount(m, host.recursiveReadonly ?? true)),
  ];
  const userDestinations = new Set(userMounts.map((m) => m.destination));
  userMounts.push(
    ...input.binds.filter((b) => !userDestinations.has(b.destination)).map(
      (b): Mount => ({
        destination: b.destination,
        type: 'bind',
        source: b.source,
        options: ['rbind', b.readonly ? 'ro' : 'rw', 'rprivate'],
      }),
    ),
  );
  if (initBinary !== undefined) {
    userMounts.push({ destination: INIT_PATH, type: 'bind', source: initBinary, options: ['rbind', 'ro', 'rprivate'] });
  }

  const namespaces: LinuxNamespace[] = [
    { type: 'pid' },
    { type: 'ipc' },
    { type: 'uts' },
    { type: 'mount' },
    input.netnsPath ? { type: 'network', path: input.netnsPath } : { type: 'network' },
  ];
  if (host.cgroupNamespace) namespaces.push({ type: 'cgroup' });
  if (input.idRange) namespaces.unshift(input.usernsPath ? { type: 'user', path: input.usernsPath } : { type: 'user' });
  const idMappings = input.idRange ? { uidMappings: [ociIdMapping(input.idRange)], gidMappings: [ociIdMapping(input.idRange)] } : {};

  // There is no domainname field in runtime-spec 1.0; this sysctl has setdomainname(2)'s effect.
  const sysctl: Record<string, string> = {};
  if (input.domainname) sysctl['kernel.domainname'] = input.domainname;
  Object.assign(sysctl, input.sysctls ?? {});

  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: input.process.tty,
      user: { uid, gid, ...(additionalGids.length > 0 ? { additionalGids: [...additionalGids] } : {}) },
      args,
      env: containerEnv(input, home),
      cwd: input.process.cwd || '/',
      // A non-root process keeps only the bounding set, as execve would leave it (Docker does the same).
      capabilities: uid === 0 ? { bounding: caps, effective: caps, permitted: caps } : { bounding: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: NOFILE_LIMIT, soft: NOFILE_LIMIT }],
      noNewPrivileges: true,
      oomScoreAdj: 0,
    },
    root: { path: input.rootfs, readonly: input.readonlyRootfs },
    hostname: input.hostname,
    mounts: mergeMounts(defaultMounts(), userMounts),
    linux: {
      sysctl,
      resources: { devices: [...DEVICE_CGROUP_RULES], ...linuxResources(input.resources) },
      cgroupsPath: host.cgroupsPath,
      namespaces,
      ...idMappings,
      devices: DEFAULT_DEVICES.map((d) => ({ ...d })),
      seccomp: defaultSeccompProfile(caps, { compat32: host.compat32Syscalls ?? false }),
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
}

/**
 * Environment as Docker builds it: PATH, HOSTNAME and (with a TTY) TERM first unless the
 * input sets them, then the input in order, then HOME from the user's passwd entry.
 */
function containerEnv(input: ContainerSpecInput, home: string): string[] {
  const has = (key: string): boolean => input.process.env.some((e) => e.startsWith(`${key}=`));
  const env: string[] = [];
  if (!has('PATH')) env.push(`PATH=${DEFAULT_PATH}`);
  if (!has('HOSTNAME')) env.push(`HOSTNAME=${input.hostname}`);
  if (input.process.tty && !has('TERM')) env.push('TERM=xterm');
  env.push(...input.process.env);
  if (!has('HOME')) env.push(`HOME=${home || '/'}`);
  return env;
}

/** The resources section; a 0 or absent limit is left out so that runc leaves it unlimited. */
export function linuxResources(r: ResourceLimits): Omit<LinuxResources, 'devices'> {
  const out: Omit<LinuxResources, 'devices'> = {};
  const positive = (v: number | undefined): v is number => v !== undefined && v > 0;

  const memory: NonNullable<LinuxResources['memory']> = {};
  if (positive(r.memory)) memory.limit = r.memory;
  if (positive(r.memoryReservation)) memory.reservation = r.memoryReservation;
  if (r.memorySwap === -1 || positive(r.memorySwap)) memory.swap = r.memorySwap;
  if (Object.keys(memory).length > 0) out.memory = memory;

  const cpu: NonNullable<LinuxResources['cpu']> = {};
  if (positive(r.cpuShares)) cpu.shares = r.cpuShares;
  if (positive(r.cpuQuota)) cpu.quota = r.cpuQuota;
  if (positive(r.cpuPeriod)) cpu.period = r.cpuPeriod;
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (Object.keys(cpu).length > 0) out.cpu = cpu;

  if (positive(r.pidsLimit)) out.pids = { limit: r.pidsLimit };
  if (positive(r.blkioWeight)) out.blockIO = { weight: r.blkioWeight };
  return out;
}

/**
 * Default mounts first, minus those a user mount replaces (same destination, or anything
 * under /dev when the user mounts /dev), then user mounts parents-first so that a mount at
 * /a/b lands on top of one at /a.
 */
function mergeMounts(defaults: Mount[], user: Mount[]): Mount[] {
  const userDest = new Set(user.map((m) => path.posix.normalize(m.destination)));
  const kept = defaults.filter(
    (m) => !userDest.has(m.destination) && !(userDest.has('/dev') && m.destination.startsWith('/dev/')),
  );
  const depth = (m: Mount): number => path.posix.normalize(m.destination).split('/').length;
  return [...kept, ...[...user].sort((a, b) => depth(a) - depth(b))];
}

// --tmpfs options Docker accepts: flags (each pair overrides its partner) and key=value data.
const TMPFS_FLAG_CLASSES: Record<string, string> = {
  ro: 'rdonly', rw: 'rdonly',
  suid: 'suid', nosuid: 'suid',
  dev: 'dev', nodev: 'dev',
  exec: 'exec', noexec: 'exec',
  sync: 'sync', async: 'sync',
  dirsync: 'dirsync',
  mand: 'mand', nomand: 'mand',
  atime: 'atime', noatime: 'atime',
  diratime: 'diratime', nodiratime: 'diratime',
  relatime: 'relatime', norelatime: 'relatime',
  strictatime: 'strictatime', nostrictatime: 'strictatime',
  private: 'propagation', rprivate: 'propagation', shared: 'propagation', rshared: 'propagation',
  slave: 'propagation', rslave: 'propagation', unbindable: 'propagation', runbindable: 'propagation',
};
const TMPFS_DATA_KEYS = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol']);

/**
 * A --tmpfs mount: Docker's defaults noexec,nosuid,nodev,rprivate, overridden by the user's
 * options where they conflict (the later of two conflicting options wins).
 */
export function tmpfsMount(destination: string, options: string): Mount {
  if (!destination.startsWith('/')) {
    throw invalidArgument(
      `invalid mount config for type "tmpfs": invalid mount path: '${destination}' mount path must be absolute`,
    );
  }
  const all = ['noexec', 'nosuid', 'nodev', 'rprivate', ...(options === '' ? [] : options.split(','))];
  const seen = new Set<string>();
  const merged: string[] = [];
  for (let i = all.length - 1; i >= 0; i--) {
    const opt = all[i] as string;
    if (opt === 'defaults') continue;
    let key = TMPFS_FLAG_CLASSES[opt];
    if (key === undefined) {
      const parts = opt.split('=');
      const name = parts[0] as string;
      if (parts.length < 2 || !TMPFS_DATA_KEYS.has(name)) {
        const shown = opt.includes('=') ? [name, opt.slice(name.length + 1)] : [opt];
        throw invalidArgument(`Invalid tmpfs option [${shown.map((s) => JSON.stringify(s)).join(' ')}]`);
      }
      key = `data:${name}`;
    }
    if (seen.has(key)) continue;
    seen.add(key);
    merged.unshift(opt);
  }
  return { destination: path.posix.normalize(destination), type: 'tmpfs', source: 'tmpfs', options: merged };
}
