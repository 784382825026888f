import { cpus } from 'node:os';
import { invalidArgument } from '../../common/errors.js';

/**
 * The shape checks dockerd gets for free from Go's JSON decoder, and the range checks its
 * daemon adds, for a container's HostConfig (create) and Resources (update). A field of the
 * wrong JSON type is refused with Go's message, as dockerd answers, instead of being
 * ignored or stored; null stands for "not given", as in Go.
 *
 * Only fields Berth reads or stores are listed: an unknown field is ignored, as in dockerd.
 */

type Kind =
  | 'int64'
  | 'int'
  | 'uint16'
  | 'bool'
  | 'string'
  | 'string[]'
  | 'map<string,string>'
  | 'object'
  | 'object[]'
  | 'consoleSize';

const INT64_MAX = 9223372036854775807;
/** Linux's PID_MAX_LIMIT on 64-bit: pids.max takes nothing larger. */
const PID_MAX_LIMIT = 4 * 1024 * 1024;
/** The kernel's largest CFS quota (2^44 - 1 µs). */
const MAX_CFS_QUOTA_US = 2 ** 44 - 1;

const RESOURCE_FIELDS: Record<string, Kind> = {
  Memory: 'int64',
  MemorySwap: 'int64',
  MemoryReservation: 'int64',
  KernelMemory: 'int64',
  MemorySwappiness: 'int64',
  NanoCpus: 'int64',
  CpuShares: 'int64',
  CpuPeriod: 'int64',
  CpuQuota: 'int64',
  CpuRealtimePeriod: 'int64',
  CpuRealtimeRuntime: 'int64',
  CpusetCpus: 'string',
  CpusetMems: 'string',
  PidsLimit: 'int64',
  BlkioWeight: 'uint16',
  OomKillDisable: 'bool',
  Ulimits: 'object[]',
  Devices: 'object[]',
  DeviceRequests: 'object[]',
  DeviceCgroupRules: 'string[]',
  CgroupParent: 'string',
  RestartPolicy: 'object',
};

const HOST_CONFIG_FIELDS: Record<string, Kind> = {
  ...RESOURCE_FIELDS,
  Binds: 'string[]',
  Links: 'string[]',
  Dns: 'string[]',
  DnsOptions: 'string[]',
  DnsSearch: 'string[]',
  ExtraHosts: 'string[]',
  GroupAdd: 'string[]',
  CapAdd: 'string[]',
  CapDrop: 'string[]',
  SecurityOpt: 'string[]',
  VolumesFrom: 'string[]',
  MaskedPaths: 'string[]',
  ReadonlyPaths: 'string[]',
  NetworkMode: 'string',
  PidMode: 'string',
  IpcMode: 'string',
  UTSMode: 'string',
  UsernsMode: 'string',
  CgroupnsMode: 'string',
  Runtime: 'string',
  VolumeDriver: 'string',
  ContainerIDFile: 'string',
  Privileged: 'bool',
  PublishAllPorts: 'bool',
  ReadonlyRootfs: 'bool',
  AutoRemove: 'bool',
  Init: 'bool',
  ShmSize: 'int64',
  OomScoreAdj: 'int',
  Tmpfs: 'map<string,string>',
  Sysctls: 'map<string,string>',
  StorageOpt: 'map<string,string>',
  Annotations: 'map<string,string>',
  LogConfig: 'object',
  PortBindings: 'object',
  Mounts: 'object[]',
  ConsoleSize: 'consoleSize',
};

const GO_TYPE: Record<Kind, string> = {
  int64: 'int64',
  int: 'int',
  uint16: 'uint16',
  bool: 'bool',
  string: 'string',
  'string[]': '[]string',
  'map<string,string>': 'map[string]string',
  object: 'struct',
  'object[]': '[]struct',
  consoleSize: '[2]uint',
};

function jsonKind(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return 'number';
  return typeof value;
}

function mismatch(struct: string, field: string, kind: Kind, value: unknown): never {
  const shown = typeof value === 'number' ? `number ${value}` : jsonKind(value);
  throw invalidArgument(`json: cannot unmarshal ${shown} into Go struct field ${struct}.${field} of type ${GO_TYPE[kind]}`);
}

function fits(kind: Kind, value: unknown): boolean {
  switch (kind) {
    case 'int64':
      return typeof value === 'number' && Number.isInteger(value) && Math.abs(value) <= INT64_MAX;
    case 'int':
      return typeof value === 'number' && Number.isInteger(value) && Math.abs(value) <= 2 ** 31;
    case 'uint16':
      return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 65535;
    case 'bool':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
    case 'string[]':
      return Array.isArray(value) && value.every((v) => typeof v === 'string');
    case 'map<string,string>':
      return typeof value === 'object' && !Array.isArray(value) && Object.values(value as object).every((v) => typeof v === 'string');
    case 'object':
      return typeof value === 'object' && !Array.isArray(value);
    case 'object[]':
      return Array.isArray(value) && value.every((v) => v === null || (typeof v === 'object' && !Array.isArray(v)));
    case 'consoleSize':
      return Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535);
  }
}

