import { lstat } from 'node:fs/promises';
import { Readable, Transform, type Duplex, type TransformCallback } from 'node:stream';
import type { RequestContext } from '../../common/context.js';
import { conflict, errnoCode, invalidArgument, notFound } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { ContainerRuntime, ResourceStats, StdioSession } from '../../agent/runtime/types.js';
import { readLogs as defaultReadLogs, type LogEntry, type ReadLogsOptions } from '../../agent/runtime/logs.js';
import { resolveUser } from '../../agent/runtime/user.js';
import type { EventPublisher } from '../events/types.js';
import type { RootfsManager } from '../images/types.js';
import type { ContainerService } from './container-service.js';
import type { ContainerRecord } from './model.js';
import { absoluteContainerPath, goBase, hasTrailingDirMarker, resolveInContainer, type FileMount } from './archive-paths.js';
import { extractInto, packPath, pathStatOf, type ContainerPathStat } from './archive-tar.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from './io-detach.js';
import { clientGone, drainInput, endClient, pumpOutput, pumpStdin, writeToClient } from './io-pump.js';
import { dockerStats, emptyDockerStats, type DockerStats } from './io-stats.js';
import { encodeFrames } from './stdcopy.js';

export interface ContainerIoServiceOptions {
  containers: ContainerService;
  runtime: ContainerRuntime;
  rootfs: RootfsManager;
  events: EventPublisher;
  logger: Logger;
  /** The log reader (tests substitute one). */
  readLogs?: (path: string, options: ReadLogsOptions) => Readable;
  /** Interval between stats samples in ms (Docker: 1 s). */
  statsIntervalMs?: number;
}

export interface AttachOptions {
  stream: boolean;
  logs: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  detachKeys?: string;
}

/**
 * An attach that passed validation. The route hijacks the connection with the content type
 * `tty` implies, then hands the socket to `run`; `cancel` undoes the registration when the
 * route fails before that.
 */
export interface AttachPlan {
  readonly tty: boolean;
  run(client: Duplex): Promise<void>;
  cancel(): void;
}

export interface LogsOptions {
  follow: boolean;
  stdout: boolean;
  stderr: boolean;
  since?: number;
  until?: number;
  tail?: number | 'all';
  timestamps: boolean;
  signal?: AbortSignal;
}

/** A pending attach on a container that is not running yet; the before-start hook connects it. */
interface PendingAttach {
  stdin: boolean;
  connect: (session: StdioSession | undefined) => void;
  fail: (err: unknown) => void;
}

/** How long output may keep flowing after the process exited before the stream is cut. */
const EXIT_DRAIN_MS = 2000;

/**
 * Streams and files of containers: attach, logs, resize, top, stats, archive (docker cp),
 * export and changes. Lifecycle stays with ContainerService; this service only reads records
 * through `lookup` and never writes them.
 *
 * Attach lifecycle: prepareAttach validates and, for a container that is not running, registers
 * a pending session; the before-start hook (registered in the constructor) connects pending
 * sessions between the runtime's create and start, so `docker run` and `docker start -a` see
 * all output. A session ends when the process's output ends (it exited), when the client leaves
 * or detaches, or when the container is removed before it ran.
 */
export class ContainerIoService {
  private readonly containers: ContainerService;
  private readonly runtime: ContainerRuntime;
  private readonly rootfs: RootfsManager;
  private readonly events: EventPublisher;
  private readonly log: Logger;
  private readonly readLogs: (path: string, options: ReadLogsOptions) => Readable;
  private readonly statsIntervalMs: number;
  private readonly pending = new Map<string, Set<PendingAttach>>();

  constructor(options: ContainerIoServiceOptions) {
    this.containers = options.containers;
    this.runtime = options.runtime;
    this.rootfs = options.rootfs;
    this.events = options.events;
    this.log = options.logger;
    this.readLogs = options.readLogs ?? defaultReadLogs;
    this.statsIntervalMs = options.statsIntervalMs ?? 1000;
    this.containers.addBeforeStartHook((_ctx, record) => this.connectPending(record));
  }

  // ---------------------------------------------------------------- attach

