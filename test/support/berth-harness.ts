/**
 * Starts a real Berth (`berth up`) for an integration test, on private temp roots and a private
 * unix socket, and cleans up after it.
 *
 * Lifecycle: startBerth() → (kill() | restart())* → stop(). stop() is idempotent and cleans up
 * even after kill(), a crash, or a failed test: call it from `after()`. The data and exec roots
 * survive kill() and restart(), so a test can crash Berth and start it again on the same state.
 *
 * If the test process gets SIGTERM, SIGINT or SIGHUP (node's runner cancelling a timed-out
 * file), every live instance is stopped before the process exits.
 *
 * What stop() removes, and only that (see cleanup.ts for the safety rule): containers runc
 * knows under `<execRoot>/runc`, processes whose command line names the harness's temp dir
 * (conmon monitors), cgroups `/sys/fs/cgroup/<hierarchy>/berth/<id>` of container ids found
 * under the roots, every mount under the temp dir (deepest first), and the temp dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  containerIdsUnder,
  killPids,
  pidsWithCmdlineContaining,
  removeContainerCgroups,
  removeNetworkOf,
  removeRuncContainers,
  removeTree,
  settlesWithin,
  sleep,
  stopOnSignal,
} from './cleanup.js';
import { dockerEnv } from './docker-cli.js';
import { OutputTail } from './output-tail.js';

/** The repository root, from this file's place in dist/test/support/. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BERTH_ENTRY = join(REPO_ROOT, 'dist/src/cli/berth.js');
/** Keep at most this much of Berth's output in memory (the tail is what explains a failure). */
const MAX_LOG_CHARS = 4 * 1024 * 1024;

export interface BerthOptions {
  /** Further arguments to `berth up`. */
  extraArgs?: string[];
  /** Extra environment for the Berth process (e.g. BERTH_LOG_LEVEL). */
  env?: Record<string, string>;
  /** How long to wait for /_ping to answer (default 30 s). */
  readyTimeoutMs?: number;
}

export interface BerthInstance {
  /** Path of the unix socket Berth serves the Docker API on. */
  readonly socket: string;
  /** `unix://<socket>`, for DOCKER_HOST or dockerode. */
  readonly dockerHost: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  /** The temp dir holding roots, socket and the docker CLI's config. */
  readonly baseDir: string;
  /** Pid of the current Berth process (changes on restart; 0 when none is running). */
  readonly pid: number;
  /** Environment for the docker CLI: DOCKER_HOST and a private DOCKER_CONFIG. */
  readonly env: NodeJS.ProcessEnv;
  /** Stops Berth (SIGTERM, then SIGKILL) and removes everything it left. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILLs Berth and waits for it to die; leaves containers, mounts and roots in place. */
  kill(): Promise<void>;
  /** Stops Berth if it runs (SIGTERM), then starts it again on the same roots and waits for /_ping. */
  restart(): Promise<void>;
  /** Everything Berth wrote to stdout and stderr so far, across restarts. */
  logs(): string;
}

/** Children still alive, SIGKILLed if the test process exits without stopping them. */
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

export async function startBerth(options: BerthOptions = {}): Promise<BerthInstance> {
  // Short paths: unix socket paths must stay under 108 bytes, also for the monitors' sockets.
  const baseDir = await mkdtemp(join(tmpdir(), 'berth-'));
  const dataRoot = join(baseDir, 'data');
  const execRoot = join(baseDir, 'exec');
  const configDir = join(baseDir, 'docker-config');
  const socket = join(baseDir, 'berth.sock');
  await Promise.all([mkdir(dataRoot), mkdir(execRoot), mkdir(configDir)]);
  // Root of a tenant's container is an unprivileged host uid (user namespaces): runc must pass
  // through here to the data root, as through /var/lib on a real host.
  await chmod(baseDir, 0o711);

  let child: ChildProcess | undefined;
  const log = new OutputTail(MAX_LOG_CHARS);
  let stopped = false;

  const spawnBerth = async (): Promise<void> => {
    const args = [BERTH_ENTRY, 'up', '--data-root', dataRoot, '--exec-root', execRoot, '-H', `unix://${socket}`];
    args.push(...(options.extraArgs ?? []));
    const proc = spawn(process.execPath, args, {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    liveChildren.add(proc);
    log.follow(proc);
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.once('exit', (code, signal) => {
      liveChildren.delete(proc);
      log.append(`\n[berth-harness: berth pid ${proc.pid} exited code=${code} signal=${signal}]\n`);
    });
    try {
      await waitForPing(socket, proc, exited, options.readyTimeoutMs ?? 30_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- berth output ---\n${log.text(8000)}`);
    }
  };

  const terminate = async (signal: NodeJS.Signals, graceMs: number): Promise<void> => {
    const proc = child;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    const inTime = await settlesWithin(exited, graceMs);
    if (!inTime) {
      proc.kill('SIGKILL');
      await exited;
    }
  };

  const instance: BerthInstance = {
    socket,
    dockerHost: `unix://${socket}`,
    dataRoot,
    execRoot,
    baseDir,
    get pid(): number {
      return child !== undefined && child.exitCode === null && child.signalCode === null ? (child.pid ?? 0) : 0;
    },
    env: dockerEnv(`unix://${socket}`, configDir),
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      unregister();
      await terminate('SIGTERM', 10_000);
      await cleanupBerthRoots(baseDir, dataRoot, execRoot);
    },
    async kill(): Promise<void> {
      await terminate('SIGKILL', 10_000);
    },
    async restart(): Promise<void> {
      await terminate('SIGTERM', 10_000);
      await spawnBerth();
    },
    logs: () => log.text(),
  };

  const unregister = stopOnSignal(() => instance.stop());
  try {
    await spawnBerth();
  } catch (err) {
    await instance.stop();
    throw err;
  }
  return instance;
}

/**
 * Removes what a Berth on these roots left on the host, whether it stopped cleanly or not.
 * Exported for tools (bench) that start Berth their own way.
 */
export async function cleanupBerthRoots(baseDir: string, dataRoot: string, execRoot: string): Promise<void> {
  const runcIds = await removeRuncContainers(join(execRoot, 'runc'));
  // Monitors (conmon) and anything else started for these roots names them on its command line.
  await killPids(await pidsWithCmdlineContaining([`${baseDir}/`]));
  const ids = await containerIdsUnder([dataRoot, execRoot]);
  for (const id of runcIds) ids.add(id);
  await removeContainerCgroups('berth', ids);
  // Namespace files are mounts under the exec root (removeTree unmounts them); bridges, host veth
  // ends and the nftables table are named after the instance id in the data root.
  await removeNetworkOf(dataRoot);
  await removeTree(baseDir);
}

/** Polls GET /_ping on the socket until it answers 200, the process exits, or the time runs out. */
async function waitForPing(socket: string, proc: ChildProcess, exited: Promise<void>, timeoutMs: number): Promise<void> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`berth exited before answering /_ping (code ${proc.exitCode}, signal ${proc.signalCode})`);
    if ((await ping(socket)) === 200) return;
    await sleep(50);
  }
  throw new Error(`berth did not answer /_ping on ${socket} within ${timeoutMs} ms`);
}

/** The status of GET /_ping on a unix socket, or 0 when nothing answers. */
export function ping(socket: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}
