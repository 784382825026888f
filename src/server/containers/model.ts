import type { MountPoint } from '../mounts/model.js';

/**
 * The container record the control plane keeps in the Store (kind "container").
 *
 * Field contracts:
 * - id, created, imageId, logPath: immutable after create.
 * - name: unique per tenant, changed only by rename. Stored without Docker's leading "/".
 * - config, hostConfig: Docker's create-time configuration; changed only by `update`
 *   (resources and restart policy).
 * - state: written by the container service on every lifecycle transition and on exit;
 *   durable before the transition is acknowledged to the client.
 */
export interface ContainerRecord {
  id: string;
  name: string;
  created: string; // RFC 3339 nano
  /** What the user asked for (`busybox`, `busybox:latest`, an id). */
  image: string;
  /** "sha256:<hex>" of the resolved image. */
  imageId: string;
  path: string; // the executable, as Docker's inspect "Path"
  args: string[];
  config: ContainerConfig;
  hostConfig: HostConfig;
  state: ContainerState;
  restartCount: number;
  /** Set by `docker stop`/`kill` so restart policies (unless-stopped, always on daemon start) hold off. */
  manuallyStopped: boolean;
  logPath: string;
  hostnamePath: string;
  hostsPath: string;
  resolvConfPath: string;
  /** Volume, bind and tmpfs mounts planned at create (server/mounts); absent on records from before volumes. */
  mounts?: MountPoint[];
}

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ContainerState {
  Status: ContainerStatus;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string; // "0001-01-01T00:00:00Z" when never started, as Docker
  FinishedAt: string;
  Health?: { Status: string; FailingStreak: number; Log: unknown[] };
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Docker's container Config (the subset Berth honours; unknown fields are refused or ignored per docs/divergences.md). */
export interface ContainerConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  ExposedPorts?: Record<string, object>;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[];
  Cmd: string[] | null;
  Entrypoint: string[] | null;
  Image: string;
  Volumes?: Record<string, object> | null;
  WorkingDir: string;
  Labels: Record<string, string>;
  StopSignal?: string;
  StopTimeout?: number;
  Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number };
}

export interface RestartPolicy {
  Name: '' | 'no' | 'always' | 'unless-stopped' | 'on-failure';
  MaximumRetryCount: number;
}

/** Docker's HostConfig (the subset Berth honours). */
export interface HostConfig {
  Memory: number;
  MemorySwap: number;
  MemoryReservation: number;
  NanoCpus: number;
  CpuShares: number;
  CpuPeriod: number;
  CpuQuota: number;
  CpusetCpus: string;
  PidsLimit: number | null;
  BlkioWeight: number;
  Init: boolean | null;
  ReadonlyRootfs: boolean;
  Tmpfs: Record<string, string>;
  RestartPolicy: RestartPolicy;
  AutoRemove: boolean;
  CapAdd: string[] | null;
  GroupAdd: string[] | null;
  /** [height, width] of the client's terminal at create (docker run -t), for the console before the process runs. */
  ConsoleSize?: [number, number];
  CapDrop: string[] | null;
  NetworkMode: string;
  PortBindings: Record<string, { HostIp: string; HostPort: string }[] | null>;
  /** -P: publish every exposed port on an ephemeral host port. */
  PublishAllPorts?: boolean;
  Binds: string[] | null;
  /** --mount objects as the user sent them (inspect shows them back). */
  Mounts?: unknown[];
  VolumesFrom?: string[] | null;
  LogConfig: { Type: string; Config: Record<string, string> };
  Privileged: boolean;
  Sysctls?: Record<string, string>;
}