  async prepareAttach(ctx: RequestContext, ref: string, options: AttachOptions): Promise<AttachPlan> {
    const record = await this.containers.lookup(ctx, ref);
    const detachKeys = parseDetachKeys(options.detachKeys || DEFAULT_DETACH_KEYS);
    if (record.state.Restarting) throw conflict('You cannot attach to a restarting container, wait until it is running');
    const tty = record.config.Tty;
    const wantStdin = options.stdin && record.config.OpenStdin;

    // Register before answering, so a start that follows our 101 finds the session.
    let pendingEntry: PendingAttach | undefined;
    let connected: Promise<StdioSession | undefined> | undefined;
    if (options.stream && !record.state.Running) {
      connected = new Promise<StdioSession | undefined>((resolve, reject) => {
        pendingEntry = { stdin: wantStdin, connect: resolve, fail: reject };
      });
      const set = this.pending.get(record.id) ?? new Set<PendingAttach>();
      set.add(pendingEntry!);
      this.pending.set(record.id, set);
    }
    const unregister = (): void => {
      if (!pendingEntry) return;
      const set = this.pending.get(record.id);
      set?.delete(pendingEntry);
      if (set?.size === 0) this.pending.delete(record.id);
      pendingEntry.connect(undefined);
    };

    return {
      tty,
      cancel: unregister,
      run: async (client: Duplex) => {
        try {
          await this.runAttach(ctx, record, options, { tty, wantStdin, detachKeys, connected, unregister }, client);
        } catch (err) {
          unregister();
          this.log.warn({ err, id: record.id }, 'attach session failed');
          await writeToClient(client, tty ? Buffer.from(`${errorText(err)}\r\n`) : encodeFrames('systemerr', Buffer.from(errorText(err))));
          endClient(client);
        }
      },
    };
  }

  private async runAttach(
    ctx: RequestContext,
    record: ContainerRecord,
    options: AttachOptions,
    plan: { tty: boolean; wantStdin: boolean; detachKeys: Buffer; connected?: Promise<StdioSession | undefined>; unregister: () => void },
    client: Duplex,
  ): Promise<void> {
    const output = { tty: plan.tty, stdout: options.stdout, stderr: options.stderr };
    if (options.logs) {
      const replay = this.readLogs(record.logPath, { follow: false, stdout: options.stdout, stderr: options.stderr, timestamps: false });
      await pumpOutput(replay, client, output);
    }
    if (!options.stream) {
      endClient(client);
      return;
    }

    let session: StdioSession | undefined;
    let exitWatch: Promise<unknown>;
    if (plan.connected) {
      // Not running yet: wait for the next start, the container's removal, or the client leaving.
      const removed = this.containers.wait(ctx, record.id, 'removed').then((waiter) => waiter());
      const gone = new Promise<undefined>((resolve) => client.once('close', () => resolve(undefined)));
      if (!plan.wantStdin) drainInput(client);
      session = await Promise.race([plan.connected, removed.then(() => undefined), gone]);
      plan.unregister();
      if (!session) {
        endClient(client);
        return;
      }
      // Registered before the process runs, so "next exit" is this run's exit.
      exitWatch = this.containers.wait(ctx, record.id, 'next-exit').then((waiter) => waiter());
    } else {
      session = await this.runtime.attach(record.id, { stdin: plan.wantStdin });
      exitWatch = this.containers.wait(ctx, record.id, 'not-running').then((waiter) => waiter());
      if (!plan.wantStdin) drainInput(client);
    }
    this.publish(ctx, record, 'attach');

    const live = session;
    let stopStdin: (() => void) | undefined;
    if (plan.wantStdin && live.stdin) {
      stopStdin = pumpStdin(client, live.stdin, {
        detachKeys: plan.detachKeys,
        closeOnEof: record.config.StdinOnce,
        onDetach: () => {
          this.publish(ctx, record, 'detach');
          live.close();
          endClient(client);
        },
      });
    } else if (plan.wantStdin) {
      drainInput(client);
    }
    client.once('close', () => live.close());
    // The output ends when the process exits; should the runtime keep it open, cut it after a grace period.
    void exitWatch.then(() => {
      setTimeout(() => live.close(), EXIT_DRAIN_MS).unref();
    });
    await pumpOutput(live.output, client, output);
    stopStdin?.();
    live.close();
    if (!clientGone(client)) endClient(client);
  }

  /** The before-start hook: gives every pending attach of this container its session. */
  private async connectPending(record: ContainerRecord): Promise<void> {
    const set = this.pending.get(record.id);
    if (!set || set.size === 0) return;
    this.pending.delete(record.id);
    await Promise.all(
      [...set].map(async (entry) => {
        try {
          entry.connect(await this.runtime.attach(record.id, { stdin: entry.stdin }));
        } catch (err) {
          entry.fail(err);
        }
      }),
    );
  }

  // ---------------------------------------------------------------- logs

