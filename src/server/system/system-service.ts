import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RequestContext } from '../../common/context.js';
import { errnoCode, invalidArgument } from '../../common/errors.js';
import { readBuildInfo } from './build-info.js';
import { hostFactsProbe } from './host-facts.js';
import { API_VERSION_MAX, API_VERSION_MIN } from '../docker-api/version.js';
import type { BuildInfo, DfContainer, DfImage, DfVolume, DiskUsageType, HostFacts, SystemSources } from './types.js';

/**
 * Answers `docker version`, `docker info` and `docker system df` for one tenant.
 *
 * Terms: the engine id is a UUID kept in `<data root>/engine-id`, created on first start, so
 * `docker info`'s ID is stable per data root (as dockerd's engine-id file). Counts and sizes
 * come from SystemSources, scoped by the caller's tenant; host facts are the machine's.
 *
 * Choices that differ from dockerd, each honest about what Berth is:
 * - Driver "overlayfs" (Berth stacks layers with the kernel's overlayfs itself, not dockerd's
 *   overlay2 driver), LoggingDriver "k8s-file" (conmon's log format, which Berth writes).
 * - GoVersion carries the Node.js version that runs Berth; there is no Go and no containerd.
 * - LiveRestoreEnabled is true: containers run under their own monitor and outlive Berth.
 */
export class SystemService {
  private readonly engineId: string;
  private readonly host: () => Promise<HostFacts>;
  private readonly build: BuildInfo;

  /** Reads (or creates) the engine id under the data root; throws when the data root is unusable. */
  constructor(private readonly options: SystemServiceOptions) {
    this.engineId = readOrCreateEngineId(options.dataRoot);
    this.host = options.host ?? hostFactsProbe();
    this.build = options.build ?? readBuildInfo();
  }

  /** The engine id (`docker info` ID), stable per data root; the actor of daemon events. */
  daemonId(): string {
    return this.engineId;
  }

  async version(): Promise<VersionResponse> {
    const host = await this.host();
    const build = this.build;
    const engineDetails: Record<string, string> = {
      ApiVersion: API_VERSION_MAX,
      Arch: host.goArch,
      BuildTime: build.buildTime,
      Experimental: 'false',
      GitCommit: build.gitCommit,
      GoVersion: build.runtimeVersion,
      KernelVersion: host.kernelVersion,
      MinAPIVersion: API_VERSION_MIN,
      Os: 'linux',
    };
    const components: VersionResponse['Components'] = [{ Name: 'Engine', Version: build.version, Details: engineDetails }];
    if (host.runc) components.push({ Name: 'runc', Version: host.runc.version, Details: { GitCommit: host.runc.commit } });
    if (host.init) components.push({ Name: 'tini', Version: host.init.version, Details: {} });
    return {
      Platform: { Name: 'Berth' },
      Components: components,
      Version: build.version,
      ApiVersion: API_VERSION_MAX,
      MinAPIVersion: API_VERSION_MIN,
      GitCommit: build.gitCommit,
      GoVersion: build.runtimeVersion,
      Os: 'linux',
      Arch: host.goArch,
      KernelVersion: host.kernelVersion,
      BuildTime: build.buildTime,
    };
  }

  async info(ctx: RequestContext): Promise<InfoResponse> {
    const { sources, dataRoot } = this.options;
    const build = this.build;
    const [host, counts, images] = await Promise.all([
      this.host(),
      sources.containerCounts(ctx),
      sources.imageCount(ctx),
    ]);
    const warnings: string[] = [];
    if (!host.runc) warnings.push('WARNING: runc could not be run; containers cannot start');
    if (!host.swapLimit) warnings.push('WARNING: No swap limit support');
    if (!host.ipv4Forwarding) warnings.push('WARNING: IPv4 forwarding is disabled');
    return {
      ID: this.engineId,
      Containers: counts.total,
      ContainersRunning: counts.running,
      ContainersPaused: counts.paused,
      ContainersStopped: counts.stopped,
      Images: images,
      Driver: 'overlayfs',
      DriverStatus: [],
      DockerRootDir: dataRoot,
      Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null'], Authorization: null, Log: ['k8s-file'] },
      MemoryLimit: true,
      SwapLimit: host.swapLimit,
      KernelMemoryTCP: false,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      OomKillDisable: host.cgroupVersion === '1',
      IPv4Forwarding: host.ipv4Forwarding,
      Debug: false,
      NFd: openFileCount(),
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: 'k8s-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: host.cgroupVersion,
      NEventsListener: this.options.events?.listenerCount() ?? 0,
      KernelVersion: host.kernelVersion,
      OperatingSystem: host.operatingSystem,
      OSVersion: host.osVersion,
      OSType: 'linux',
      Architecture: host.machine,
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: { AllowNondistributableArtifactsCIDRs: null, AllowNondistributableArtifactsHostnames: null, InsecureRegistryCIDRs: [], IndexConfigs: {}, Mirrors: [] },
      NCPU: host.ncpu,
      MemTotal: host.memTotal,
      GenericResources: null,
      HttpProxy: '',
      HttpsProxy: '',
      NoProxy: '',
      Name: host.hostname,
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: build.version,
      Runtimes: { runc: { path: 'runc' } },
      DefaultRuntime: 'runc',
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      LiveRestoreEnabled: true,
      Isolation: '',
      InitBinary: host.init?.binary ?? '',
      ContainerdCommit: { ID: '' },
      RuncCommit: { ID: host.runc?.commit ?? '' },
      InitCommit: { ID: host.init?.version ?? '' },
      SecurityOptions: ['name=seccomp,profile=builtin', 'name=no-new-privileges'],
      CDISpecDirs: [],
      Warnings: warnings,
    };
  }

