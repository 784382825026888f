import { cpus } from 'node:os';
import { invalidArgument, notImplemented } from '../../common/errors.js';
import { checkHostConfigShape } from './host-config-types.js';
import type { ImageRuntimeConfig } from '../images/types.js';
import type { ContainerConfig, HostConfig } from './model.js';
import { parseRestartPolicy } from './restart-policy.js';
import { healthcheckField, mergeHealthcheck } from '../health/health-config.js';
import { normalisePortBindings } from '../networks/port-bindings.js';

/** The body of POST /containers/create as the docker CLI and SDKs send it (loosely typed: it is external input). */
export interface CreateBody {
  Hostname?: unknown;
  Domainname?: unknown;
  User?: unknown;
  AttachStdin?: unknown;
  AttachStdout?: unknown;
  AttachStderr?: unknown;
  ExposedPorts?: unknown;
  Tty?: unknown;
  OpenStdin?: unknown;
  StdinOnce?: unknown;
  Env?: unknown;
  Cmd?: unknown;
  Entrypoint?: unknown;
  Image?: unknown;
  Volumes?: unknown;
  WorkingDir?: unknown;
  Labels?: unknown;
  StopSignal?: unknown;
  StopTimeout?: unknown;
  Healthcheck?: unknown;
  HostConfig?: Record<string, unknown>;
  NetworkingConfig?: unknown;
}

const MIN_MEMORY = 6 * 1024 * 1024;

function str(value: unknown, field: string, fallback = ''): string {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string') throw invalidArgument(`invalid ${field}: must be a string`);
  return value;
}
function bool(value: unknown, field: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw invalidArgument(`invalid ${field}: must be a boolean`);
  return value;
}
function num(value: unknown, field: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidArgument(`invalid ${field}: must be a number`);
  return value;
}
/** Docker accepts a string where a list of strings is expected (StrSlice). */
function strList(value: unknown, field: string): string[] | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) {
    throw invalidArgument(`invalid ${field}: must be a list of strings`);
  }
  return value as string[];
}
function strMap(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(`invalid ${field}: must be an object`);
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw invalidArgument(`invalid ${field}: value of ${key} must be a string`);
  }
  return value as Record<string, string>;
}
function nonEmpty(map: Record<string, object>): Record<string, object> | null {
  return Object.keys(map).length > 0 ? map : null;
}
function objectMap(value: unknown, field: string): Record<string, object> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(`invalid ${field}: must be an object`);
  return value as Record<string, object>;
}

/**
 * Merges the user's environment over the image's as dockerd does: the user's entries come
 * first, then the image's entries whose key the user did not set.
 */
export function mergeEnv(image: string[], user: string[]): string[] {
  const keyOf = (entry: string): string => {
    const eq = entry.indexOf('=');
    return eq === -1 ? entry : entry.slice(0, eq);
  };
  if (user.length === 0) return [...image];
  const userKeys = new Set(user.map(keyOf));
  return [...user, ...image.filter((entry) => !userKeys.has(keyOf(entry)))];
}

/**
 * The environment a process gets: an entry without "=" (`-e NAME` with NAME unset on the
 * client) stays in Config.Env, as under dockerd, but is not passed to the process.
 */
export function processEnv(env: string[]): string[] {
  return env.filter((entry) => entry.includes('='));
}

/**
 * Computes the stored Config from the user's request and the image's config, with Docker's
 * merge rules: a user entrypoint discards the image's Cmd unless a Cmd is given; env and
 * labels merge key by key; unset fields fall back to the image.
 */