  /** The log as a byte stream: framed for a non-TTY container, raw for a TTY one. */
  async logs(ctx: RequestContext, ref: string, options: LogsOptions): Promise<{ tty: boolean; stream: Readable }> {
    if (!options.stdout && !options.stderr) throw invalidArgument('You must choose at least one stream');
    const record = await this.containers.lookup(ctx, ref);
    if (record.hostConfig.LogConfig.Type === 'none') throw invalidArgument('configured logging driver does not support reading');
    const tty = record.config.Tty;
    let exited: Promise<unknown> | undefined;
    const follow = options.follow && (record.state.Running || record.state.Restarting);
    if (follow) exited = this.containers.wait(ctx, record.id, 'not-running').then((waiter) => waiter());
    const entries = this.readLogs(record.logPath, {
      follow,
      stdout: options.stdout,
      stderr: options.stderr,
      timestamps: options.timestamps,
      ...(options.since !== undefined ? { since: options.since } : {}),
      ...(options.until !== undefined ? { until: options.until } : {}),
      ...(options.tail !== undefined ? { tail: options.tail } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(exited ? { exited } : {}),
    });
    const format = new LogFormatter({ tty, timestamps: options.timestamps });
    entries.on('error', (err) => format.destroy(err));
    format.on('close', () => entries.destroy());
    return { tty, stream: entries.pipe(format) };
  }

  // ---------------------------------------------------------------- resize / top / stats

  async resize(ctx: RequestContext, ref: string, size: { height: number; width: number }): Promise<void> {
    const record = await this.containers.lookup(ctx, ref);
    if (!record.state.Running) throw conflict(`Container ${record.id} is not running`);
    await this.runtime.resize(record.id, size);
  }

  async top(ctx: RequestContext, ref: string, psArgs: string | undefined): Promise<{ Titles: string[]; Processes: string[][] }> {
    const record = await this.containers.lookup(ctx, ref);
    if (!record.state.Running) throw conflict(`Container ${record.id} is not running`);
    if (record.state.Restarting) throw conflict(`Container ${record.id} is restarting, wait until the container is running`);
    return this.runtime.top(record.id, psArgs || undefined);
  }

  /** One stats object: for a running container two samples apart, so CPU % can be computed (unless oneShot). */
  async statsOnce(ctx: RequestContext, ref: string, options: { oneShot: boolean; signal?: AbortSignal }): Promise<DockerStats> {
    const record = await this.containers.lookup(ctx, ref);
    if (!record.state.Running || record.state.Restarting) return emptyDockerStats(record);
    try {
      const first = await this.runtime.stats(record.id);
      if (options.oneShot) return dockerStats(record, first, undefined);
      await delay(this.statsIntervalMs, options.signal);
      const second = await this.runtime.stats(record.id);
      return dockerStats(record, second, first);
    } catch (err) {
      if (!(await this.stillRunning(ctx, record.id))) return emptyDockerStats(record);
      throw err;
    }
  }

  /**
   * Stats every interval as object-mode DockerStats until the client leaves (signal) or the
   * container stops; a container that is not running gets empty stats, as dockerd sends.
   */
  async statsStream(ctx: RequestContext, ref: string, signal: AbortSignal): Promise<Readable> {
    const record = await this.containers.lookup(ctx, ref);
    const interval = this.statsIntervalMs;
    const runtime = this.runtime;
    const stillRunning = (): Promise<boolean> => this.stillRunning(ctx, record.id);
    async function* samples(): AsyncGenerator<DockerStats> {
      let previous: ResourceStats | undefined;
      let running = record.state.Running && !record.state.Restarting;
      while (!signal.aborted) {
        if (running) {
          try {
            const sample = await runtime.stats(record.id);
            yield dockerStats(record, sample, previous);
            previous = sample;
          } catch (err) {
            running = await stillRunning();
            if (running) throw err;
            return;
          }
        } else {
          yield emptyDockerStats(record);
        }
        await delay(interval, signal);
      }
    }
    return Readable.from(samples(), { objectMode: true });
  }

  private async stillRunning(ctx: RequestContext, id: string): Promise<boolean> {
    try {
      return (await this.containers.lookup(ctx, id)).state.Running;
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------- archive (docker cp)

  async statPath(ctx: RequestContext, ref: string, path: string): Promise<ContainerPathStat> {
    const record = await this.containers.lookup(ctx, ref);
    return (await this.statResolved(record, ref, path)).stat;
  }

  async archivePath(ctx: RequestContext, ref: string, path: string): Promise<{ stat: ContainerPathStat; tar: Readable }> {
    const record = await this.containers.lookup(ctx, ref);
    const { stat, hostPath, abs } = await this.statResolved(record, ref, path);
    const tar = packPath(hostPath, goBase(abs), await this.rootfs.idRangeOf(record.id));
    this.publish(ctx, record, 'archive-path');
    return { stat, tar };
  }

  async extractToDir(
    ctx: RequestContext,
    ref: string,
    path: string,
    content: Readable,
    options: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean },
  ): Promise<void> {
    const record = await this.containers.lookup(ctx, ref);
    const root = await this.rootfs.mount(record.id);
    const mounts = fileMounts(record);
    const abs = absoluteContainerPath(path);
    // The destination's last element is followed too: extracting "into" a link to a directory is allowed.
    const resolved = await resolveInContainer(root, abs, { followLast: true, mounts });
    const st = await lstat(resolved.hostPath).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') throw notFound(`Could not find the file ${path} in container ${ref}`);
      throw err;
    });
    if (!st.isDirectory()) throw invalidArgument('extraction point is not a directory');
    if (record.hostConfig.ReadonlyRootfs) throw invalidArgument('container rootfs is marked read-only');
    const owner = options.copyUIDGID ? await resolveUser(root, record.config.User) : undefined;
    await extractInto(content, {
      root,
      destination: resolved.containerPath,
      noOverwriteDirNonDir: options.noOverwriteDirNonDir,
      ...(owner ? { owner: { uid: owner.uid, gid: owner.gid } } : {}),
      mounts,
      idRange: await this.rootfs.idRangeOf(record.id),
    });
    this.publish(ctx, record, 'extract-to-dir');
  }