  /** `types` narrows what is computed (Docker's `type` query); kinds not asked for are null. */
  async diskUsage(ctx: RequestContext, types?: readonly string[]): Promise<DiskUsageResponse> {
    const wanted = new Set<DiskUsageType>();
    for (const t of types ?? DISK_USAGE_TYPES) {
      if (!(DISK_USAGE_TYPES as readonly string[]).includes(t)) throw invalidArgument(`unknown object type: ${t}`);
      wanted.add(t as DiskUsageType);
    }
    const { sources } = this.options;
    const [images, containers, volumes, buildCache] = await Promise.all([
      wanted.has('image') ? sources.dfImages(ctx) : undefined,
      wanted.has('container') ? sources.dfContainers(ctx) : undefined,
      wanted.has('volume') ? sources.dfVolumes(ctx) : undefined,
      wanted.has('build-cache') ? (sources.dfBuildCache?.(ctx) ?? []) : undefined,
    ]);
    return {
      LayersSize: images?.layersSize ?? 0,
      Images: images?.images ?? null,
      Containers: containers ?? null,
      Volumes: volumes ?? null,
      BuildCache: buildCache ?? null,
    };
  }
}

export const DISK_USAGE_TYPES: readonly DiskUsageType[] = ['container', 'image', 'volume', 'build-cache'];

export interface SystemServiceOptions {
  /** Berth's data root; shown as DockerRootDir and home of the engine-id file. */
  dataRoot: string;
  sources: SystemSources;
  /** Facts about this machine; defaults to probing it (hostFactsProbe). */
  host?: () => Promise<HostFacts>;
  /** This build of Berth; defaults to readBuildInfo(). */
  build?: BuildInfo;
  /** For NEventsListener in /info. */
  events?: { listenerCount(): number };
}

function readOrCreateEngineId(dataRoot: string): string {
  const path = join(dataRoot, 'engine-id');
  try {
    const id = readFileSync(path, 'utf8').trim();
    if (id !== '') return id;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  mkdirSync(dataRoot, { recursive: true });
  const id = randomUUID();
  try {
    writeFileSync(path, `${id}\n`, { flag: 'wx', mode: 0o644 });
    return id;
  } catch (err) {
    // Another process created it first; theirs wins.
    if (errnoCode(err) === 'EEXIST') return readFileSync(path, 'utf8').trim();
    throw err;
  }
}

function openFileCount(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

export interface VersionResponse {
  Platform: { Name: string };
  Components: { Name: string; Version: string; Details: Record<string, string> }[];
  Version: string;
  ApiVersion: string;
  MinAPIVersion: string;
  GitCommit: string;
  GoVersion: string;
  Os: string;
  Arch: string;
  KernelVersion: string;
  BuildTime: string;
}

/** Docker's SystemInfo, with the fields Berth fills. */
export interface InfoResponse {
  ID: string;
  Containers: number;
  ContainersRunning: number;
  ContainersPaused: number;
  ContainersStopped: number;
  Images: number;
  Driver: string;
  DriverStatus: [string, string][];
  DockerRootDir: string;
  Plugins: { Volume: string[]; Network: string[]; Authorization: string[] | null; Log: string[] };
  MemoryLimit: boolean;
  SwapLimit: boolean;
  KernelMemoryTCP: boolean;
  CpuCfsPeriod: boolean;
  CpuCfsQuota: boolean;
  CPUShares: boolean;
  CPUSet: boolean;
  PidsLimit: boolean;
  OomKillDisable: boolean;
  IPv4Forwarding: boolean;
  Debug: boolean;
  NFd: number;
  NGoroutines: number;
  SystemTime: string;
  LoggingDriver: string;
  CgroupDriver: string;
  CgroupVersion: string;
  NEventsListener: number;
  KernelVersion: string;
  OperatingSystem: string;
  OSVersion: string;
  OSType: string;
  Architecture: string;
  IndexServerAddress: string;
  RegistryConfig: {
    AllowNondistributableArtifactsCIDRs: null;
    AllowNondistributableArtifactsHostnames: null;
    InsecureRegistryCIDRs: string[];
    IndexConfigs: Record<string, { Name: string; Mirrors: string[]; Secure: boolean; Official: boolean }>;
    Mirrors: string[];
  };
  NCPU: number;
  MemTotal: number;
  GenericResources: null;
  HttpProxy: string;
  HttpsProxy: string;
  NoProxy: string;
  Name: string;
  Labels: string[];
  ExperimentalBuild: boolean;
  ServerVersion: string;
  Runtimes: Record<string, { path: string }>;
  DefaultRuntime: string;
  Swarm: { NodeID: string; NodeAddr: string; LocalNodeState: string; ControlAvailable: boolean; Error: string; RemoteManagers: null };
  LiveRestoreEnabled: boolean;
  Isolation: string;
  InitBinary: string;
  ContainerdCommit: { ID: string };
  RuncCommit: { ID: string };
  InitCommit: { ID: string };
  SecurityOptions: string[];
  CDISpecDirs: string[];
  Warnings: string[];
}

export interface DiskUsageResponse {
  LayersSize: number;
  Images: DfImage[] | null;
  Containers: DfContainer[] | null;
  Volumes: DfVolume[] | null;
  BuildCache: unknown[] | null;
}
