import { readFileSync } from 'node:fs';
import { readdir, readFile, rmdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, internal } from '../../common/errors.js';
import type { ResourceStats } from './types.js';

/**
 * Reading and removing the cgroup of one container, on any of the three host layouts.
 *
 * Terms:
 * - cgroupsPath: what Berth gave runc in the spec, e.g. "/berth/<id>". runc's cgroupfs driver
 *   reads it relative to the root of every hierarchy it uses.
 * - v1: one hierarchy per controller set, e.g. /sys/fs/cgroup/memory/berth/<id>.
 * - v2 (unified): one hierarchy, /sys/fs/cgroup/berth/<id>.
 * - hybrid: v1 hierarchies hold every controller; a controller-less cgroup2 (usually
 *   /sys/fs/cgroup/unified) only groups processes. runc puts the container in both, so limits
 *   and statistics come from v1 and removal must cover the cgroup2 directory too.
 *
 * Hierarchies are found from /proc/self/mountinfo once per process (mounts do not move while
 * the agent runs), never guessed from a fixed list.
 *
 * Lifecycle: runc creates the cgroup at `create`; statistics are readable until it is removed;
 * runc removes it at `delete`, and removeCgroup covers a create that failed half-way.
 */

export type CgroupMode = 'v1' | 'v2' | 'hybrid';

interface Hierarchies {
  mode: CgroupMode;
  /** v1 controller (or "name=systemd") → mount point. */
  v1: Map<string, string>;
  /** Mount point of the cgroup2 hierarchy, if any. */
  unified?: string;
}

let cached: Hierarchies | undefined;

function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses mountinfo text into the cgroup hierarchies it shows. Exported for tests. */
export function parseCgroupMounts(mountinfo: string): Hierarchies {
  const v1 = new Map<string, string>();
  let unified: string | undefined;
  let rootIsV2 = false;
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const mountPoint = unescapeMountPath(pre.split(' ')[4] ?? '');
    const [fsType, , superOpts = ''] = post.split(' ');
    if (fsType === 'cgroup2') {
      // The first cgroup2 mount wins; bind mounts of it elsewhere add nothing.
      if (unified === undefined || mountPoint === '/sys/fs/cgroup') unified = mountPoint;
      if (mountPoint === '/sys/fs/cgroup') rootIsV2 = true;
    } else if (fsType === 'cgroup') {
      for (const opt of superOpts.split(',')) {
        if (opt === 'rw' || opt === 'ro' || opt === '' || opt.startsWith('release_agent=')) continue;
        if (!v1.has(opt)) v1.set(opt, mountPoint);
      }
    }
  }
  const mode: CgroupMode = rootIsV2 || (v1.size === 0 && unified !== undefined) ? 'v2' : unified !== undefined ? 'hybrid' : 'v1';
  return { mode, v1, unified };
}

function hierarchies(): Hierarchies {
  cached ??= parseCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8'));
  return cached;
}

/** Which layout this host uses. */
export function cgroupMode(): CgroupMode {
  return hierarchies().mode;
}

function v1Dir(h: Hierarchies, controller: string, cgroupsPath: string): string {
  const mount = h.v1.get(controller);
  if (mount === undefined) throw internal(`cgroup v1 controller ${controller} is not mounted`);
  return path.join(mount, cgroupsPath);
}

function v2Dir(h: Hierarchies, cgroupsPath: string): string {
  if (h.unified === undefined) throw internal('cgroup2 is not mounted');
  return path.join(h.unified, cgroupsPath);
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENODEV' || code === 'EOPNOTSUPP') return undefined;
    throw err;
  }
}

/** A single-number file; "max" and absence are undefined. */
async function readNumber(file: string): Promise<number | undefined> {
  const text = (await readText(file))?.trim();
  if (text === undefined || text === '' || text === 'max') return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** "key value" lines (memory.stat, cpu.stat, memory.events) → map. */
export function parseKeyValues(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? '').split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && /^-?\d+$/.test(value)) out[key] = Number(value);
  }
  return out;
}

const USER_HZ = 100;
const NS_PER_TICK = 1e9 / USER_HZ;

/**
 * Host CPU time (all CPUs, ns) and number of online CPUs from /proc/stat, the "system" side
 * of Docker's CPU percentage.
 */
