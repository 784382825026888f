/**
 * The after-suite leak check (issue 4): once every test has ended, the host must hold no
 * bridge, veth, nftables table, network namespace, mount, cgroup or process that the suite
 * created. scripts/test.sh takes a snapshot before the suite and compares after it; anything
 * new is a leak, reported by name, and fails the run.
 *
 * Comparing with a snapshot rather than matching Berth's name patterns alone means a leak is
 * caught whoever made it (Berth, a harness, dockerd, a registry), and that resources the host
 * had before the suite never count.
 *
 * Usage: node dist/test/support/host-leaks.js snapshot FILE | check FILE
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sleep } from './cleanup.js';

const run = promisify(execFile);

/** Processes the suite starts: container monitors and runtimes, and the peers tests run. */
const SUITE_PROCESS_NAMES = new Set(['conmon', 'runc', 'dockerd', 'containerd', 'containerd-shim', 'containerd-shim-runc-v2', 'docker-proxy', 'docker-registry', 'registry', 'etcd']);

export interface HostSnapshot {
  links: string[];
  nftTables: string[];
  netns: string[];
  mounts: string[];
  cgroups: string[];
  processes: string[];
}

async function lines(command: string, args: string[]): Promise<string[]> {
  const { stdout } = await run(command, args);
  return stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

async function links(): Promise<string[]> {
  // "3: br-ab12cd: <BROADCAST,...>" or "7: vb12@if6: <...>": the name up to '@' or ':'.
  return (await lines('ip', ['-o', 'link', 'show'])).map((l) => l.split(': ')[1]!.split('@')[0]!);
}

async function mounts(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const fields = l.split(' ');
      const fsType = fields[fields.indexOf('-') + 1];
      return `${fields[4]} (${fsType})`;
    });
}

/**
 * Cgroups Berth and the test dockerds create: what is below the `berth` parent, and the
 * dockerd harness's `berth-test-*` parents, in every hierarchy. The `berth` parent itself is
 * shared by every Berth on the host and stays, as dockerd's `docker` parent does.
 */
async function cgroups(): Promise<string[]> {
  const found: string[] = [];
  const root = '/sys/fs/cgroup';
  const hierarchies = [root, ...(await readdir(root).catch(() => [] as string[])).map((h) => join(root, h))];
  for (const hierarchy of hierarchies) {
    const entries = await readdir(hierarchy, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory() || !(entry.name === 'berth' || entry.name.startsWith('berth-'))) continue;
      if (entry.name !== 'berth') found.push(join(hierarchy, entry.name));
      const children = await readdir(join(hierarchy, entry.name), { withFileTypes: true }).catch(() => []);
      for (const child of children) if (child.isDirectory()) found.push(join(hierarchy, entry.name, child.name));
    }
  }
  return found;
}

async function processes(): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = (await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '')).trim();
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').trim();
    const berthProcess = comm.startsWith('node') && cmdline.includes('src/cli/berth.js');
    if (SUITE_PROCESS_NAMES.has(comm) || berthProcess) found.push(`${entry} ${cmdline.slice(0, 200)}`);
  }
  return found;
}

export async function takeHostSnapshot(): Promise<HostSnapshot> {
  const [l, nft, ns, m, c, p] = await Promise.all([
    links(),
    lines('nft', ['list', 'tables']),
    lines('ip', ['netns', 'list']).then((names) => names.map((n) => n.split(' ')[0]!)),
    mounts(),
    cgroups(),
    processes(),
  ]);
  return { links: l, nftTables: nft, netns: ns, mounts: m, cgroups: c, processes: p };
}

/** What `after` has that `before` had not, per kind. */
export function newResources(before: HostSnapshot, after: HostSnapshot): Partial<Record<keyof HostSnapshot, string[]>> {
  const leaks: Partial<Record<keyof HostSnapshot, string[]>> = {};
  for (const kind of Object.keys(after) as (keyof HostSnapshot)[]) {
    const known = new Set(before[kind]);
    const added = after[kind].filter((item) => !known.has(item));
    if (added.length > 0) leaks[kind] = added;
  }
  return leaks;
}

async function main(): Promise<number> {
  const [mode, file] = process.argv.slice(2);
  if ((mode !== 'snapshot' && mode !== 'check') || file === undefined) {
    console.error('usage: host-leaks snapshot FILE | check FILE');
    return 2;
  }
  if (mode === 'snapshot') {
    await writeFile(file, JSON.stringify(await takeHostSnapshot()));
    return 0;
  }
  const before = JSON.parse(await readFile(file, 'utf8')) as HostSnapshot;
  // Processes and lazily detached mounts can take a moment to go after the last test ends.
  let leaks = newResources(before, await takeHostSnapshot());
  for (let attempt = 0; attempt < 10 && Object.keys(leaks).length > 0; attempt++) {
    await sleep(500);
    leaks = newResources(before, await takeHostSnapshot());
  }
  if (Object.keys(leaks).length === 0) {
    console.log('host-leaks: nothing left behind (links, nftables tables, netns, mounts, cgroups, processes)');
    return 0;
  }
  console.error('host-leaks: the suite left these behind on the host:');
  for (const [kind, items] of Object.entries(leaks)) for (const item of items) console.error(`  ${kind}: ${item}`);
  return 1;
}

if (process.argv[1]?.endsWith('host-leaks.js')) process.exitCode = await main();
