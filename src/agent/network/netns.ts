import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../../common/errors.js';
import { runTool } from './command.js';
import type { IdRange } from '../userns/id-range.js';
import type { VethAttachment } from './links.js';
import { createNetnsWithVeths } from './veth-helper.js';

/**
 * Persistent network namespaces, one per running bridge-mode container, as `ip netns` keeps
 * them but under Berth's exec root: the namespace is bind-mounted (nsfs) on a file named
 * after the container, so it lives on while Berth restarts and runc joins it by path.
 *
 * Lifecycle: create (before runc create) → the container runs in it → remove (after the
 * container exited). Removing unmounts and deletes the file; the kernel frees the namespace
 * and every veth end in it once no process holds it either.
 */
export class NetnsDirectory {
  /** The directory is made once per process (a start need not ask again). */
  private madeDir: Promise<void> | undefined;

  constructor(private readonly dir: string) {}

  pathOf(containerId: string): string {
    return join(this.dir, containerId);
  }

  /** The pinned user namespace that owns a tenant container's network namespace. */
  usernsPathOf(containerId: string): string {
    return join(this.dir, `${containerId}.userns`);
  }

  /**
   * Makes the namespace with loopback up and `veths` plugged into it (container ends
   * addressed and routed, host ends on their bridges), in one request to the resident native
   * helper (veth-helper.ts): no process start from Node, no step per tool. A leftover
   * namespace file of the same container (a crash mid-start) is replaced.
   *
   * With an ID range (a tenant's container) the namespace is owned by a new user namespace
   * of that range, pinned beside it (usernsPathOf) for runc to join: root in the container
   * then has CAP_NET_ADMIN over its own network (ports below 1024, sysfs) and nothing more.
   */
  async create(containerId: string, veths: VethAttachment[] = [], idRange?: IdRange): Promise<string> {
    const path = this.pathOf(containerId);
    const usernsPath = this.usernsPathOf(containerId);
    this.madeDir ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).then(() => undefined);
    await this.madeDir;
    if ((await Promise.all([exists(path), exists(usernsPath)])).some(Boolean)) await this.remove(containerId);
    try {
      // The helper makes the (empty) files it pins the namespaces on.
      await createNetnsWithVeths(path, veths, idRange ? { range: idRange, usernsFile: usernsPath } : undefined);
    } catch (err) {
      // The directory may have gone (an exec root wiped under a running Berth): the next start makes it again.
      this.madeDir = undefined;
      await this.remove(containerId);
      throw err;
    }
    return path;
  }

  /** Pins the namespace of a running process again (its file was lost, e.g. the exec root was wiped). */
  async adopt(containerId: string, pid: number): Promise<string> {
    const path = this.pathOf(containerId);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFile(path, '', { mode: 0o600 });
    await runTool('mount', ['--bind', `/proc/${pid}/ns/net`, path]);
    return path;
  }

  async remove(containerId: string): Promise<void> {
    const path = this.pathOf(containerId);
    // Lazy: a process that entered the namespace by path must not make the unmount fail.
    await runTool('umount', ['-l', path]).catch(() => undefined);
    await rm(path, { force: true });
    const userns = this.usernsPathOf(containerId);
    if (await exists(userns)) {
      await runTool('umount', ['-l', userns]).catch(() => undefined);
      await rm(userns, { force: true });
    }
  }

  /** Container ids that have a namespace file. */
  async list(): Promise<string[]> {
    return this.idsOfFiles(/^([0-9a-f]{64})$/);
  }

  /** Container ids that have a pinned user namespace (its network namespace file may be gone: a crash mid-remove). */
  async listUserns(): Promise<string[]> {
    return this.idsOfFiles(/^([0-9a-f]{64})\.userns$/);
  }

  private async idsOfFiles(pattern: RegExp): Promise<string[]> {
    try {
      return (await readdir(this.dir)).map((name) => pattern.exec(name)?.[1]).filter((id): id is string => id !== undefined);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
