import { readFile, stat } from 'node:fs/promises';
import { errnoCode } from '../../common/errors.js';
import type { BundleLayout } from './bundle.js';
import type { ExitRecord } from './types.js';

/**
 * Reading and waiting for the exit record conmon leaves in a bundle.
 *
 * conmon writes `<bundle>/exit` (decimal status, 128+n for signal n) with a rename once the
 * container's init has exited and its output is drained, and creates `<bundle>/oom` when it saw
 * an OOM kill in the container's memory cgroup. Both are plain files, so a Berth that restarted
 * finds them the same way as the one that created the container.
 */

/** Formats a time in nanoseconds since the epoch as RFC 3339 UTC with nine fraction digits. */
export function rfc3339Nano(ns: bigint): string {
  const seconds = ns / 1_000_000_000n;
  const nanos = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${nanos}Z`;
}

export const nowRfc3339Nano = (): string => rfc3339Nano(BigInt(Date.now()) * 1_000_000n);

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The exit record if conmon has written one; undefined otherwise. `oomDetected` is asked only
 * when conmon left no oom marker (e.g. the cgroup v2 counter is the only witness).
 */
export async function readExitRecord(layout: BundleLayout, oomDetected: () => Promise<boolean>): Promise<ExitRecord | undefined> {
  let text: string;
  let mtimeNs: bigint;
  try {
    text = await readFile(layout.exitFile, 'utf8');
    mtimeNs = (await stat(layout.exitFile, { bigint: true })).mtimeNs;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  const code = Number.parseInt(text.trim(), 10);
  const oomKilled = (await exists(layout.oomFile)) || (await oomDetected().catch(() => false));
  // conmon writes -1 when it could not learn the status; Docker reports such exits as 255.
  return { exitCode: Number.isInteger(code) && code >= 0 ? code : 255, oomKilled, finishedAt: rfc3339Nano(mtimeNs) };
}

/** Whether the conmon of a bundle is still running (pid from its pidfile, checked by name). */
export async function monitorAlive(layout: BundleLayout): Promise<boolean> {
  let pid: number;
  try {
    pid = Number.parseInt((await readFile(layout.conmonPidFile, 'utf8')).trim(), 10);
  } catch {
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    // "<pid> (<comm>) <state> ...": a zombie has exited even if its reaper is slow to notice
    // (conmon is reparented to whatever init the host runs).
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const state = stat.slice(close + 2, close + 3);
    return comm === 'conmon' && state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
