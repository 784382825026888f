import type { Readable, Writable } from 'node:stream';
import type { PreparedMount } from '../mounts/oci-mounts.js';
import type { IdRange } from '../userns/id-range.js';

/**
 * The contract between the container service (server side) and the runtime of one host.
 *
 * Terms:
 * - container: an OCI bundle Berth wrote under the exec root, run by runc, watched by one
 *   monitor process (conmon) that holds its stdio, writes its log and records its exit. The
 *   monitor outlives Berth: containers keep running and logging while Berth restarts.
 * - log file: conmon's k8s-file format, one line per chunk: `<RFC3339Nano> <stdout|stderr> <P|F> <text>`.
 *
 * Lifecycle: create → start → (pause ↔ resume) → exited → delete. create leaves the process
 * stopped before exec; start lets it run. delete removes runc state, bundle and cgroup and is
 * safe to call in any state and twice.
 *
 * Invariants: a failed create leaves nothing behind (no runc state, monitor, cgroup or bundle).
 */
export interface ContainerRuntime {
  /** Returns the pid of the container's init (created, not yet running its program). */
  create(spec: ContainerSpecInput): Promise<{ pid: number }>;
  start(id: string): Promise<void>;
  /** Connects to the container's stdio; call between create and start to miss no output. */
  attach(id: string, options: { stdin: boolean }): Promise<StdioSession>;
  resize(id: string, size: TerminalSize): Promise<void>;
  kill(id: string, signal: string): Promise<void>;
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  update(id: string, resources: ResourceLimits): Promise<void>;
  state(id: string): Promise<RuntimeState>;
  /** Resolves when the container's main process has exited (now or already), from the monitor's exit record. */
  waitExit(id: string): Promise<ExitRecord>;
  delete(id: string): Promise<void>;
  exec(id: string, process: ExecProcessInput): Promise<ExecProcess>;
  stats(id: string): Promise<ResourceStats>;
  /** Processes of the container as `ps` prints them with the given options (default -ef). */
  top(id: string, psArgs?: string): Promise<{ Titles: string[]; Processes: string[][] }>;
  /** Ids of the containers runc knows about under Berth's runc root, for start-up reconcile. */
  list(): Promise<{ id: string; status: RuntimeStatus; pid: number }[]>;
}

export interface ContainerSpecInput {
  id: string;
  /** Mounted root filesystem (overlay) the process sees as / . */
  rootfs: string;
  readonlyRootfs: boolean;
  hostname: string;
  domainname?: string;
  process: {
    args: string[];
    env: string[]; // KEY=VALUE, already merged with the image's
    cwd: string; // absolute; created in the rootfs if missing
    /** Further supplementary groups (--group-add): names from the rootfs's /etc/group or numbers. */
    groupAdd?: string[];
    user: string; // as docker -u: "", "name", "uid", "uid:gid", "name:group"; resolved against the rootfs
    tty: boolean;
    /** Initial size of the TTY (with tty), set before the process runs. */
    consoleSize?: TerminalSize;
    openStdin: boolean;
    /**
     * Docker's StdinOnce: close the process's stdin when the first attached client ends its
     * input (`docker run -i` sets it). Without it stdin stays open across attaches. Default false.
     */
    stdinOnce?: boolean;
    /** Run a minimal init (tini) as PID 1 that reaps zombies and forwards signals (--init). */
    init: boolean;
  };
  capAdd: string[];
  capDrop: string[];
  /** tmpfs mounts from --tmpfs / HostConfig.Tmpfs: destination → options ("size=64m,mode=1777"). */
  tmpfs: Record<string, string>;
  /** Volume and bind mounts the user asked for, sources resolved (agent/mounts). */
  mounts?: PreparedMount[];
  /** Further bind mounts Berth itself manages (e.g. /etc/hosts, /etc/resolv.conf); a user mount at the same place wins. */
  binds: { source: string; destination: string; readonly: boolean }[];
  resources: ResourceLimits;
  /** Path of the log file the monitor writes. */
  logPath: string;
  sysctls?: Record<string, string>;
  /** Network namespace to join; undefined means a new private one with loopback only. */
  netnsPath?: string;
  /**
   * A tenant's ID range: the container gets a user namespace mapping 0.. to it (the operator's
   * containers have none). `usernsPath` joins one made beforehand (it owns `netnsPath`).
   */
  idRange?: IdRange;
  usernsPath?: string;
}

export interface ResourceLimits {
  memory?: number; // bytes; 0 or undefined = unlimited
  memorySwap?: number; // bytes, memory+swap; -1 unlimited
  memoryReservation?: number;
  cpuShares?: number;
  cpuQuota?: number; // microseconds per period
  cpuPeriod?: number; // microseconds
  cpusetCpus?: string;
  pidsLimit?: number; // <= 0 unlimited
  blkioWeight?: number;
}

export type RuntimeStatus = 'created' | 'running' | 'paused' | 'stopped';

export interface RuntimeState {
  status: RuntimeStatus;
  pid: number; // 0 when not running
}

export interface ExitRecord {
  exitCode: number;
  oomKilled: boolean;
  finishedAt: string; // RFC 3339 with nanoseconds
}

export interface TerminalSize {
  height: number;
  width: number;
}

/** A connection to a process's stdio. With a TTY, everything arrives as stdout. */
export interface StdioSession {
  output: Readable; // object mode: { stream: 'stdout' | 'stderr'; data: Buffer }
  stdin?: Writable; // present when stdin was asked for and the process has it open
  close(): void;
}

export interface StdioChunk {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

export interface ExecProcessInput {
  args: string[];
  env: string[];
  cwd?: string;
  user?: string;
  tty: boolean;
  stdin: boolean;
  privileged?: boolean;
  /** Initial terminal size of a TTY exec, set before the process starts (Docker's ConsoleSize). */
  consoleSize?: TerminalSize;
}

export interface ExecProcess {
  pid: number;
  stdio: StdioSession;
  resize(size: TerminalSize): Promise<void>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number>;
}

export interface ResourceStats {
  read: string; // RFC 3339 time of the sample
  cpu: { totalUsageNs: number; perCpuUsageNs: number[]; userNs: number; systemNs: number; systemUsageNs: number; onlineCpus: number };
  memory: { usage: number; limit: number; maxUsage?: number; stats: Record<string, number> };
  pids: { current: number; limit?: number };
  blkio: { op: string; major: number; minor: number; value: number }[];
}
