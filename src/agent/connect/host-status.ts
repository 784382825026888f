import { readdir, statfs } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import type { HostCapacity } from '../../server/cluster/agent-hub.js';

/** Device nodes worth telling the scheduler about, by kind. */
const DEVICE_KINDS: { kind: string; dir: string; match: RegExp }[] = [
  { kind: 'gpu', dir: '/dev', match: /^nvidia\d+$/ },
  { kind: 'dri', dir: '/dev/dri', match: /^(card|renderD)\d+$/ },
  { kind: 'kvm', dir: '/dev', match: /^kvm$/ },
  { kind: 'fuse', dir: '/dev', match: /^fuse$/ },
];

/**
 * What this host offers, measured now: CPUs and memory of the machine, free bytes of the
 * filesystem holding the agent's data root, and devices found under /dev.
 */
export async function measureCapacity(dataRoot: string): Promise<HostCapacity> {
  const fs = await statfs(dataRoot).catch(() => undefined);
  const devices: HostCapacity['devices'] = [];
  for (const { kind, dir, match } of DEVICE_KINDS) {
    for (const name of await readdir(dir).catch(() => [] as string[])) if (match.test(name)) devices.push({ kind, path: `${dir}/${name}` });
  }
  return {
    cpus: availableParallelism(),
    memoryBytes: totalmem(),
    diskBytes: fs ? fs.bavail * fs.bsize : 0,
    devices,
  };
}
