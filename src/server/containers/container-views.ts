import { humanDuration, parseRfc3339 } from '../../common/human-time.js';
import { invalidArgument } from '../../common/errors.js';
import type { ContainerRecord } from './model.js';
import { mountView } from '../mounts/model.js';
import type { Filters } from '../list-filters.js';
import { healthSuffix } from '../health/health-view.js';

/**
 * Formats container records the way dockerd's API returns them: the summary of
 * GET /containers/json and the document of GET /containers/{id}/json.
 */

export function statusText(record: ContainerRecord, now = Date.now()): string {
  const { state } = record;
  switch (state.Status) {
    case 'running':
      return `Up ${humanDuration(now - parseRfc3339(state.StartedAt))}${healthSuffix(state.Health)}`;
    case 'paused':
      return `Up ${humanDuration(now - parseRfc3339(state.StartedAt))} (Paused)`;
    case 'restarting':
      return `Restarting (${state.ExitCode}) ${humanDuration(now - parseRfc3339(state.FinishedAt))} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    case 'exited':
      if (state.FinishedAt.startsWith('0001')) return 'Created';
      return `Exited (${state.ExitCode}) ${humanDuration(now - parseRfc3339(state.FinishedAt))} ago`;
    default:
      return 'Created';
  }
}

function commandLine(record: ContainerRecord): string {
  return [record.path, ...record.args].map((part) => (/\s/.test(part) ? `'${part}'` : part)).join(' ');
}

export function containerSummary(record: ContainerRecord, sizes?: { SizeRw: number; SizeRootFs: number }): Record<string, unknown> {
  return {
    Id: record.id,
    Names: [`/${record.name}`],
    Image: record.image,
    ImageID: record.imageId,
    Command: commandLine(record),
    Created: Math.floor(parseRfc3339(record.created) / 1000),
    Ports: [],
    Labels: record.config.Labels,
    State: record.state.Status,
    Status: statusText(record),
    HostConfig: { NetworkMode: record.hostConfig.NetworkMode },
    NetworkSettings: { Networks: {} },
    Mounts: (record.mounts ?? []).map(mountView),
    ...(sizes ?? {}),
  };
}

export function containerInspect(
  record: ContainerRecord,
  extra: { execIds: string[]; rootfs: { upperDir: string; workDir: string; mergedDir: string } },
): Record<string, unknown> {
  return {
    Id: record.id,
    Created: record.created,
    Path: record.path,
    Args: record.args,
    State: record.state,
    Image: record.imageId,
    ResolvConfPath: record.resolvConfPath,
    HostnamePath: record.hostnamePath,
    HostsPath: record.hostsPath,
    LogPath: record.logPath,
    Name: `/${record.name}`,
    RestartCount: record.restartCount,
    Driver: 'overlay2',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: extra.execIds.length > 0 ? extra.execIds : null,
    HostConfig: {
      ...record.hostConfig,
      ContainerIDFile: '',
      PublishAllPorts: record.hostConfig.PublishAllPorts ?? false,
      Dns: [],
      DnsOptions: [],
      DnsSearch: [],
      ExtraHosts: null,
      IpcMode: 'private',
      Cgroup: '',
      Links: null,
      OomScoreAdj: 0,
      PidMode: '',
      SecurityOpt: null,
      UTSMode: '',
      UsernsMode: '',
      ShmSize: 67108864,
      Runtime: 'runc',
      Isolation: '',
      CgroupParent: '',
      Devices: [],
      DeviceRequests: null,
      OomKillDisable: false,
      Ulimits: null,
      VolumeDriver: '',
      VolumesFrom: record.hostConfig.VolumesFrom?.length ? record.hostConfig.VolumesFrom : null,
      ...(record.hostConfig.Mounts?.length ? { Mounts: record.hostConfig.Mounts } : {}),
      ConsoleSize: [0, 0],
      MaskedPaths: ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap'],
      ReadonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
    GraphDriver: {
      Name: 'overlay2',
      Data: { UpperDir: extra.rootfs.upperDir, WorkDir: extra.rootfs.workDir, MergedDir: extra.rootfs.mergedDir },
    },
    Mounts: (record.mounts ?? []).map(mountView),
    Config: { ...record.config, Labels: record.config.Labels, OnBuild: null },
    NetworkSettings: {
      Bridge: '',
      SandboxID: '',
      SandboxKey: '',
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      Ports: {},
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: '',
      Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      IPAddress: '',
      IPPrefixLen: 0,
      IPv6Gateway: '',
      MacAddress: '',
      Networks: {},
    },
  };
}

// ------------------------------------------------------------------ list filters


/** dockerd matches name filters as regular expressions; an invalid one matches literally. */
function nameMatches(pattern: string, name: string): boolean {
  const bare = pattern.replace(/^\//, '');
  try {
    return new RegExp(bare).test(name);
  } catch {
    return name.includes(bare);
  }
}

const CONTAINER_FILTERS = new Set(['id', 'name', 'label', 'status', 'exited', 'ancestor', 'before', 'since', 'health', 'is-task', 'volume', 'network', 'publish', 'expose', 'isolation']);
const STATUSES = new Set(['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead']);

function matchLabel(labels: Record<string, string>, wanted: string): boolean {
  const eq = wanted.indexOf('=');
  if (eq === -1) return wanted in labels;
  const key = wanted.slice(0, eq);
  return labels[key] === wanted.slice(eq + 1);
}

/**
 * Applies `docker ps` semantics: values of one key are ORed, keys are ANDed (labels ANDed
 * among themselves); `all=false` shows running containers only unless a status filter is given.
 */
export function selectContainers(
  records: ContainerRecord[],
  options: {
    all: boolean;
    limit?: number;
    filters: Filters;
    imageIdsFor: (ref: string) => string[];
    /** The network, publish and expose filters (networking knows the facts); without it they match nothing. */
    networkFiltersMatch?: (record: ContainerRecord) => boolean;
  },
): ContainerRecord[] {
  for (const key of Object.keys(options.filters)) {
    if (!CONTAINER_FILTERS.has(key)) throw invalidArgument(`invalid filter '${key}'`);
  }
  const f = options.filters;
  for (const status of f.status ?? []) {
    if (!STATUSES.has(status)) throw invalidArgument(`invalid filter 'status=${status}'`);
  }
  for (const health of f.health ?? []) {
    if (!['starting', 'healthy', 'unhealthy', 'none'].includes(health)) throw invalidArgument(`Unrecognised filter value for health: ${health}`);
  }
  const sorted = [...records].sort((a, b) => (b.created < a.created ? -1 : b.created > a.created ? 1 : 0));
  const byRef = (ref: string): ContainerRecord | undefined =>
    sorted.find((r) => r.id === ref || r.name === ref.replace(/^\//, '') || r.id.startsWith(ref));
  const before = f.before?.[0] ? byRef(f.before[0]) : undefined;
  const since = f.since?.[0] ? byRef(f.since[0]) : undefined;
  if (f.before?.[0] && !before) throw invalidArgument(`No such container: ${f.before[0]}`);
  if (f.since?.[0] && !since) throw invalidArgument(`No such container: ${f.since[0]}`);
  const ancestorIds = f.ancestor ? new Set(f.ancestor.flatMap((ref) => options.imageIdsFor(ref))) : undefined;
  const showAll = options.all || (options.limit ?? 0) > 0 || !!f.status || !!f.exited || !!before || !!since;

  const result = sorted.filter((r) => {
    if (!showAll && !r.state.Running) return false;
    if (f.id && !f.id.some((v) => r.id.startsWith(v))) return false;
    if (f.name && !f.name.some((v) => nameMatches(v, r.name))) return false;
    if (f.label && !f.label.every((v) => matchLabel(r.config.Labels, v))) return false;
    if (f.status && !f.status.includes(r.state.Status)) return false;
    if (f.exited && !(r.state.Status === 'exited' && f.exited.map(Number).includes(r.state.ExitCode))) return false;
    if (ancestorIds && !ancestorIds.has(r.imageId) && !f.ancestor!.includes(r.image)) return false;
    if (before && !(r.created < before.created)) return false;
    if (since && !(r.created > since.created)) return false;
    if (f.health && !f.health.includes(r.state.Health?.Status ?? 'none')) return false;
    if (f['is-task'] && f['is-task'].includes('true')) return false;
    if (f.volume && !f.volume.some((v) => (r.mounts ?? []).some((m) => m.Name === v || m.Source === v || m.Destination === v))) return false;
    if ((f.network || f.publish || f.expose) && !(options.networkFiltersMatch?.(r) ?? false)) return false;
    return true;
  });
  return options.limit && options.limit > 0 ? result.slice(0, options.limit) : result;
}
