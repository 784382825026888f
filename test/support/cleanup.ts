/**
 * Host cleanup for test harnesses: everything a container engine under test may leave behind
 * when it was stopped, crashed or SIGKILLed — runc containers, monitor processes, mounts,
 * cgroups and temp dirs.
 *
 * Safety invariant: nothing here touches a resource it cannot prove belongs to the caller's
 * roots. Processes are killed by pid only when their command line names one of the roots (or
 * they sit in a cgroup of a container whose id was found under those roots); mounts are
 * unmounted only below the roots; cgroups are removed only when named by such an id or below a
 * cgroup parent the caller owns outright.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const CGROUP_ROOT = '/sys/fs/cgroup';
const CONTAINER_ID = /^[0-9a-f]{64}$/;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` every 250 ms until it gives a value, and returns it; throws naming `what`
 * once `timeoutMs` has passed.
 */
export async function pollFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/**
 * Resolves true when `done` settles within `ms`, false otherwise. The timer is cleared either
 * way, so a finished race never keeps the test process alive.
 */
export async function settlesWithin(done: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([done.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Mount points at or below `root`, deepest first, from this process's mount namespace. */
export async function mountsUnder(root: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const prefix = root.endsWith('/') ? root : `${root}/`;
  const points = new Set<string>();
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    // mountinfo escapes space, tab, newline and backslash as octal.
    const point = field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (point === root || point.startsWith(prefix)) points.add(point);
  }
  return [...points].sort((a, b) => b.split('/').length - a.split('/').length || b.length - a.length);
}

/** Unmounts everything at or below `root`, deepest first; a busy mount is detached lazily. */
export async function unmountAllUnder(root: string): Promise<void> {
  // Stacked mounts on one point need one umount each: repeat until nothing is left.
  for (let round = 0; round < 5; round++) {
    const points = await mountsUnder(root);
    if (points.length === 0) return;
    for (const point of points) {
      try {
        await execFileAsync('umount', [point]);
      } catch {
        await execFileAsync('umount', ['-l', point]).catch(() => undefined);
      }
    }
  }
}

/** The pids of live processes whose command line contains one of `needles`, except ourselves. */
export async function pidsWithCmdlineContaining(needles: string[]): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const joined = cmdline.replace(/\0/g, ' ');
    if (needles.some((needle) => joined.includes(needle))) pids.push(pid);
  }
  return pids;
}

/** True while `pid` names a process that is not a zombie. */
export async function isAlive(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (status === undefined) return false;
  // The state letter follows the parenthesised command name, which may itself hold spaces.
  const state = status.slice(status.lastIndexOf(')') + 2, status.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** Sends `signal` to each pid (ignoring ones already gone) and waits up to `timeoutMs` for them to die. */
export async function killPids(pids: number[], signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 5000): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (const pid of pids) {
    while ((await isAlive(pid)) && Date.now() < deadline) await sleep(20);
  }
}

/**
 * Kills and deletes every container runc knows under `runcRoot`. Returns their ids so their
 * cgroups can be removed too.
 */
export async function removeRuncContainers(runcRoot: string): Promise<string[]> {
  const exists = await stat(runcRoot).then(
    () => true,
    () => false,
  );
  if (!exists) return [];
  let listed: { id: string; pid: number }[] = [];
  try {
    const { stdout } = await execFileAsync('runc', ['--root', runcRoot, 'list', '--format', 'json']);
    const parsed: unknown = JSON.parse(stdout.trim() || '[]');
    if (Array.isArray(parsed)) {
      listed = parsed
        .filter((c): c is { id: string; pid: number } => typeof c === 'object' && c !== null && 'id' in c)
        .map((c) => ({ id: String(c.id), pid: Number(c.pid) || 0 }));
    }
  } catch {
    // An unreadable root still gets removed with the temp dirs; its processes are caught by cgroup.
  }
  for (const { id } of listed) {
    // A paused container ignores SIGKILL until thawed; runc delete --force handles both.
    await execFileAsync('runc', ['--root', runcRoot, 'kill', id, 'KILL']).catch(() => undefined);
    await execFileAsync('runc', ['--root', runcRoot, 'delete', '--force', id]).catch(() => undefined);
  }
  return listed.map((c) => c.id);
}

/** Container-id-shaped names found in the directory trees under `roots`, up to `depth` levels. */
export async function containerIdsUnder(roots: string[], depth = 4): Promise<Set<string>> {
  const ids = new Set<string>();
  const walk = async (dir: string, left: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (CONTAINER_ID.test(entry.name)) ids.add(entry.name);
      if (left > 0 && entry.isDirectory()) await walk(join(dir, entry.name), left - 1);
    }
  };
  for (const root of roots) await walk(root, depth);
  return ids;
}

/** The cgroup hierarchies mounted under /sys/fs/cgroup (v1 controllers, the unified one, or the v2 root). */
async function cgroupHierarchies(): Promise<string[]> {
  const hierarchies = [CGROUP_ROOT];
  for (const entry of await readdir(CGROUP_ROOT, { withFileTypes: true }).catch(() => [])) {
    const path = join(CGROUP_ROOT, entry.name);
    // v1 hierarchies such as cpu,cpuacct also appear as symlinks (cpu, cpuacct): skip those,
    // the directory itself is listed.
    if (entry.isDirectory()) hierarchies.push(path);
  }
  return hierarchies;
}

