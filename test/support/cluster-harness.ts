/**
 * A multi-host Berth on one machine, for tests: a lab bridge in the root network namespace,
 * a control plane listening for agents on the bridge's address, and agents that each live in
 * a network namespace of their own (a veth into the bridge, a default route via it) with their
 * own data and exec roots — separate hosts as far as Berth can tell.
 *
 * Lifecycle: startCluster() → startAgent()* → (agent.kill | stop | restart | deleteNamespace)*
 * → stop(). stop() is idempotent, runs on SIGTERM/SIGINT of the test process too, and removes
 * everything: agents (by pid), containers they left (runc state, monitors by pid, cgroups,
 * mounts under their roots), namespaces, veths, the bridge, temp dirs.
 *
 * Host-global names are random per cluster (bridge `bl-<hex>`, namespaces `berth-h-<hex>`,
 * veths `bv<hex>`), and the lab's /24 is taken from 100.64.0.0/10 where the host has no route,
 * so clusters of concurrent tests never meet.
 *
 * The control plane is either `berth server` (a real process, the default once it exists) or
 * an in-process hub (cluster-control-plane.ts) for tests of the transport alone.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BERTH_ENTRY, REPO_ROOT, cleanupBerthRoots, ping } from './berth-harness.js';
import { pollFor, removeTree, settlesWithin, sleep, stopOnSignal } from './cleanup.js';
import { OutputTail } from './output-tail.js';
import type { DockerResult } from './docker-cli.js';
import { freePort } from './tenants.js';
import { berthCliFor } from './berth-cli.js';
import { startInProcessControlPlane, type InProcessControlPlane } from './cluster-control-plane.js';
import { AdminClient } from '../../src/cli/admin-client.js';
import type { HostView } from '../../src/server/admin-api/hosts.js';
import type { RunningAgentHub } from '../../src/server/cluster/hub/start-agent-hub.js';
import type { ClusterHost } from '../../src/server/cluster/agent-hub.js';

const execFileAsync = promisify(execFile);
const MAX_LOG_CHARS = 2 * 1024 * 1024;

export interface ClusterOptions {
  /** `berth server --host-down-timeout` (default 2000 ms in tests). */
  downTimeoutMs?: number;
  /** Default: 'berth-server' when dist/src/cli/server.js exists, else 'in-process'. */
  controlPlane?: 'berth-server' | 'in-process';
  /** In-process only: what drain does with a host's containers. */
  onDrain?: (host: ClusterHost) => Promise<void>;
  /** berth-server mode: how many servers (default 1); more than one needs an etcd `store`. */
  servers?: number;
  /** berth-server mode: `berth server --store` (default: SQLite under the server's data root). */
  store?: string;
}

/** One `berth server` process of the control plane (berth-server mode). */
export interface ClusterServer {
  readonly index: number;
  readonly socket: string;
  readonly tenantPort: number;
  /** HOST:PORT its agent listener is on. */
  readonly agentAddress: string;
  readonly pid: number;
  logs(): string;
  /** SIGKILL (or `signal`) and wait. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same data root and addresses. */
  start(): Promise<void>;
  alive(): boolean;
}

export interface AgentOptions {
  name?: string;
  labels?: Record<string, string>;
  /** Default: a fresh token from `berth host join-token`. */
  joinToken?: string;
  extraArgs?: string[];
  /** Wait until `host ls` shows it up (default true). */
  waitUp?: boolean;
  heartbeatMs?: number;
}

export interface ClusterAgent {
  readonly name: string;
  readonly netns: string;
  /** Its address on the lab bridge. */
  readonly address: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  /** Pid of the running agent process (0 when none). */
  readonly pid: number;
  /** Resolves with the exit of the current process. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  logs(): string;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** SIGKILL (or `signal`) and wait; containers, mounts and the namespace stay. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the agent again on the same roots and namespace (stopping it first if it runs). */
  restart(options?: { waitUp?: boolean }): Promise<void>;
  /** Deletes the agent's network namespace (the host "loses its network"); kill it first. */
  deleteNamespace(): Promise<void>;
  /** A command inside the agent's network namespace. */
  inNamespace(command: string[]): Promise<DockerResult>;
}