export function parseProcStat(text: string): { systemUsageNs: number; onlineCpus: number } {
  let systemUsageNs = 0;
  let onlineCpus = 0;
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === 'cpu') {
      // user nice system idle iowait irq softirq, as Docker sums them.
      const ticks = fields.slice(1, 8).reduce((sum, f) => sum + Number(f), 0);
      systemUsageNs = ticks * NS_PER_TICK;
    } else if (/^cpu\d+$/.test(fields[0] ?? '')) {
      onlineCpus++;
    }
  }
  return { systemUsageNs, onlineCpus };
}

/** v1 blkio "8:0 Read 4096" lines; the closing "Total N" line has no device and is skipped. */
export function parseBlkioV1(text: string | undefined): ResourceStats['blkio'] {
  const out: ResourceStats['blkio'] = [];
  for (const line of (text ?? '').split('\n')) {
    const m = /^(\d+):(\d+)\s+(\S+)\s+(\d+)$/.exec(line.trim());
    if (m) out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3] as string, value: Number(m[4]) });
  }
  return out;
}

/** v2 io.stat "8:0 rbytes=1 wbytes=2 …" → read/write byte counts, as Docker reports them. */
export function parseIoStatV2(text: string | undefined): ResourceStats['blkio'] {
  const out: ResourceStats['blkio'] = [];
  for (const line of (text ?? '').split('\n')) {
    const [dev, ...kvs] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!m) continue;
    const kv = Object.fromEntries(kvs.map((p) => p.split('=') as [string, string]));
    const major = Number(m[1]);
    const minor = Number(m[2]);
    out.push({ major, minor, op: 'read', value: Number(kv.rbytes ?? 0) });
    out.push({ major, minor, op: 'write', value: Number(kv.wbytes ?? 0) });
  }
  return out;
}

/** An unlimited cgroup reports a huge limit; Docker shows the host's memory instead. */
function capToHost(limit: number | undefined): number {
  const total = os.totalmem();
  return limit === undefined || limit > total ? total : limit;
}

/**
 * One statistics sample of the container's cgroup, in the units of Docker's stats API (bytes,
 * nanoseconds). Throws if the cgroup does not exist.
 */
export async function readCgroupStats(cgroupsPath: string): Promise<ResourceStats> {
  const h = hierarchies();
  const read = new Date().toISOString();
  const host = parseProcStat((await readText('/proc/stat')) ?? '');
  return h.mode === 'v2' ? statsV2(h, cgroupsPath, read, host) : statsV1(h, cgroupsPath, read, host);
}

async function statsV1(
  h: Hierarchies,
  cgroupsPath: string,
  read: string,
  host: { systemUsageNs: number; onlineCpus: number },
): Promise<ResourceStats> {
  const mem = v1Dir(h, 'memory', cgroupsPath);
  const usage = await readNumber(path.join(mem, 'memory.usage_in_bytes'));
  if (usage === undefined) throw internal(`cgroup ${cgroupsPath} does not exist`);
  const acct = v1Dir(h, h.v1.has('cpuacct') ? 'cpuacct' : 'cpu', cgroupsPath);
  const cpuTimes = parseKeyValues(await readText(path.join(acct, 'cpuacct.stat')));
  const perCpu = ((await readText(path.join(acct, 'cpuacct.usage_percpu'))) ?? '')
    .trim()
    .split(/\s+/)
    .filter((s) => s !== '')
    .map(Number);
  const pids = h.v1.has('pids') ? v1Dir(h, 'pids', cgroupsPath) : undefined;
  let blkio: ResourceStats['blkio'] = [];
  if (h.v1.has('blkio')) {
    const dir = v1Dir(h, 'blkio', cgroupsPath);
    // Which file counts depends on the I/O scheduler; the first with data wins, as in runc.
    for (const file of ['blkio.bfq.io_service_bytes_recursive', 'blkio.io_service_bytes_recursive', 'blkio.throttle.io_service_bytes_recursive']) {
      blkio = parseBlkioV1(await readText(path.join(dir, file)));
      if (blkio.length > 0) break;
    }
  }
  const maxUsage = await readNumber(path.join(mem, 'memory.max_usage_in_bytes'));
  return {
    read,
    cpu: {
      totalUsageNs: (await readNumber(path.join(acct, 'cpuacct.usage'))) ?? 0,
      perCpuUsageNs: perCpu,
      userNs: (cpuTimes.user ?? 0) * NS_PER_TICK,
      systemNs: (cpuTimes.system ?? 0) * NS_PER_TICK,
      ...host,
    },
    memory: {
      usage,
      limit: capToHost(await readNumber(path.join(mem, 'memory.limit_in_bytes'))),
      ...(maxUsage !== undefined ? { maxUsage } : {}),
      stats: parseKeyValues(await readText(path.join(mem, 'memory.stat'))),
    },
    pids: pidsStats(
      pids === undefined ? undefined : await readNumber(path.join(pids, 'pids.current')),
      pids === undefined ? undefined : await readNumber(path.join(pids, 'pids.max')),
    ),
    blkio,
  };
}