  private async statResolved(record: ContainerRecord, ref: string, path: string): Promise<{ stat: ContainerPathStat; hostPath: string; abs: string }> {
    const root = await this.rootfs.mount(record.id);
    const mounts = fileMounts(record);
    const abs = absoluteContainerPath(path);
    const resolved = await resolveInContainer(root, abs, { followLast: hasTrailingDirMarker(abs), mounts });
    let st;
    try {
      st = await lstat(resolved.hostPath, { bigint: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') throw notFound(`Could not find the file ${path} in container ${ref}`);
      throw err;
    }
    let linkTarget = '';
    if (st.isSymbolicLink()) linkTarget = (await resolveInContainer(root, resolved.containerPath, { followLast: true, mounts })).containerPath;
    return { stat: pathStatOf(goBase(abs), st, linkTarget), hostPath: resolved.hostPath, abs };
  }

  // ---------------------------------------------------------------- export / changes

  async export(ctx: RequestContext, ref: string): Promise<Readable> {
    const record = await this.containers.lookup(ctx, ref);
    await this.rootfs.mount(record.id);
    const tar = await this.rootfs.exportTar(record.id);
    this.publish(ctx, record, 'export');
    return tar;
  }

  async changes(ctx: RequestContext, ref: string): Promise<{ Path: string; Kind: 0 | 1 | 2 }[]> {
    const record = await this.containers.lookup(ctx, ref);
    await this.rootfs.mount(record.id);
    return hideMountTargets(await this.rootfs.changes(record.id), fileMounts(record));
  }

  private publish(ctx: RequestContext, record: ContainerRecord, action: string): void {
    this.events.publish(ctx, {
      Type: 'container',
      Action: action,
      Actor: { ID: record.id, Attributes: { ...record.config.Labels, image: record.image, name: record.name } },
    });
  }
}

/** The files Berth binds into every container; `docker cp` reads and writes them at their source. */
function fileMounts(record: ContainerRecord): FileMount[] {
  return [
    { destination: '/etc/hostname', source: record.hostnamePath },
    { destination: '/etc/hosts', source: record.hostsPath },
    { destination: '/etc/resolv.conf', source: record.resolvConfPath },
  ];
}

/**
 * The runtime creates empty files in the writable layer to bind /etc/hosts and friends onto;
 * dockerd keeps those in an init layer, so `docker diff` never shows them. Drop them, and a
 * parent directory reported changed only because of them.
 */
export function hideMountTargets(changes: { Path: string; Kind: 0 | 1 | 2 }[], mounts: FileMount[]): { Path: string; Kind: 0 | 1 | 2 }[] {
  const targets = new Set(mounts.map((m) => m.destination));
  const kept = changes.filter((c) => !(targets.has(c.Path) && c.Kind !== 2));
  const parents = new Set(mounts.map((m) => m.destination.slice(0, m.destination.lastIndexOf('/')) || '/'));
  return kept.filter((c) => !(c.Kind === 0 && parents.has(c.Path) && !kept.some((o) => o.Path.startsWith(`${c.Path}/`))));
}

/** Formats log entries for the wire: optional "<time> " prefix, then framing unless TTY. */
class LogFormatter extends Transform {
  private readonly tty: boolean;
  private readonly timestamps: boolean;
  constructor(options: { tty: boolean; timestamps: boolean }) {
    super({ writableObjectMode: true });
    this.tty = options.tty;
    this.timestamps = options.timestamps;
  }

  override _transform(entry: LogEntry, _encoding: BufferEncoding, callback: TransformCallback): void {
    const data = this.timestamps ? Buffer.concat([Buffer.from(`${entry.time} `), entry.data]) : entry.data;
    callback(null, this.tty ? data : encodeFrames(entry.stream, data));
  }
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
