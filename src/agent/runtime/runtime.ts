import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import {
  BerthError,
  conflict,
  errnoCode,
  internal,
  invalidArgument,
  notFound,
} from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { bundleLayout, cgroupsPathFor, monitorDirLayout, readMeta, writeMeta, type BundleLayout, type BundleMeta } from './bundle.js';
import { detectOomKill, listCgroupPids, readCgroupStats, removeCgroup } from './cgroups.js';
import { buildExecProcess } from './exec-spec.js';
import { ChangeSignal } from './changes.js';
import { monitorAlive, nowRfc3339Nano, readExitRecord } from './exit.js';
import { launchContainerMonitor, launchExecMonitor, MonitorError, readPidFile, resolveBinary, type MonitorCommon } from './monitor.js';
import type { Spec } from './oci-types.js';
import { Runc, RuncError, type RuncResources } from './runc.js';
import { linuxResources, buildOciSpec } from './spec.js';
import { clampRlimits } from './rlimits.js';
import { parseSignal } from './signals.js';
import { openAttachSession } from './stdio.js';
import { parsePs } from './top.js';
import type {
  ContainerRuntime,
  ContainerSpecInput,
  ExecProcess,
  ExecProcessInput,
  ExitRecord,
  ResourceLimits,
  ResourceStats,
  RuntimeState,
  RuntimeStatus,
  StdioSession,
  TerminalSize,
} from './types.js';
import { resolveGroups, resolveUser } from './user.js';

const execFileAsync = promisify(execFile);

/** runc makes read-only mounts read-only recursively (`rro`) with mount_setattr(2), Linux 5.12 and later. */
const RECURSIVE_READONLY = ((): boolean => {
  const [major = 0, minor = 0] = release().split('.').map((part) => parseInt(part, 10));
  return major > 5 || (major === 5 && minor >= 12);
})();

/** BERTH_TRACE=1 logs per-phase timings of create and delete at debug. */
const TRACING = process.env.BERTH_TRACE === '1';

function phaseTimer(): { mark(phase: string): void; phases: Record<string, number> } {
  let last = performance.now();
  const phases: Record<string, number> = {};
  return {
    phases,
    mark(phase) {
      if (!TRACING) return;
      const now = performance.now();
      phases[phase] = Math.round((now - last) * 10) / 10;
      last = now;
    },
  };
}

export interface RuncRuntimeOptions {
  /** Volatile state: runc's root and the bundles (e.g. /run/berth). */
  execRoot: string;
  logger: Logger;
  /** runc binary (name on PATH or absolute path); default "runc". */
  runc?: string;
  /** conmon binary; default "conmon". */
  conmon?: string;
  /** Static init for --init (tini); default none, which makes --init a no-op. */
  initBinary?: string;
  /** Allow the 32-bit syscall ABI in containers (default: native 64-bit only). */
  compat32Syscalls?: boolean;
  /** A cluster agent's tag in its containers' cgroup names (see cgroupsPathFor). */
  cgroupHostTag?: string;
}

/**
 * ContainerRuntime on runc with one conmon per container (see types.ts for the contract, and
 * bundle.ts for the files under the exec root).
 *
 * The runtime keeps no state in memory that matters: everything it needs to find, attach to,
 * wait for or delete a container is in the bundle (berth.json, conmon's pidfile and exit file)
 * and in runc's state root, so a new RuncRuntime over the same exec root picks up containers
 * created by an earlier process.
 */
export class RuncRuntime implements ContainerRuntime {
  private readonly execRoot: string;
  private readonly log: Logger;
  private readonly runc: Runc;
  private readonly common: MonitorCommon;
  private readonly initBinary: string | undefined;
  private readonly compat32Syscalls: boolean;
  /** Exit records read just before delete removed a bundle, for waiters that were too slow. */
  private readonly lastExits = new Map<string, ExitRecord>();

  private readonly cgroupHostTag: string | undefined;

  private cgroupsPath(id: string): string {
    return cgroupsPathFor(id, this.cgroupHostTag);
  }

