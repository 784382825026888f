import { readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Where one container lives on disk under the runtime's exec root.
 *
 * ```
 * <execRoot>/runc/                      runc's state root
 * <execRoot>/containers/<id>/           the bundle
 *   config.json                         OCI spec given to runc
 *   berth.json                          BundleMeta: what Berth needs to re-attach after a restart
 *   conmon.pid                          pid of the monitor (written by conmon)
 *   pidfile                             pid of the container's init (written by runc)
 *   attach                              conmon's SOCK_SEQPACKET stdio socket (while it runs)
 *   ctl, winsz                          conmon's control fifos (resize)
 *   exit                                exit status, written by conmon when the init exits
 *   oom                                 present when conmon saw an OOM kill
 *   exec/<execId>/                      one directory per exec session, same files inside
 * ```
 *
 * Invariant: the bundle directory exists from the start of create until delete; its `exit`
 * file is the durable record of the container's end and is written atomically (rename).
 */
export interface BundleLayout {
  dir: string;
  config: string;
  meta: string;
  conmonPidFile: string;
  pidFile: string;
  attachSocket: string;
  ctlFifo: string;
  exitFile: string;
  oomFile: string;
  execRoot: string;
}

export function bundleLayout(execRoot: string, id: string): BundleLayout {
  const dir = join(execRoot, 'containers', id);
  return monitorDirLayout(dir);
}

/** The same file names serve a container bundle and an exec session directory. */
export function monitorDirLayout(dir: string): BundleLayout {
  return {
    dir,
    config: join(dir, 'config.json'),
    meta: join(dir, 'berth.json'),
    conmonPidFile: join(dir, 'conmon.pid'),
    pidFile: join(dir, 'pidfile'),
    attachSocket: join(dir, 'attach'),
    ctlFifo: join(dir, 'ctl'),
    exitFile: join(dir, 'exit'),
    oomFile: join(dir, 'oom'),
    execRoot: join(dir, 'exec'),
  };
}

/** Facts about a container that its monitor was started with; they never change. */
export interface BundleMeta {
  id: string;
  rootfs: string;
  logPath: string;
  cgroupsPath: string;
  tty: boolean;
  openStdin: boolean;
  stdinOnce: boolean;
  /**
   * The container has its own pid namespace, so its processes all die with its init and a
   * container whose exit was recorded needs no `runc delete --force` to kill stragglers.
   * Absent in bundles written before this field existed (treated as false).
   */
  ownPidNamespace?: boolean;
}

export async function writeMeta(layout: BundleLayout, meta: BundleMeta): Promise<void> {
  const tmp = `${layout.meta}.tmp`;
  await writeFile(tmp, JSON.stringify(meta));
  await rename(tmp, layout.meta);
}

export async function readMeta(layout: BundleLayout): Promise<BundleMeta> {
  return JSON.parse(await readFile(layout.meta, 'utf8')) as BundleMeta;
}

/** Berth's cgroup for a container (runc's cgroupfs driver, relative to each hierarchy's root). */
/**
 * A container's cgroup. `hostTag` (a cluster agent's) keeps apart two hosts that share one
 * kernel and hold the same container id: failover keeps a container's id on its new host.
 */
export const cgroupsPathFor = (id: string, hostTag?: string): string => (hostTag ? `/berth/${id}.${hostTag}` : `/berth/${id}`);
