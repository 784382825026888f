import { readdir, readFile, readlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { invalidArgument, notFound } from '../../common/errors.js';
import type { RuntimeState } from '../../server/advisor/model.js';
import { parsePasswd } from '../runtime/user.js';
import { readOverlayDrift } from './drift.js';
import { canonicalRoot, readTextInRoot } from './rootfs-files.js';

/**
 * What a running container is doing, read from the host: its processes, its listening
 * sockets and its drift from the image.
 *
 * - Processes: every /proc/<p> whose pid namespace (/proc/<p>/ns/pid) is the container init's.
 *   `pid` is the host pid (as `docker top` shows it). The user is the effective uid mapped back
 *   through the container's uid_map (user namespaces) and named from the container's own
 *   /etc/passwd (read safely inside the rootfs), else the number.
 * - Listening: /proc/<init>/net/{tcp,tcp6,udp,udp6} show the sockets of the init's network
 *   namespace: TCP in LISTEN (state 0A), UDP bound with no peer (state 07, remote port 0).
 * - Drift: see drift.ts.
 */

export interface RuntimeStateOptions {
  /** Host pid of the container's init process. */
  pid: number;
  /** The overlay upper (writable) directory of the container, when it has one. */
  upperDir?: string;
  /** The container's root filesystem as the host sees it (its merged mount). */
  rootfs: string;
  /**
   * The image's layer directories, top first, to tell a changed file from an added one.
   * Default: Berth's `lower` file next to the upper dir (overlay-rootfs.ts), else none
   * (every new path then counts as added).
   */
  lowerDirs?: string[];
}

export async function readRuntimeState(opts: RuntimeStateOptions): Promise<RuntimeState> {
  if (!Number.isSafeInteger(opts.pid) || opts.pid <= 0) throw invalidArgument(`invalid pid ${opts.pid}`);
  const root = await canonicalRoot(opts.rootfs);
  const [processes, listening, drift] = await Promise.all([
    readProcesses(opts.pid, root),
    readListening(opts.pid),
    opts.upperDir === undefined
      ? Promise.resolve({ added: [], changed: [], deleted: [] })
      : readOverlayDrift(opts.upperDir, opts.lowerDirs ?? (await berthLowerDirs(opts.upperDir))),
  ]);
  return { processes, listening, drift };
}

async function berthLowerDirs(upperDir: string): Promise<string[]> {
  try {
    return (await readFile(join(dirname(upperDir), 'lower'), 'utf8')).split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- processes

async function readProcesses(initPid: number, root: string): Promise<RuntimeState['processes']> {
  let namespace: string;
  try {
    namespace = await readlink(`/proc/${initPid}/ns/pid`);
  } catch (err) {
    throw notFound(`the container's process ${initPid} is not running`, err);
  }
  const uidMap = parseIdMap(await readFile(`/proc/${initPid}/uid_map`, 'utf8').catch(() => ''));
  const passwd = parsePasswd((await readTextInRoot(root, '/etc/passwd', 16 * 1024 * 1024)) ?? '');
  const names = new Map<number, string>();
  for (const entry of passwd) if (!names.has(entry.uid)) names.set(entry.uid, entry.name);

  const processes: RuntimeState['processes'] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    // A process may exit between readdir and these reads; it is simply not listed.
    const ns = await readlink(`/proc/${pid}/ns/pid`).catch(() => undefined);
    if (ns !== namespace) continue;
    const [status, cmdline] = await Promise.all([
      readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined),
      readFile(`/proc/${pid}/cmdline`).catch(() => undefined),
    ]);
    if (status === undefined || cmdline === undefined) continue;
    const hostUid = Number(/^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1] ?? NaN);
    const uid = mapToContainer(hostUid, uidMap);
    const user = uid === undefined ? String(hostUid) : (names.get(uid) ?? String(uid));
    processes.push({ pid, user, command: commandLine(cmdline, status) });
  }
  return processes.sort((a, b) => a.pid - b.pid);
}

/** argv joined by spaces; kernel threads and zombies have none, so `[comm]` as ps shows them. */
function commandLine(cmdline: Buffer, status: string): string {
  const args = cmdline.toString('utf8').split('\0');
  while (args.length > 0 && args[args.length - 1] === '') args.pop();
  if (args.length > 0) return args.join(' ');
  return `[${/^Name:\s*(.*)$/m.exec(status)?.[1] ?? '?'}]`;
}

interface IdRange {
  inside: number;
  outside: number;
  count: number;
}

function parseIdMap(text: string): IdRange[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter((f) => f.length === 3 && f.every(Number.isFinite))
    .map(([inside, outside, count]) => ({ inside: inside!, outside: outside!, count: count! }));
}

/** The id inside the container's user namespace for a host id, undefined when unmapped. */
function mapToContainer(hostId: number, map: IdRange[]): number | undefined {
  if (!Number.isFinite(hostId)) return undefined;
  for (const r of map) if (hostId >= r.outside && hostId < r.outside + r.count) return r.inside + (hostId - r.outside);
  return undefined;
}

// ---------------------------------------------------------------- sockets

const SOCKET_FILES = ['tcp', 'tcp6', 'udp', 'udp6'] as const;
const TCP_LISTEN = '0A';
const UDP_UNCONNECTED = '07';

async function readListening(pid: number): Promise<RuntimeState['listening']> {
  const out: RuntimeState['listening'] = [];
  const seen = new Set<string>();
  for (const protocol of SOCKET_FILES) {
    const text = await readFile(`/proc/${pid}/net/${protocol}`, 'utf8').catch(() => '');
    for (const socket of parseSocketTable(text, protocol)) {
      const key = `${socket.protocol} ${socket.address} ${socket.port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(socket);
    }
  }
  return out.sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol) || a.address.localeCompare(b.address));
}

/** Rows of /proc/net/{tcp,udp}[6] that are listening (see the module comment). */
export function parseSocketTable(text: string, protocol: (typeof SOCKET_FILES)[number]): RuntimeState['listening'] {
  const out: RuntimeState['listening'] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4) continue;
    const [, local, remote, state] = fields as [string, string, string, string];
    const listening = protocol.startsWith('tcp') ? state === TCP_LISTEN : state === UDP_UNCONNECTED && remote.endsWith(':0000');
    if (!listening) continue;
    const [addressHex, portHex] = local.split(':');
    if (addressHex === undefined || portHex === undefined) continue;
    out.push({ protocol, address: decodeAddress(addressHex), port: parseInt(portHex, 16) });
  }
  return out;
}

/**
 * The kernel prints addresses as 32-bit words in host byte order (little-endian here): IPv4
 * as one word, IPv6 as four.
 */
function decodeAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => [6, 4, 2, 0].map((i) => parseInt(w.slice(i, i + 2), 16)));
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return compressIpv6(groups);
}

/** RFC 5952 text: the longest run of two or more zero groups becomes `::`. */
function compressIpv6(groups: string[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart === -1) return groups.join(':');
  const head = groups.slice(0, bestStart).join(':');
  const tail = groups.slice(bestStart + bestLength).join(':');
  // ::ffff:a.b.c.d reads better as the mapped IPv4 address.
  if (bestStart === 0 && bestLength === 5 && groups[5] === 'ffff') {
    const v4 = [groups[6]!, groups[7]!].flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
    return `::ffff:${v4.join('.')}`;
  }
  return `${head}::${tail}`;
}