export interface Cluster {
  readonly baseDir: string;
  readonly bridge: string;
  /** The bridge's address: where the control plane listens for agents. */
  readonly gateway: string;
  readonly subnet: string;
  /** The control plane's local socket (operator: berth CLI, admin API, docker CLI as operator); the first live server's. */
  readonly socket: string;
  /** berth-server mode: every server of the control plane. */
  readonly servers: ClusterServer[];
  /** HOST:PORT agents dial. */
  readonly agentAddress: string;
  /** berth-server mode: the tenants' TLS port on 127.0.0.1. */
  readonly tenantPort: number;
  /** in-process mode: the hub itself. */
  readonly hub: RunningAgentHub | undefined;
  readonly agents: ClusterAgent[];
  /** The berth CLI against the control plane's socket; never throws. */
  berthCli(args: string[]): Promise<DockerResult>;
  berthOk(args: string[]): Promise<string>;
  joinToken(): Promise<string>;
  startAgent(options?: AgentOptions): Promise<ClusterAgent>;
  hosts(): Promise<HostView[]>;
  /** Polls `host ls` until `name` is in `state`. */
  waitHost(name: string, state: 'up' | 'down', timeoutMs?: number): Promise<HostView>;
  /** berth-server mode: `berth tenant create` and the docker CLI environment for it. */
  createTenantClient(name: string, createArgs?: string[]): Promise<NodeJS.ProcessEnv>;
  /** Server output (berth-server mode). */
  serverLogs(): string;
  /** Stops the control plane (SIGKILL for berth server) and starts it again on the same state and address. */
  restartControlPlane(): Promise<void>;
  stop(): Promise<void>;
}

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