  constructor(options: RuncRuntimeOptions) {
    this.cgroupHostTag = options.cgroupHostTag;
    this.execRoot = options.execRoot;
    this.log = options.logger;
    this.initBinary = options.initBinary;
    this.compat32Syscalls = options.compat32Syscalls ?? false;
    const runcBinary = resolveBinary(options.runc ?? 'runc');
    this.runc = new Runc({ binary: runcBinary, root: join(options.execRoot, 'runc') });
    this.common = {
      conmon: resolveBinary(options.conmon ?? 'conmon'),
      runc: runcBinary,
      runcGlobalArgs: [`--root=${this.runc.root}`],
    };
  }

  async create(spec: ContainerSpecInput): Promise<{ pid: number }> {
    const id = spec.id;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) throw invalidArgument(`invalid container id: ${id}`);
    const layout = bundleLayout(this.execRoot, id);
    await mkdir(dirname(layout.dir), { recursive: true });
    try {
      await mkdir(layout.dir); // not recursive: an existing bundle means the id is taken
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') throw conflict(`container ${id} already exists`);
      throw err;
    }
    // A new run of the same id: the previous run's exit must not answer this run's waiters.
    this.lastExits.delete(id);
    const cgroupsPath = this.cgroupsPath(id);
    const started = Date.now();
    const timer = phaseTimer();
    try {
      const user = await resolveUser(spec.rootfs, spec.process.user);
      const added = await resolveGroups(spec.rootfs, spec.process.groupAdd ?? []);
      user.additionalGids = [...new Set([...user.additionalGids, ...added])];
      timer.mark('user');
      const oci = await clampRlimits(
        buildOciSpec(spec, { cgroupsPath, user, initBinary: this.initBinary, compat32Syscalls: this.compat32Syscalls, recursiveReadonly: RECURSIVE_READONLY }),
      );
      // runc sizes the pty it creates, so the process never sees the 0x0 of a fresh terminal
      // (a resize through conmon races with a process that asks for its size at once).
      const size = spec.process.consoleSize;
      if (spec.process.tty && oci.process && size && size.height > 0 && size.width > 0) {
        oci.process.consoleSize = { height: size.height, width: size.width };
      }
      timer.mark('spec');
      const stdinOnce = spec.process.stdinOnce ?? false;
      const meta: BundleMeta = {
        id,
        rootfs: spec.rootfs,
        logPath: spec.logPath,
        cgroupsPath,
        tty: spec.process.tty,
        openStdin: spec.process.openStdin,
        stdinOnce,
        ownPidNamespace: oci.linux?.namespaces?.some((ns) => ns.type === 'pid' && ns.path === undefined) ?? false,
      };
      await writeFile(layout.config, JSON.stringify(oci));
      await writeMeta(layout, meta);
      await mkdir(dirname(spec.logPath), { recursive: true });
      timer.mark('files');
      // conmon reports the init's pid once `runc create` finished; no `runc state` needed.
      const { pid } = await launchContainerMonitor(this.common, {
        id,
        layout,
        logPath: spec.logPath,
        tty: spec.process.tty,
        stdin: spec.process.openStdin,
        leaveStdinOpen: !stdinOnce,
      });
      timer.mark('monitor');
      this.log.debug({ id, ms: Date.now() - started, ...(TRACING ? { phases: timer.phases } : {}) }, 'container created');
      return { pid };
    } catch (err) {
      await this.removeEverything(id, layout, cgroupsPath).catch((cleanupErr: unknown) =>
        this.log.error({ id, err: cleanupErr }, 'cleanup after failed create left something behind'),
      );
      if (err instanceof MonitorError) throw runtimeFailure('create', err.message, err);
      if (err instanceof BerthError) throw err;
      throw internal(`failed to create container ${id}`, err);
    }
  }

  async start(id: string): Promise<void> {
    await this.runcCall(id, 'start', () => this.runc.start(id));
  }

  async attach(id: string, options: { stdin: boolean }): Promise<StdioSession> {
    const layout = await this.existingLayout(id);
    const meta = await readMeta(layout);
    try {
      return await openAttachSession(layout.attachSocket, { stdin: options.stdin && meta.openStdin });
    } catch (err) {
      if (!(await monitorAlive(layout))) throw conflict('You cannot attach to a stopped container, start it first', err);
      throw internal(`cannot attach to container ${id}`, err);
    }
  }

  async resize(id: string, size: TerminalSize): Promise<void> {
    const layout = await this.existingLayout(id);
    await writeResize(layout, size, id);
  }

  async kill(id: string, signal: string): Promise<void> {
    const number = parseSignal(signal);
    await this.runcCall(id, 'kill', () => this.runc.kill(id, number));
  }

  async pause(id: string): Promise<void> {
    await this.runcCall(id, 'pause', () => this.runc.pause(id));
  }

  async resume(id: string): Promise<void> {
    await this.runcCall(id, 'resume', () => this.runc.resume(id));
  }

  async update(id: string, resources: ResourceLimits): Promise<void> {
    const r: RuncResources = linuxResources(resources);
    // In an update an explicit "no limit" must be written, not left out (which means unchanged).
    if (resources.pidsLimit !== undefined && resources.pidsLimit <= 0) r.pids = { limit: -1 };
    await this.runcCall(id, 'update', () => this.runc.update(id, r));
  }

  async state(id: string): Promise<RuntimeState> {
    const s = await this.runcCall(id, 'state', () => this.runc.state(id));
    return { status: toStatus(s.status), pid: s.status === 'stopped' ? 0 : s.pid };
  }

  async waitExit(id: string): Promise<ExitRecord> {
    const layout = bundleLayout(this.execRoot, id);
    const oom = (): Promise<boolean> => detectOomKill(this.cgroupsPath(id));
    const changes = new ChangeSignal(layout.dir);
    try {
      for (let round = 0; ; round++) {
        const cached = this.lastExits.get(id);
        if (cached) return cached;
        const record = await readExitRecord(layout, oom).catch(() => undefined);
        if (record) return record;
        if (!(await pathExists(layout.dir))) throw notFound(`No such container: ${id}`);
        // Every second or so: a monitor that died without writing the exit file (killed, OOM)
        // leaves nothing to wait for once runc no longer runs the container.
        if (round % 4 === 3 && !(await monitorAlive(layout))) {
          const again = await readExitRecord(layout, oom).catch(() => undefined);
          if (again) return again;
          const gone = await this.runc.state(id).then(
            (s) => s.status === 'stopped',
            (err: unknown) => err instanceof RuncError && err.notFound,
          );
          if (gone) {
            this.log.warn({ id }, 'container monitor is gone without an exit record; reporting exit code 255');
            return { exitCode: 255, oomKilled: await oom().catch(() => false), finishedAt: nowRfc3339Nano() };
          }
        }
        await changes.wait(250);
      }
    } finally {
      changes.close();
    }
  }

  async delete(id: string): Promise<void> {
    const layout = bundleLayout(this.execRoot, id);
    const cgroupsPath = this.cgroupsPath(id);
    // Fast path (the service deletes leftovers before every start): the bundle is made before
    // runc state and removed only after it, so no bundle means runc has nothing either.
    if (!(await pathExists(layout.dir))) {
      await removeCgroup(cgroupsPath).catch((err: unknown) => {
        throw internal(`cannot remove container ${id} completely`, err);
      });
      return;
    }
    await this.removeEverything(id, layout, cgroupsPath);
  }

  async exec(id: string, input: ExecProcessInput): Promise<ExecProcess> {
    const layout = await this.existingLayout(id);
    const state = await this.state(id);
    if (state.status === 'paused') throw conflict(`Container ${id} is paused, unpause the container before exec`);
    if (state.status !== 'running') throw conflict(`Container ${id} is not running`);
    const config = JSON.parse(await readFile(layout.config, 'utf8')) as Spec;
    const meta = await readMeta(layout);
    const user = input.user ? await resolveUser(meta.rootfs, input.user) : undefined;
    const processSpec = buildExecProcess(config.process, input, user);

    const execId = randomBytes(8).toString('hex');
    const execLayout = monitorDirLayout(join(layout.execRoot, execId));
    await mkdir(execLayout.dir, { recursive: true });
    const processPath = join(execLayout.dir, 'process.json');
    let session: StdioSession | undefined;
    const removeDir = (): Promise<void> => rm(execLayout.dir, { recursive: true, force: true }).catch(() => undefined);
    try {
      await writeFile(processPath, JSON.stringify(processSpec));
      const monitor = await launchExecMonitor(
        this.common,
        { containerId: id, execId, layout: execLayout, processSpecPath: processPath, tty: input.tty, stdin: input.stdin },
        async () => {
          session = await openAttachSession(execLayout.attachSocket, { stdin: input.stdin });
        },
      );
      const stdio = session!;
      const exited = monitor.exited.finally(removeDir);
      exited.catch(() => undefined);
      return {
        pid: monitor.pid,
        stdio,
        resize: (size) => writeResize(execLayout, size, id),
        exited,
      };
    } catch (err) {
      session?.close();
      await removeDir();
      if (err instanceof MonitorError) throw runtimeFailure('exec', err.message, err);
      throw err instanceof BerthError ? err : internal(`exec in container ${id} failed`, err);
    }
  }

  async stats(id: string): Promise<ResourceStats> {
    await this.existingLayout(id);
    return readCgroupStats(this.cgroupsPath(id));
  }

  async top(id: string, psArgs = '-ef'): Promise<{ Titles: string[]; Processes: string[][] }> {
    const state = await this.state(id);
    if (state.status !== 'running' && state.status !== 'paused') throw conflict(`Container ${id} is not running`);
    const pids = new Set((await listCgroupPids(this.cgroupsPath(id))).map(Number));
    const args = psArgs.trim() === '' ? [] : psArgs.trim().split(/\s+/);
    let stdout: string;
    try {
      ({ stdout } = await execFileAsync('ps', args, { maxBuffer: 64 * 1024 * 1024 }));
    } catch (err) {
      throw internal(`Error running ps: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    return parsePs(stdout, pids);
  }

  async list(): Promise<{ id: string; status: RuntimeStatus; pid: number }[]> {
    const all = await this.runc.list().catch((err: unknown) => {
      // A runc root that does not exist yet just means no containers.
      if (err instanceof RuncError && /no such file or directory/.test(err.message)) return [];
      throw internal('cannot list containers', err);
    });
    return all.map((s) => ({ id: s.id, status: toStatus(s.status), pid: s.status === 'stopped' ? 0 : s.pid }));
  }

  /** The bundle of a container this runtime created; NotFound otherwise. */
  private async existingLayout(id: string): Promise<BundleLayout> {
    const layout = bundleLayout(this.execRoot, id);
    if (!(await pathExists(layout.meta))) throw notFound(`No such container: ${id}`);
    return layout;
  }

  /** Runs a runc subcommand and translates its errors into Berth's kinds. */
  private async runcCall<T>(id: string, op: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof RuncError)) throw err;
      if (err.notFound) throw notFound(`No such container: ${id}`, err);
      if (/not running|is stopped|cannot (kill|pause|resume) .*stopped/.test(err.message)) {
        throw conflict(`Container ${id} is not running`, err);
      }
      if (/not paused/.test(err.message)) throw conflict(`Container ${id} is not paused`, err);
      if (/already paused/.test(err.message)) throw conflict(`Container ${id} is already paused`, err);
      if (op === 'start' && /cannot start a container that has stopped|not in created state/.test(err.message)) {
        throw conflict(`Container ${id} cannot be started: ${err.message}`, err);
      }
      throw internal(`runc ${op} failed for container ${id}: ${err.message}`, err);
    }
  }

  /**
   * Deletes runc state, stops the monitor, removes the bundle and the cgroup. Each step
   * tolerates its object being already gone, so this serves delete (idempotent) and the
   * rollback of a failed create alike.
   */
  private async removeEverything(id: string, layout: BundleLayout, cgroupsPath: string): Promise<void> {
    const timer = phaseTimer();
    try {
      // conmon writes the exit file only after the init died; with its own pid namespace nothing
      // of the container runs any more, and runc's part of the delete is its state directory.
      if ((await pathExists(layout.exitFile)) && (await readMeta(layout).then((m) => m.ownPidNamespace === true, () => false))) {
        await this.runc.removeStoppedState(id);
      } else {
        await this.runc.delete(id, true);
      }
      timer.mark('runcDelete');
    } catch (err) {
      // Keep the bundle while runc still has state, so that a later delete retries (see delete).
      if (!(err instanceof RuncError && err.notFound)) throw internal(`cannot remove container ${id}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    const problems: unknown[] = [];
    // The monitor sees the init die, writes the exit file and quits; wait for it so nothing
    // writes into the bundle after we removed it, and so the exit record can be kept.
    await stopMonitor(layout);
    timer.mark('monitor');
    const record = await readExitRecord(layout, () => detectOomKill(cgroupsPath)).catch(() => undefined);
    if (record) this.rememberExit(id, record);
    timer.mark('exitRecord');
    try {
      await rm(layout.dir, { recursive: true, force: true });
    } catch (err) {
      problems.push(err);
    }
    timer.mark('rmBundle');
    try {
      await removeCgroup(cgroupsPath);
    } catch (err) {
      problems.push(err);
    }
    timer.mark('cgroup');
    if (TRACING) this.log.debug({ id, phases: timer.phases }, 'container deleted');
    if (problems.length > 0) throw internal(`cannot remove container ${id} completely`, problems[0]);
  }

  private rememberExit(id: string, record: ExitRecord): void {
    this.lastExits.set(id, record);
    // Only waiters already in flight need it; forget it soon so the map stays small.
    setTimeout(() => this.lastExits.delete(id), 60_000).unref();
  }
}

/** Waits for a bundle's conmon to exit by itself (up to ~5 s), then kills it. */
async function stopMonitor(layout: BundleLayout): Promise<void> {
  const pid = await readPidFile(layout.conmonPidFile);
  if (pid === undefined) return;
  for (let i = 0; i < 100; i++) {
    if (!(await monitorAlive(layout))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Sends a resize message through conmon's control fifo. */
async function writeResize(layout: BundleLayout, size: TerminalSize, id: string): Promise<void> {
  if (!Number.isInteger(size.height) || !Number.isInteger(size.width) || size.height < 0 || size.width < 0) {
    throw invalidArgument('invalid terminal size');
  }
  let fh;
  try {
    // Non-blocking: with no reader (monitor gone) open fails with ENXIO instead of hanging.
    fh = await open(layout.ctlFifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENXIO' || code === 'ENOENT') throw conflict(`Container ${id} is not running`, err);
    throw internal(`cannot resize container ${id}`, err);
  }
  try {
    // Message type 1 is a window resize: "<type> <height> <width>\n".
    await fh.write(`1 ${size.height} ${size.width}\n`);
  } catch (err) {
    // The monitor closed its end between our open and write: the process has just ended.
    if (errnoCode(err) === 'EPIPE') throw conflict(`Container ${id} is not running`, err);
    throw internal(`cannot resize container ${id}`, err);
  } finally {
    await fh.close();
  }
}

/**
 * The user-facing error for a failed `runc create`/`runc exec`, worded as dockerd words it.
 * A missing or non-executable binary is the user's mistake (InvalidArgument), as in dockerd.
 */
export function runtimeFailure(op: 'create' | 'exec', runcMessage: string, cause: unknown): BerthError {
  const userMistake = /executable file not found|no such file or directory|permission denied|not a directory/i.test(runcMessage);
  const message =
    op === 'create'
      ? `failed to create task for container: failed to create shim task: OCI runtime create failed: ${runcMessage}: unknown`
      : `OCI runtime exec failed: ${runcMessage}: unknown`;
  return new BerthError(userMistake ? 'InvalidArgument' : 'Internal', message, { cause });
}

function toStatus(status: string): RuntimeStatus {
  switch (status) {
    case 'running':
    case 'paused':
    case 'stopped':
      return status;
    default:
      return 'created'; // "creating" is over by the time anyone can ask
  }
}