export function mergeContainerConfig(body: CreateBody, image: ImageRuntimeConfig, id: string): ContainerConfig {
  const userEntrypoint = strList(body.Entrypoint, 'Entrypoint');
  const userCmd = strList(body.Cmd, 'Cmd');
  let entrypoint: string[] | null;
  let cmd: string[] | null;
  if (userEntrypoint !== null) {
    // `--entrypoint ""` arrives as [""]: it clears the image's entrypoint.
    entrypoint = userEntrypoint.length === 1 && userEntrypoint[0] === '' ? null : userEntrypoint;
    cmd = userCmd;
  } else {
    entrypoint = image.Entrypoint && image.Entrypoint.length > 0 ? image.Entrypoint : null;
    cmd = userCmd && userCmd.length > 0 ? userCmd : (image.Cmd ?? null);
  }
  if ((entrypoint?.length ?? 0) === 0 && (cmd?.length ?? 0) === 0) throw invalidArgument('No command specified');

  const workingDir = str(body.WorkingDir, 'WorkingDir') || image.WorkingDir || '';
  if (workingDir !== '' && !workingDir.startsWith('/')) {
    throw invalidArgument(`the working directory '${workingDir}' is invalid, it needs to be an absolute path`);
  }
  const stopTimeout = body.StopTimeout === undefined || body.StopTimeout === null ? undefined : num(body.StopTimeout, 'StopTimeout');
  const stopSignal = str(body.StopSignal, 'StopSignal') || image.StopSignal || undefined;
  const config: ContainerConfig = {
    Hostname: str(body.Hostname, 'Hostname') || id.slice(0, 12),
    Domainname: str(body.Domainname, 'Domainname'),
    User: str(body.User, 'User') || image.User || '',
    AttachStdin: bool(body.AttachStdin, 'AttachStdin'),
    AttachStdout: bool(body.AttachStdout, 'AttachStdout'),
    AttachStderr: bool(body.AttachStderr, 'AttachStderr'),
    ExposedPorts: { ...(image.ExposedPorts ?? {}), ...(objectMap(body.ExposedPorts, 'ExposedPorts') ?? {}) },
    Tty: bool(body.Tty, 'Tty'),
    OpenStdin: bool(body.OpenStdin, 'OpenStdin'),
    StdinOnce: bool(body.StdinOnce, 'StdinOnce'),
    Env: mergeEnv(image.Env ?? [], strList(body.Env, 'Env') ?? []),
    Cmd: cmd,
    Entrypoint: entrypoint,
    Image: str(body.Image, 'Image'),
    // The image's VOLUME paths and the user's `-v /path` together, as dockerd merges them.
    Volumes: nonEmpty({ ...(image.Volumes ?? {}), ...(objectMap(body.Volumes, 'Volumes') ?? {}) }),
    WorkingDir: workingDir,
    Labels: { ...(image.Labels ?? {}), ...strMap(body.Labels, 'Labels') },
    ...(stopSignal ? { StopSignal: stopSignal } : {}),
    ...(stopTimeout !== undefined ? { StopTimeout: stopTimeout } : {}),
    ...healthcheckField(mergeHealthcheck(body.Healthcheck, image.Healthcheck)),
  };
  if (Object.keys(config.ExposedPorts ?? {}).length === 0) delete config.ExposedPorts;
  return config;
}

/**
 * Validates and normalises HostConfig. Options Berth does not offer yet are refused with a
 * message naming them (docs/divergences.md lists them) rather than silently ignored: a
 * user who asked for a published port must not believe they have one.
 */