function checkFields(struct: string, fields: Record<string, Kind>, body: Record<string, unknown>): void {
  for (const [field, kind] of Object.entries(fields)) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (!fits(kind, value)) mismatch(struct, field, kind, value);
  }
  const restart = body.RestartPolicy as Record<string, unknown> | null | undefined;
  if (restart) checkFields(`${struct}.RestartPolicy`, { Name: 'string', MaximumRetryCount: 'int' }, restart);
  const log = body.LogConfig as Record<string, unknown> | null | undefined;
  if (log) checkFields(`${struct}.LogConfig`, { Type: 'string', Config: 'map<string,string>' }, log);
  for (const ulimit of (body.Ulimits as Record<string, unknown>[] | null | undefined) ?? []) {
    if (ulimit) checkFields(`${struct}.Ulimits`, { Name: 'string', Soft: 'int64', Hard: 'int64' }, ulimit);
  }
}

/** CPU list syntax ("0-3,5") naming only CPUs this host has; dockerd's messages. */
function checkCpuset(value: string, field: string): void {
  if (value === '') return;
  const available = cpus().length;
  const requested: number[] = [];
  for (const part of value.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    const from = m ? Number(m[1]) : NaN;
    const to = m?.[2] !== undefined ? Number(m[2]) : from;
    if (!m || to < from) throw invalidArgument(`Invalid value ${value} for ${field}`);
    requested.push(to);
  }
  if (field === 'cpuset cpus' && Math.max(...requested) >= available) {
    throw invalidArgument(`Requested CPUs are not available - requested ${value}, available: 0-${available - 1}`);
  }
}

function checkRanges(body: Record<string, unknown>): void {
  const n = (key: string): number | undefined => (typeof body[key] === 'number' ? (body[key] as number) : undefined);
  const shm = n('ShmSize');
  if (shm !== undefined && shm < 0) throw invalidArgument('SHM size can not be less than 0');
  const oom = n('OomScoreAdj');
  if (oom !== undefined && (oom < -1000 || oom > 1000)) throw invalidArgument(`Invalid value ${oom}, range for oom score adj is [-1000, 1000]`);
  const blkio = n('BlkioWeight');
  if (blkio !== undefined && blkio > 0 && (blkio < 10 || blkio > 1000)) throw invalidArgument('Range of blkio weight is from 10 to 1000');
  const reservation = n('MemoryReservation');
  if (reservation !== undefined && reservation < 0) throw invalidArgument('invalid MemoryReservation: must not be negative');
  if (reservation !== undefined && reservation > 0 && reservation < 6 * 1024 * 1024) throw invalidArgument('Minimum memory reservation allowed is 6MB');
  const swap = n('MemorySwap');
  if (swap !== undefined && swap < -1) throw invalidArgument('invalid MemorySwap: use -1 for unlimited swap');
  const quota = n('CpuQuota');
  if (quota !== undefined && quota < -1) throw invalidArgument('invalid CpuQuota: use -1 for no quota');
  const pids = n('PidsLimit');
  if (pids !== undefined && pids < -1) throw invalidArgument('invalid PidsLimit: use 0 or -1 for unlimited');
  // Beyond these the kernel refuses the cgroup write, which would surface as a runtime failure.
  if (pids !== undefined && pids > PID_MAX_LIMIT) throw invalidArgument(`invalid PidsLimit: the kernel allows at most ${PID_MAX_LIMIT}`);
  const shares = n('CpuShares');
  if (shares !== undefined && shares > 262144) throw invalidArgument('The maximum allowed cpu-shares is 262144');
  if (shares !== undefined && shares === 1) throw invalidArgument('The minimum allowed cpu-shares is 2');
  if (quota !== undefined && quota > MAX_CFS_QUOTA_US) throw invalidArgument(`invalid CpuQuota: the kernel allows at most ${MAX_CFS_QUOTA_US} microseconds`);
  const swappiness = n('MemorySwappiness');
  if (swappiness !== undefined && swappiness !== -1 && (swappiness < 0 || swappiness > 100)) {
    throw invalidArgument(`Invalid value: ${swappiness}, valid memory swappiness range is 0-100`);
  }
  if (typeof body.CpusetCpus === 'string') checkCpuset(body.CpusetCpus, 'cpuset cpus');
  if (typeof body.CpusetMems === 'string') checkCpuset(body.CpusetMems, 'cpuset mems');
  for (const ulimit of (body.Ulimits as { Name?: string; Soft?: number; Hard?: number }[] | null | undefined) ?? []) {
    for (const bound of [ulimit?.Soft, ulimit?.Hard]) {
      if (typeof bound === 'number' && bound < -1) throw invalidArgument(`invalid ulimit ${ulimit?.Name ?? ''}: ${bound} is neither a limit nor -1 (unlimited)`);
    }
    if (ulimit && typeof ulimit.Soft === 'number' && typeof ulimit.Hard === 'number' && ulimit.Soft > ulimit.Hard && ulimit.Hard >= 0) {
      throw invalidArgument(`ulimit soft limit must be less than or equal to hard limit: ${ulimit.Soft} > ${ulimit.Hard}`);
    }
  }
}

/** Create: HostConfig as the client sent it. */
export function checkHostConfigShape(raw: unknown): void {
  if (raw === undefined || raw === null) return;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidArgument(`json: cannot unmarshal ${jsonKind(raw)} into Go struct field ContainerCreateConfig.HostConfig of type container.HostConfig`);
  const body = raw as Record<string, unknown>;
  checkFields('HostConfig', HOST_CONFIG_FIELDS, body);
  checkRanges(body);
}

/** Update: the resources (and restart policy) a running container may change. */
export function checkUpdateShape(body: Record<string, unknown>): void {
  checkFields('UpdateConfig', RESOURCE_FIELDS, body);
  checkRanges(body);
}