/** Kills every process in `dir` and its descendants, then removes the cgroup directories bottom-up. */
async function removeCgroupTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
  if (entries === undefined) return;
  for (const entry of entries) if (entry.isDirectory()) await removeCgroupTree(join(dir, entry.name));
  // A frozen cgroup keeps its processes from dying; thaw it first (v1 freezer, v2 cgroup.freeze).
  await writeIfExists(join(dir, 'freezer.state'), 'THAWED');
  await writeIfExists(join(dir, 'cgroup.freeze'), '0');
  for (let attempt = 0; attempt < 50; attempt++) {
    const procs = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => ''))
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
    if (procs.length > 0) await killPids(procs, 'SIGKILL', 1000);
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return;
      await sleep(20);
    }
  }
}

async function writeIfExists(path: string, value: string): Promise<void> {
  await writeFile(path, value).catch(() => undefined);
}

/**
 * Removes the cgroups named `<parent>/<id>` for each id, in every hierarchy, killing what is
 * left inside. `parent` is relative to the hierarchy root (e.g. "berth").
 */
export async function removeContainerCgroups(parent: string, ids: Iterable<string>): Promise<void> {
  const wanted = new Set(ids);
  if (wanted.size === 0) return;
  for (const hierarchy of await cgroupHierarchies()) {
    const base = join(hierarchy, parent);
    for (const entry of await readdir(base).catch(() => [])) {
      // Container cgroups may be named <id> or carry a prefix/suffix (runc's systemd style: berth-<id>.scope).
      const match = [...wanted].some((id) => entry === id || entry.includes(id));
      if (match) await removeCgroupTree(join(base, entry));
    }
  }
}

/** Removes `<hierarchy>/<parent>` with everything below it, in every hierarchy: for parents the caller owns outright. */
export async function removeCgroupParent(parent: string): Promise<void> {
  // Guard against wiping a whole hierarchy through an empty or climbing parent.
  const clean = parent.replace(/^\/+|\/+$/g, '');
  if (clean === '' || clean.split('/').includes('..')) throw new Error(`refusing to remove cgroup parent ${parent}`);
  for (const hierarchy of await cgroupHierarchies()) await removeCgroupTree(join(hierarchy, clean));
}

/** Removes a temp dir tree after its mounts are gone; never follows a path outside it. */
export async function removeTree(dir: string): Promise<void> {
  await unmountAllUnder(dir);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Stops registered daemons when the test process is told to end (SIGTERM from node's test
 * runner when a file times out, SIGINT from Ctrl-C, SIGHUP): without this, Node dies at once
 * and the daemons, their containers and mounts outlive the test. Each stop gets a bounded time,
 * then the process exits with the signal's conventional status.
 */
const signalStops = new Set<() => Promise<void>>();
let signalHandlersInstalled = false;

export function stopOnSignal(stop: () => Promise<void>): () => void {
  if (!signalHandlersInstalled) {
    signalHandlersInstalled = true;
    const codes: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };
    for (const signal of Object.keys(codes) as NodeJS.Signals[]) {
      process.once(signal, () => {
        const stops = [...signalStops].map((fn) => fn().catch(() => undefined));
        void settlesWithin(Promise.all(stops), 20_000).finally(() => process.exit(codes[signal]));
      });
    }
  }
  signalStops.add(stop);
  return () => signalStops.delete(stop);
}

/**
 * What a Berth instance made on the host's network, found by the instance id its data root
 * holds (see src/server/networks/network-host.ts for the naming): bridges `br-<id>…`, host
 * veth ends `vb<id>…`, the nftables table `berth_<id>`. Nothing of another instance matches.
 */
export async function networkLeftovers(dataRoot: string): Promise<{ instanceId?: string; bridges: string[]; veths: string[]; table: boolean }> {
  let instanceId: string | undefined;
  try {
    instanceId = (await readFile(join(dataRoot, 'network', 'instance-id'), 'utf8')).trim();
  } catch {
    return { bridges: [], veths: [], table: false };
  }
  if (!/^[0-9a-f]{6}$/.test(instanceId)) return { bridges: [], veths: [], table: false };
  const { stdout } = await execFileAsync('ip', ['-j', 'link', 'show']);
  const names = (JSON.parse(stdout || '[]') as { ifname: string }[]).map((l) => l.ifname);
  const table = await execFileAsync('nft', ['list', 'table', 'ip', `berth_${instanceId}`]).then(
    () => true,
    () => false,
  );
  return {
    instanceId,
    bridges: names.filter((n) => n.startsWith(`br-${instanceId}`)),
    veths: names.filter((n) => n.startsWith(`vb${instanceId}`)),
    table,
  };
}

/** Removes the instance's bridges, veths and nftables table (after Berth stopped). */
export async function removeNetworkOf(dataRoot: string): Promise<void> {
  const left = await networkLeftovers(dataRoot);
  for (const link of [...left.veths, ...left.bridges]) await execFileAsync('ip', ['link', 'del', link]).catch(() => undefined);
  if (left.table) await execFileAsync('nft', ['delete', 'table', 'ip', `berth_${left.instanceId}`]).catch(() => undefined);
}