export function normaliseHostConfig(raw: Record<string, unknown> | undefined): HostConfig {
  checkHostConfigShape(raw);
  const hc = raw ?? {};
  const memory = num(hc.Memory, 'Memory');
  if (memory < 0) throw invalidArgument('invalid Memory: must not be negative');
  if (memory > 0 && memory < MIN_MEMORY) throw invalidArgument('Minimum memory limit allowed is 6MB');
  const memorySwap = num(hc.MemorySwap, 'MemorySwap');
  if (memory > 0 && memorySwap > 0 && memorySwap < memory) {
    throw invalidArgument('Minimum memoryswap limit should be larger than memory limit, see usage');
  }
  if (memory === 0 && memorySwap > 0) throw invalidArgument('You should always set the Memory limit when using Memoryswap limit, see usage');
  const nanoCpus = num(hc.NanoCpus, 'NanoCpus');
  const cpuQuota = num(hc.CpuQuota, 'CpuQuota');
  const cpuPeriod = num(hc.CpuPeriod, 'CpuPeriod');
  if (nanoCpus > 0 && (cpuQuota > 0 || cpuPeriod > 0)) {
    throw invalidArgument('Conflicting options: Nano CPUs and CPU Period cannot both be set');
  }
  const hostCpus = cpus().length;
  if (nanoCpus < 0 || nanoCpus > hostCpus * 1e9) {
    throw invalidArgument(`Range of CPUs is from 0.01 to ${hostCpus}.00, as there are only ${hostCpus} CPUs available`);
  }
  if (cpuPeriod !== 0 && (cpuPeriod < 1000 || cpuPeriod > 1_000_000)) {
    throw invalidArgument('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  }
  if (cpuQuota !== 0 && cpuQuota > 0 && cpuQuota < 1000) throw invalidArgument('CPU cfs quota can not be less than 1ms (i.e. 1000)');
  const cpuShares = num(hc.CpuShares, 'CpuShares');
  if (cpuShares < 0) throw invalidArgument('invalid CpuShares: must not be negative');
  const restartPolicy = parseRestartPolicy(hc.RestartPolicy);
  if (typeof restartPolicy === 'string') throw invalidArgument(restartPolicy);
  const autoRemove = bool(hc.AutoRemove, 'AutoRemove');
  if (autoRemove && restartPolicy.Name !== '' && restartPolicy.Name !== 'no') {
    throw invalidArgument('can\'t create \'AutoRemove\' container with restart policy');
  }
  const pids = hc.PidsLimit === undefined || hc.PidsLimit === null ? null : num(hc.PidsLimit, 'PidsLimit');

  // Which networks exist is the network service's to check (ContainerNetworking.planCreate).
  const networkMode = str(hc.NetworkMode, 'NetworkMode', 'default') || 'default';
  const portBindings = normalisePortBindings(hc.PortBindings);
  if (networkMode.startsWith('container:') && Object.keys(portBindings).length > 0) {
    throw invalidArgument('conflicting options: port publishing and the container type network mode');
  }
  // Validated and planned by server/mounts when the container is created.
  const binds = strList(hc.Binds, 'Binds');
  const volumesFrom = strList(hc.VolumesFrom, 'VolumesFrom');
  if (hc.Privileged === true) throw notImplemented('privileged containers (--privileged) are not supported');
  for (const unsupported of ['Devices', 'DeviceRequests'] as const) {
    const value = hc[unsupported];
    if (Array.isArray(value) && value.length > 0) throw notImplemented(`${unsupported} (--device, --gpus) are not supported yet`);
  }
  for (const mode of ['PidMode', 'IpcMode', 'UTSMode', 'UsernsMode', 'CgroupnsMode'] as const) {
    const value = hc[mode];
    if (typeof value === 'string' && value !== '' && !(mode === 'IpcMode' && (value === 'private' || value === 'shareable')) && !(mode === 'CgroupnsMode' && value === 'private')) {
      throw notImplemented(`${mode} "${value}" is not supported: containers always get private namespaces`);
    }
  }
  const securityOpt = strList(hc.SecurityOpt, 'SecurityOpt') ?? [];
  if (securityOpt.length > 0) throw notImplemented(`security options (--security-opt ${securityOpt.join(', ')}) are not supported`);
  const logConfig = (hc.LogConfig ?? {}) as { Type?: string; Config?: Record<string, string> };
  if (logConfig.Type && !['json-file', 'local', 'k8s-file'].includes(logConfig.Type)) {
    throw notImplemented(`logging driver "${logConfig.Type}" is not supported: Berth keeps logs in its own file format`);
  }
  const tmpfs = strMap(hc.Tmpfs, 'Tmpfs');
  for (const destination of Object.keys(tmpfs)) {
    if (!destination.startsWith('/')) throw invalidArgument(`invalid mount config for type "tmpfs": invalid mount path: '${destination}' mount path must be absolute`);
  }
  return {
    Memory: memory,
    // dockerd's default: swap may add as much again as the memory limit.
    MemorySwap: memory > 0 && memorySwap === 0 ? memory * 2 : memorySwap,
    MemoryReservation: num(hc.MemoryReservation, 'MemoryReservation'),
    NanoCpus: nanoCpus,
    CpuShares: cpuShares,
    CpuPeriod: cpuPeriod,
    CpuQuota: cpuQuota,
    CpusetCpus: str(hc.CpusetCpus, 'CpusetCpus'),
    PidsLimit: pids,
    BlkioWeight: num(hc.BlkioWeight, 'BlkioWeight'),
    Init: hc.Init === undefined || hc.Init === null ? null : bool(hc.Init, 'Init'),
    ReadonlyRootfs: bool(hc.ReadonlyRootfs, 'ReadonlyRootfs'),
    Tmpfs: tmpfs,
    RestartPolicy: restartPolicy,
    AutoRemove: autoRemove,
    CapAdd: strList(hc.CapAdd, 'CapAdd'),
    GroupAdd: strList(hc.GroupAdd, 'GroupAdd'),
    CapDrop: strList(hc.CapDrop, 'CapDrop'),
    NetworkMode: networkMode,
    PortBindings: portBindings,
    PublishAllPorts: bool(hc.PublishAllPorts, 'PublishAllPorts'),
    Binds: binds,
    ...(Array.isArray(hc.Mounts) && hc.Mounts.length > 0 ? { Mounts: hc.Mounts as unknown[] } : {}),
    VolumesFrom: volumesFrom,
    LogConfig: { Type: 'json-file', Config: logConfig.Config ?? {} },
    Privileged: false,
    ...(hc.Sysctls ? { Sysctls: strMap(hc.Sysctls, 'Sysctls') } : {}),
  };
}