async function run(command: string, args: string[]): Promise<DockerResult> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args, { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function mustRun(command: string, args: string[]): Promise<string> {
  const result = await run(command, args);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr.trim()}`);
  return result.stdout;
}

/** A /24 in 100.64.0.0/10 that no route of the host covers or falls inside. */
async function freeLabSubnet(): Promise<{ base: string; gateway: string }> {
  const routes = JSON.parse(await mustRun('ip', ['-j', '-4', 'route', 'show', 'table', 'all'])) as { dst: string }[];
  const taken = routes.map((r) => r.dst).filter((d) => /^\d/.test(d));
  for (let attempt = 0; attempt < 200; attempt++) {
    const second = 64 + Math.floor(Math.random() * 64);
    const third = Math.floor(Math.random() * 256);
    const base = `100.${second}.${third}.0`;
    if (!taken.some((dst) => overlaps(dst, `${base}/24`))) return { base, gateway: `100.${second}.${third}.1` };
  }
  throw new Error('no free /24 in 100.64.0.0/10');
}

function overlaps(a: string, b: string): boolean {
  const parse = (cidr: string): [number, number] => {
    const [ip, len = '32'] = cidr.split('/');
    const n = ip!.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
    const bits = Number(len);
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return [(n & mask) >>> 0, mask];
  };
  const [na, ma] = parse(a);
  const [nb, mb] = parse(b);
  const common = (ma & mb) >>> 0;
  return ((na & common) >>> 0) === ((nb & common) >>> 0);
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const mode = options.controlPlane ?? (existsSync(join(REPO_ROOT, 'dist/src/cli/server.js')) ? 'berth-server' : 'in-process');
  const downTimeoutMs = options.downTimeoutMs ?? 2000;
  const id = hex(3);
  const baseDir = await mkdtemp(join(tmpdir(), 'berth-cl-'));
  await chmod(baseDir, 0o711);
  const bridge = `bl-${id}`;
  const { base, gateway } = await freeLabSubnet();
  const agents: (ClusterAgent & { cleanup(): Promise<void> })[] = [];
  let nextHost = 2;
  let stopped = false;
  let inProcess: InProcessControlPlane | undefined;
  const serverDir = join(baseDir, 'server');
  let inProcessSocket = join(serverDir, 'berth.sock');
  let inProcessAgentAddress = '';
  const servers: (ClusterServer & { stop(): Promise<void> })[] = [];
  const liveServer = (): ClusterServer | undefined => servers.find((s) => s.alive()) ?? servers[0];
  const currentSocket = (): string => liveServer()?.socket ?? inProcessSocket;
  const agentAddresses = (): string => (servers.length > 0 ? servers.map((s) => s.agentAddress).join(',') : inProcessAgentAddress);

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    unregister();
    for (const agent of agents) await agent.cleanup().catch((err: unknown) => console.error('cluster cleanup:', err));
    for (const server of servers) await server.stop();
    await inProcess?.stop().catch(() => undefined);
    await run('ip', ['link', 'del', bridge]);
    await removeTree(baseDir);
  };
  const unregister = stopOnSignal(stop);

  const { berthCli, berthOk } = berthCliFor(() => `unix://${currentSocket()}`, baseDir);
  const hosts = async (): Promise<HostView[]> => new AdminClient(`unix://${currentSocket()}`).call<HostView[]>('GET', '/berth/v1/hosts');
  const waitHost = (name: string, state: 'up' | 'down', timeoutMs = 30_000): Promise<HostView> =>
    pollFor(`host ${name} ${state}`, async () => (await hosts()).find((h) => h.Name === name && h.State === state), timeoutMs);

  try {
    await mustRun('ip', ['link', 'add', bridge, 'type', 'bridge']);
    await mustRun('ip', ['addr', 'add', `${gateway}/24`, 'dev', bridge]);
    await mustRun('ip', ['link', 'set', bridge, 'up']);
    if (mode === 'in-process') {
      await startInProcess(0);
    } else {
      for (let index = 0; index < (options.servers ?? 1); index++) servers.push(await makeServer(index));
      for (const server of servers) await server.start();
    }
  } catch (err) {
    await stop();
    throw err;
  }

  async function startInProcess(port: number): Promise<void> {
    inProcess = await startInProcessControlPlane({
      dataRoot: serverDir,
      agentListenHost: gateway,
      agentListenPort: port,
      downTimeoutMs,
      ...(options.onDrain ? { onDrain: options.onDrain } : {}),
    });
    inProcessSocket = inProcess.socket;
    inProcessAgentAddress = inProcess.agentAddress;
  }

  /** Server `index`: its own data root (the first keeps the historical `server/data`), socket and ports. */
  async function makeServer(index: number): Promise<ClusterServer & { stop(): Promise<void> }> {
    const dir = index === 0 ? serverDir : join(baseDir, `server${index}`);
    await mkdir(join(dir, 'data'), { recursive: true });
    const socket = join(dir, 'berth.sock');
    const tenantPort = await freePort();
    const agentAddress = `${gateway}:${await freePort()}`;
    let child: ChildProcess | undefined;
    const log = new OutputTail(MAX_LOG_CHARS);
    const alive = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
    const terminate = async (signal: NodeJS.Signals): Promise<void> => {
      if (!alive()) return;
      const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
      child!.kill(signal);
      if (!(await settlesWithin(exited, 10_000))) {
        child!.kill('SIGKILL');
        await exited;
      }
    };
    const start = async (): Promise<void> => {
      const args = [
        BERTH_ENTRY, 'server', '--data-root', join(dir, 'data'),
        '-H', `unix://${socket}`, '-H', `tcp://127.0.0.1:${tenantPort}`,
        '--agent-listen', `tcp://${agentAddress}`, '--host-down-timeout', String(downTimeoutMs),
        ...(options.store ? ['--store', options.store] : []),
      ];
      const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      log.follow(proc);
      await pollFor(`berth server ${index} to answer /_ping`, async () => {
        if (proc.exitCode !== null) throw new Error(`berth server ${index} exited (${proc.exitCode}):\n${log.text(4000)}`);
        return (await ping(socket)) === 200 ? true : undefined;
      });
    };
    return {
      index,
      socket,
      tenantPort,
      agentAddress,
      get pid(): number {
        return alive() ? (child!.pid ?? 0) : 0;
      },
      logs: () => log.text(),
      kill: (signal: NodeJS.Signals = 'SIGKILL') => terminate(signal),
      start,
      alive,
      stop: () => terminate('SIGTERM'),
    };
  }

  const restartControlPlane = async (): Promise<void> => {
    if (inProcess) {
      const port = inProcess.hub.address.port;
      await inProcess.stop();
      await startInProcess(port);
      return;
    }
    for (const server of servers) {
      await server.kill('SIGKILL');
      await server.start();
    }
  };

  const startAgent = async (agentOptions: AgentOptions = {}): Promise<ClusterAgent> => {
    const hostNumber = nextHost++;
    const name = agentOptions.name ?? `host-${hostNumber}`;
    const netns = `berth-h-${hex(4)}`;
    const veth = `bv${hex(4)}`;
    const address = `${base.replace(/\.0$/, '')}.${hostNumber}`;
    const agentBase = join(baseDir, `a${hostNumber}`);
    const dataRoot = join(agentBase, 'data');
    const execRoot = join(agentBase, 'exec');
    await mkdir(dataRoot, { recursive: true });
    await mkdir(execRoot, { recursive: true });
    await chmod(agentBase, 0o711);
    const token = agentOptions.joinToken ?? (await joinToken());
    let child: ChildProcess | undefined;
    let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve({ code: null, signal: null });
    const log = new OutputTail(MAX_LOG_CHARS);
    let namespaceExists = false;

    const nsFile = `/run/netns/${netns}`;
    const spawnAgent = (): void => {
      const args = [
        `--net=${nsFile}`, process.execPath, BERTH_ENTRY, 'agent',
        '--server', agentAddresses(), '--join-token', token, '--name', name,
        '--data-root', dataRoot, '--exec-root', execRoot,
        '--heartbeat-interval', String(agentOptions.heartbeatMs ?? 250),
        // Hosts of one machine must not hand tenants the same host uids (real hosts may).
        '--userns-base', String(2 ** 24 + hostNumber * 2 ** 24),
        ...Object.entries(agentOptions.labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
        ...(agentOptions.extraArgs ?? []),
      ];
      // nsenter switches only the network namespace (ip netns exec would also remount /sys,
      // hiding the cgroup hierarchies runc needs) and execs: its pid is the agent's.
      const proc = spawn('nsenter', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      log.follow(proc);
      exited = new Promise((resolve) =>
        proc.once('exit', (code, signal) => {
          log.append(`\n[cluster-harness: agent ${name} pid ${proc.pid} exited code=${code} signal=${signal}]\n`);
          resolve({ code, signal });
        }),
      );
    };
    const alive = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
    const terminate = async (signal: NodeJS.Signals): Promise<void> => {
      if (!alive()) return;
      child!.kill(signal);
      if (!(await settlesWithin(exited, 10_000))) {
        child!.kill('SIGKILL');
        await exited;
      }
    };
    /** Up with a heartbeat after `since`: one that came through this process's connection. */
    const waitUp = async (since = 0): Promise<void> => {
      await pollFor(`agent ${name} up`, async () => {
        if (!alive()) throw new Error(`agent ${name} exited:\n${log.text(4000)}`);
        return (await hosts()).find((h) => h.Name === name && h.State === 'up' && h.LastSeen !== null && Date.parse(h.LastSeen) > since);
      });
    };

    const agent = {
      name,
      netns,
      address,
      dataRoot,
      execRoot,
      get pid(): number {
        return alive() ? (child!.pid ?? 0) : 0;
      },
      exited: () => exited,
      logs: () => log.text(),
      stop: () => terminate('SIGTERM'),
      kill: (signal: NodeJS.Signals = 'SIGKILL') => terminate(signal),
      restart: async (restartOptions: { waitUp?: boolean } = {}) => {
        await terminate('SIGTERM');
        const since = Date.now();
        spawnAgent();
        if (restartOptions.waitUp ?? true) await waitUp(since);
      },
      deleteNamespace: async () => {
        if (!namespaceExists) return;
        namespaceExists = false;
        await mustRun('ip', ['netns', 'del', netns]);
      },
      inNamespace: (command: string[]) => run('nsenter', [`--net=${nsFile}`, ...command]),
      cleanup: async () => {
        await terminate('SIGKILL');
        // Containers, their monitors, cgroups and mounts, found from the agent's roots.
        await cleanupBerthRoots(agentBase, dataRoot, execRoot);
        if (namespaceExists) await run('ip', ['netns', 'del', netns]);
        await run('ip', ['link', 'del', veth]);
      },
    };
    agents.push(agent);

    await mustRun('ip', ['netns', 'add', netns]);
    namespaceExists = true;
    await mustRun('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}p`]);
    await mustRun('ip', ['link', 'set', `${veth}p`, 'netns', netns]);
    await mustRun('ip', ['link', 'set', veth, 'master', bridge, 'up']);
    const inNs = (args: string[]): Promise<string> => mustRun('ip', ['-n', netns, ...args]);
    await inNs(['link', 'set', 'lo', 'up']);
    await inNs(['link', 'set', `${veth}p`, 'name', 'eth0']);
    await inNs(['addr', 'add', `${address}/24`, 'dev', 'eth0']);
    await inNs(['link', 'set', 'eth0', 'up']);
    await inNs(['route', 'add', 'default', 'via', gateway]);
    spawnAgent();
    if (agentOptions.waitUp ?? true) await waitUp();
    return agent;
  };

  const joinToken = async (): Promise<string> => (await berthOk(['host', 'join-token', '--quiet'])).trim();

  const createTenantClient = async (name: string, createArgs: string[] = []): Promise<NodeJS.ProcessEnv> => {
    if (mode !== 'berth-server') throw new Error('tenants need the berth-server control plane');
    const certDir = join(baseDir, `${name}-certs`);
    await berthOk(['tenant', 'create', name, '--cert-dir', certDir, ...createArgs]);
    const configDir = await mkdtemp(join(baseDir, 'docker-config-'));
    await writeFile(join(configDir, 'config.json'), '{}');
    await readFile(join(certDir, 'ca.pem'));
    return {
      PATH: process.env.PATH,
      HOME: baseDir,
      DOCKER_HOST: `tcp://127.0.0.1:${liveServer()!.tenantPort}`,
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certDir,
      DOCKER_CONFIG: configDir,
    };
  };

  return {
    baseDir,
    bridge,
    gateway,
    subnet: `${base}/24`,
    get socket() {
      return currentSocket();
    },
    servers,
    get agentAddress() {
      return agentAddresses();
    },
    get tenantPort() {
      return liveServer()?.tenantPort ?? 0;
    },
    get hub() {
      return inProcess?.hub;
    },
    agents,
    berthCli,
    berthOk,
    joinToken,
    startAgent,
    hosts,
    waitHost,
    createTenantClient,
    serverLogs: () => servers.map((s) => (servers.length > 1 ? `--- server ${s.index} ---\n` : '') + s.logs()).join('\n'),
    restartControlPlane,
    stop,
  };
}

export { sleep };
