/**
 * Starts the real dockerd (Debian's docker.io, 20.10) as the comparison peer for differential
 * tests and benchmarks, isolated from the host's Docker: its own data root, exec root, pidfile,
 * unix socket, empty config file and cgroup parent, and no host network changes (no bridge, no
 * iptables, no masquerading). dockerd starts its own containerd under the exec root.
 *
 * Lifecycle: startDockerd() → stop(). stop() is idempotent: it SIGTERMs that dockerd (which
 * stops its containers and its containerd), SIGKILLs what is left of processes naming the temp
 * dir, removes the cgroup parent, unmounts everything under the temp dir and removes it. It
 * also runs when the test process gets SIGTERM, SIGINT or SIGHUP.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killPids, pidsWithCmdlineContaining, removeCgroupParent, removeTree, settlesWithin, sleep, stopOnSignal } from './cleanup.js';
import { ping } from './berth-harness.js';
import { dockerEnv } from './docker-cli.js';
import { OutputTail } from './output-tail.js';

const execFileAsync = promisify(execFile);

export const DOCKERD = '/usr/sbin/dockerd';
const MAX_LOG_CHARS = 4 * 1024 * 1024;

export interface DockerdInstance {
  readonly socket: string;
  readonly dockerHost: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly baseDir: string;
  readonly pid: number;
  /** With ownNetwork: the network namespace dockerd and its containers' ports live in. */
  readonly netns?: string;
  /** Environment for the docker CLI: DOCKER_HOST and a private DOCKER_CONFIG. */
  readonly env: NodeJS.ProcessEnv;
  /** Milliseconds from spawn until /_ping answered. */
  readonly startupMs: number;
  stop(): Promise<void>;
  logs(): string;
}

const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

/** True when the system containerd socket exists: dockerd would then use it instead of its own. */
async function systemContainerdPresent(): Promise<boolean> {
  return stat('/run/containerd/containerd.sock').then(
    (s) => s.isSocket(),
    () => false,
  );
}

export interface StartDockerdOptions {
  readyTimeoutMs?: number;
  /**
   * Gives dockerd its default networking (the docker0 bridge, iptables NAT, the userland
   * proxy for loopback ports) inside a network namespace made for it (`netns` on the
   * instance; stop() removes it), so it still changes nothing on the host. Without it dockerd
   * gets no networking at all. Only the network namespace is entered (nsenter, not
   * `ip netns exec`), so dockerd's mounts stay visible to stop()'s cleanup.
   */
  ownNetwork?: boolean;
}

/** dockerd's flags that keep its hands off the host's network. */
const NO_NETWORKING = ['--bridge=none', '--iptables=false', '--ip-masq=false', '--userland-proxy=false'];

export async function startDockerd(options: StartDockerdOptions = {}): Promise<DockerdInstance> {
  if (await systemContainerdPresent()) {
    // Containers would then land in the host's containerd, outside our roots.
    throw new Error('a system containerd is running (/run/containerd/containerd.sock); stop it before starting the test dockerd');
  }
  const baseDir = await mkdtemp(join(tmpdir(), 'dockerd-'));
  const dataRoot = join(baseDir, 'data');
  const execRoot = join(baseDir, 'exec');
  const configDir = join(baseDir, 'docker-config');
  const socket = join(baseDir, 'docker.sock');
  const configFile = join(baseDir, 'daemon.json');
  // Each instance gets its own cgroup parent so stop() can remove the whole subtree safely.
  const cgroupParent = `berth-test-${baseDir.slice(baseDir.lastIndexOf('-') + 1)}`;
  await Promise.all([mkdir(dataRoot), mkdir(execRoot), mkdir(configDir)]);
  const netns = options.ownNetwork ? `berth-dockerd-${baseDir.slice(baseDir.lastIndexOf('-') + 1)}` : undefined;
  if (netns !== undefined) {
    await execFileAsync('ip', ['netns', 'add', netns]);
    await execFileAsync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  }
  // An empty config file keeps /etc/docker/daemon.json (if any) out of the comparison.
  await writeFile(configFile, '{}\n');

  const args = [
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '--pidfile', join(baseDir, 'docker.pid'),
    '--config-file', configFile,
    '-H', `unix://${socket}`,
    '--storage-driver', 'overlay2',
    ...(netns === undefined ? NO_NETWORKING : []),
    '--ip6tables=false',
    '--cgroup-parent', `/${cgroupParent}`,
    '--exec-opt', 'native.cgroupdriver=cgroupfs',
    '--log-level', 'warn',
    // Containers that ignore SIGTERM would otherwise hold up stop() for 10 s each.
    '--shutdown-timeout', '1',
  ];
  const began = Date.now();
  const [command, argv] =
    netns === undefined ? [DOCKERD, args] : ['nsenter', [`--net=/run/netns/${netns}`, '--', DOCKERD, ...args]];
  const proc = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  liveChildren.add(proc);
  const log = new OutputTail(MAX_LOG_CHARS);
  log.follow(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  void exited.then(() => liveChildren.delete(proc));

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    unregister();
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const inTime = await settlesWithin(exited, 20_000);
      if (!inTime) {
        proc.kill('SIGKILL');
        await exited;
      }
    }
    // containerd, its shims and anything else started for this instance name the temp dir.
    await killPids(await pidsWithCmdlineContaining([`${baseDir}/`]));
    await removeCgroupParent(cgroupParent);
    await removeTree(baseDir);
    if (netns !== undefined) await execFileAsync('ip', ['netns', 'delete', netns]).catch(() => undefined);
  };

  const unregister = stopOnSignal(stop);

  const deadline = began + (options.readyTimeoutMs ?? 60_000);
  let ready = false;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) break;
    if ((await ping(socket)) === 200) {
      ready = true;
      break;
    }
    await sleep(50);
  }
  if (!ready) {
    await stop();
    throw new Error(`dockerd did not become ready on ${socket}\n--- dockerd output ---\n${log.text(8000)}`);
  }
  const startupMs = Date.now() - began;

  return {
    socket,
    dockerHost: `unix://${socket}`,
    dataRoot,
    execRoot,
    baseDir,
    get pid(): number {
      return proc.exitCode === null && proc.signalCode === null ? (proc.pid ?? 0) : 0;
    },
    ...(netns !== undefined ? { netns } : {}),
    env: dockerEnv(`unix://${socket}`, configDir),
    startupMs,
    stop,
    logs: () => log.text(),
  };
}