async function statsV2(
  h: Hierarchies,
  cgroupsPath: string,
  read: string,
  host: { systemUsageNs: number; onlineCpus: number },
): Promise<ResourceStats> {
  const dir = v2Dir(h, cgroupsPath);
  const usage = await readNumber(path.join(dir, 'memory.current'));
  if (usage === undefined) throw internal(`cgroup ${cgroupsPath} does not exist`);
  const cpu = parseKeyValues(await readText(path.join(dir, 'cpu.stat')));
  const maxUsage = await readNumber(path.join(dir, 'memory.peak'));
  return {
    read,
    cpu: {
      totalUsageNs: (cpu.usage_usec ?? 0) * 1000,
      perCpuUsageNs: [], // v2 keeps no per-CPU accounting; Docker leaves it empty too
      userNs: (cpu.user_usec ?? 0) * 1000,
      systemNs: (cpu.system_usec ?? 0) * 1000,
      ...host,
    },
    memory: {
      usage,
      limit: capToHost(await readNumber(path.join(dir, 'memory.max'))),
      ...(maxUsage !== undefined ? { maxUsage } : {}),
      stats: parseKeyValues(await readText(path.join(dir, 'memory.stat'))),
    },
    pids: pidsStats(await readNumber(path.join(dir, 'pids.current')), await readNumber(path.join(dir, 'pids.max'))),
    blkio: parseIoStatV2(await readText(path.join(dir, 'io.stat'))),
  };
}

function pidsStats(current: number | undefined, limit: number | undefined): ResourceStats['pids'] {
  return limit === undefined ? { current: current ?? 0 } : { current: current ?? 0, limit };
}

/** The directory whose cgroup.procs lists the container's processes. */
function procsDir(h: Hierarchies, cgroupsPath: string): string {
  if (h.mode === 'v2') return v2Dir(h, cgroupsPath);
  const controller = ['pids', 'memory', 'cpu', 'name=systemd'].find((c) => h.v1.has(c));
  if (controller === undefined) return v2Dir(h, cgroupsPath);
  return v1Dir(h, controller, cgroupsPath);
}

/** Pids (in the agent's pid namespace) of every process in the cgroup; [] when it is gone. */
export async function listCgroupPids(cgroupsPath: string): Promise<number[]> {
  const text = await readText(path.join(procsDir(hierarchies(), cgroupsPath), 'cgroup.procs'));
  return (text ?? '')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(Number);
}

/**
 * Whether the kernel OOM killer has killed a process of this cgroup (v1 memory.oom_control,
 * v2 memory.events; both count kills since the cgroup was made). Read it before removal.
 */
export async function detectOomKill(cgroupsPath: string): Promise<boolean> {
  const h = hierarchies();
  const file =
    h.mode === 'v2'
      ? path.join(v2Dir(h, cgroupsPath), 'memory.events')
      : path.join(v1Dir(h, 'memory', cgroupsPath), 'memory.oom_control');
  return (parseKeyValues(await readText(file)).oom_kill ?? 0) > 0;
}

/** Every directory the container's cgroup occupies, one per hierarchy. */
function cgroupDirs(h: Hierarchies, cgroupsPath: string): string[] {
  const mounts = new Set(h.v1.values());
  if (h.unified !== undefined) mounts.add(h.unified);
  return [...mounts].map((m) => path.join(m, cgroupsPath));
}

/** rmdir children first: a cgroup with child cgroups cannot be removed. */
async function removeTree(dir: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
  for (const e of entries) if (e.isDirectory()) await removeTree(path.join(dir, e.name));
  // The kernel frees a cgroup a moment after its last process is reaped, hence the retries.
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || attempt >= 50) throw internal(`cannot remove cgroup ${dir}`, err);
      await sleep(20);
    }
  }
}

/**
 * Removes the container's cgroup from every hierarchy. Idempotent: a missing directory is
 * success. Fails (Internal) if processes still live in it; kill them first.
 */
export async function removeCgroup(cgroupsPath: string): Promise<void> {
  const parts = cgroupsPath.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.includes('..')) {
    throw internal(`refusing to remove cgroup ${JSON.stringify(cgroupsPath)}`);
  }
  const h = hierarchies();
  for (const dir of cgroupDirs(h, cgroupsPath)) await removeTree(dir);
}
