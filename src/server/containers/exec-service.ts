import type { Duplex } from 'node:stream';
import type { RequestContext } from '../../common/context.js';
import { conflict, invalidArgument, notFound } from '../../common/errors.js';
import { newId } from '../../common/ids.js';
import type { Logger } from '../../common/logging.js';
import type { ContainerRuntime, ExecProcess, TerminalSize } from '../../agent/runtime/types.js';
import type { EventPublisher } from '../events/types.js';
import type { ContainerService } from './container-service.js';
import type { ContainerRecord } from './model.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from './io-detach.js';
import { drainInput, endClient, pumpOutput, pumpStdin, writeToClient } from './io-pump.js';
import { encodeFrames } from './stdcopy.js';

export interface ServiceOptions {
  containers: ContainerService;
  runtime: ContainerRuntime;
  events: EventPublisher;
  logger: Logger;
}

/** The body of ExecCreate (POST /containers/{id}/exec), as the docker CLI and SDKs send it. */
export interface ExecCreateBody {
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  DetachKeys?: string;
  Tty?: boolean;
  ConsoleSize?: [number, number] | null;
  Env?: string[] | null;
  Cmd?: string[] | null;
  Privileged?: boolean;
  User?: string;
  WorkingDir?: string;
}

/** The body of ExecStart (POST /exec/{id}/start). */
export interface ExecStartBody {
  Detach?: boolean;
  Tty?: boolean;
  ConsoleSize?: [number, number] | null;
}

/** Docker's ExecInspect response. */
export interface ExecInspect {
  CanRemove: boolean;
  ContainerID: string;
  DetachKeys: string;
  ExitCode: number | null;
  ID: string;
  OpenStderr: boolean;
  OpenStdin: boolean;
  OpenStdout: boolean;
  ProcessConfig: { arguments: string[]; entrypoint: string; privileged: boolean; tty: boolean; user: string };
  Running: boolean;
  Pid: number;
}

/**
 * One exec instance. Lifecycle: created → started (running, pid set) → exited (exitCode set).
 * It can be started once. Records live in memory with their container and are dropped when
 * the container stops, as dockerd does; a Berth restart forgets them too.
 */
interface ExecRecord {
  id: string;
  tenant: string;
  containerId: string;
  containerName: string;
  containerImage: string;
  containerLabels: Record<string, string>;
  cmd: string[];
  env: string[];
  user: string;
  workingDir: string;
  tty: boolean;
  privileged: boolean;
  attachStdin: boolean;
  attachStdout: boolean;
  attachStderr: boolean;
  detachKeys: Buffer;
  detachKeysSpec: string;
  consoleSize?: TerminalSize;
  started: boolean;
  running: boolean;
  pid: number;
  exitCode: number | null;
  process?: ExecProcess;
  /** Resolves when the process was launched (or failed to launch). */
  launched: Promise<void>;
  markLaunched: () => void;
}

/** An exec start that passed validation; the route hijacks (unless detached) and calls `run`. */
export interface ExecStartPlan {
  readonly tty: boolean;
  readonly detach: boolean;
  /** Runs a detached exec: resolves once the process was launched. */
  runDetached(): Promise<void>;
  /** Runs an attached exec over the hijacked connection until the process's output ends. */
  run(client: Duplex): Promise<void>;
}

/** How long after the exit of its container an exec stays inspectable (the CLI asks for the exit code). */
const FORGET_AFTER_EXIT_MS = 5000;
const EXIT_DRAIN_MS = 2000;

/**
 * Docker's exec: ExecCreate, ExecStart (attached over a hijacked connection, or detached),
 * ExecResize and ExecInspect, with exec_create / exec_start / exec_die events.
 */
export class ExecService {
  private readonly containers: ContainerService;
  private readonly runtime: ContainerRuntime;
  private readonly events: EventPublisher;
  private readonly log: Logger;
  private readonly execs = new Map<string, ExecRecord>();
  private readonly byContainer = new Map<string, Set<string>>();

  constructor(options: ServiceOptions) {
    this.containers = options.containers;
    this.runtime = options.runtime;
    this.events = options.events;
    this.log = options.logger;
  }

  /** Ids of the exec instances of a container, for its inspect (ExecIDs; null when none, as Docker). */
  execIdsOf(containerId: string): string[] | null {
    const ids = this.byContainer.get(containerId);
    return ids && ids.size > 0 ? [...ids] : null;
  }

  async create(ctx: RequestContext, ref: string, body: ExecCreateBody): Promise<{ Id: string }> {
    if (typeof body !== 'object' || body === null) throw invalidArgument('invalid request body: a JSON object is required');
    const record = await this.containers.lookup(ctx, ref);
    const cmd = Array.isArray(body.Cmd) ? body.Cmd : [];
    if (cmd.length === 0 || cmd.some((arg) => typeof arg !== 'string')) throw invalidArgument('No exec command specified');
    if (body.Env !== undefined && body.Env !== null && (!Array.isArray(body.Env) || body.Env.some((e) => typeof e !== 'string'))) {
      throw invalidArgument('invalid Env: a list of strings is required');
    }
    const detachKeysSpec = body.DetachKeys ?? '';
    const detachKeys = parseDetachKeys(detachKeysSpec || DEFAULT_DETACH_KEYS);
    assertRunning(record, ref);

    const id = newId();
    let markLaunched: () => void = () => undefined;
    const launched = new Promise<void>((resolve) => {
      markLaunched = resolve;
    });
    const exec: ExecRecord = {
      id,
      tenant: ctx.tenant,
      containerId: record.id,
      containerName: record.name,
      containerImage: record.image,
      containerLabels: record.config.Labels,
      cmd,
      env: body.Env ?? [],
      user: body.User ?? '',
      workingDir: body.WorkingDir ?? '',
      tty: body.Tty === true,
      privileged: body.Privileged === true,
      attachStdin: body.AttachStdin === true,
      attachStdout: body.AttachStdout === true,
      attachStderr: body.AttachStderr === true,
      detachKeys,
      detachKeysSpec,
      ...(consoleSize(body.ConsoleSize) ? { consoleSize: consoleSize(body.ConsoleSize)! } : {}),
      started: false,
      running: false,
      pid: 0,
      exitCode: null,
      launched,
      markLaunched,
    };
    const known = this.byContainer.get(record.id);
    this.execs.set(id, exec);
    if (known) known.add(id);
    else {
      this.byContainer.set(record.id, new Set([id]));
      this.forgetOnExit(ctx, record.id);
    }
    this.publish(ctx, exec, `exec_create: ${cmd.join(' ')}`);
    return { Id: id };
  }

  async prepareStart(ctx: RequestContext, execId: string, body: ExecStartBody): Promise<ExecStartPlan> {
    const exec = this.get(ctx, execId);
    if (exec.running) throw conflict(`Error: Exec command ${exec.id} is already running`);
    if (exec.started) throw conflict(`Error: Exec command ${exec.id} has already run`);
    const record = await this.containers.lookup(ctx, exec.containerId);
    assertRunning(record, record.id);
    exec.started = true;
    const size = consoleSize(body?.ConsoleSize) ?? exec.consoleSize;
    if (size) exec.consoleSize = size;
    return {
      tty: exec.tty,
      detach: body?.Detach === true,
      runDetached: async () => {
        const process = await this.launch(ctx, exec);
        process.stdio.output.resume();
        process.stdio.stdin?.end();
      },
      run: (client) => this.runAttached(ctx, exec, client),
    };
  }

  private async runAttached(ctx: RequestContext, exec: ExecRecord, client: Duplex): Promise<void> {
    let process: ExecProcess;
    try {
      process = await this.launch(ctx, exec);
    } catch (err) {
      // dockerd reports a failed launch inside the stream, then the exit code through inspect.
      const text = `${err instanceof Error ? err.message : String(err)}\r\n`;
      await writeToClient(client, exec.tty ? Buffer.from(text) : encodeFrames('stdout', Buffer.from(text)));
      endClient(client);
      return;
    }
    const { stdio } = process;
    let stopStdin: (() => void) | undefined;
    if (exec.attachStdin && stdio.stdin) {
      stopStdin = pumpStdin(client, stdio.stdin, {
        detachKeys: exec.detachKeys,
        closeOnEof: true,
        onDetach: () => {
          stdio.close();
          endClient(client);
        },
      });
    } else {
      stdio.stdin?.end();
      drainInput(client);
    }
    client.once('close', () => stdio.close());
    void process.exited.then(() => setTimeout(() => stdio.close(), EXIT_DRAIN_MS).unref(), () => undefined);
    await pumpOutput(stdio.output, client, { tty: exec.tty, stdout: exec.attachStdout, stderr: exec.attachStderr });
    stopStdin?.();
    // The exit code must be known before the client, seeing EOF, asks for it.
    await Promise.race([process.exited.catch(() => undefined), delay(EXIT_DRAIN_MS)]);
    stdio.close();
    endClient(client);
  }

  /** Starts the process and wires its exit into the record. */
  private async launch(ctx: RequestContext, exec: ExecRecord): Promise<ExecProcess> {
    let process: ExecProcess;
    try {
      process = await this.runtime.exec(exec.containerId, {
        args: exec.cmd,
        env: exec.env,
        ...(exec.workingDir ? { cwd: exec.workingDir } : {}),
        ...(exec.user ? { user: exec.user } : {}),
        tty: exec.tty,
        stdin: exec.attachStdin,
        privileged: exec.privileged,
        ...(exec.tty && exec.consoleSize ? { consoleSize: exec.consoleSize } : {}),
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      exec.exitCode = /not found|no such file/i.test(message) ? 127 : 126;
      exec.markLaunched();
      throw err;
    }
    exec.process = process;
    exec.pid = process.pid;
    exec.running = true;
    exec.markLaunched();
    this.publish(ctx, exec, `exec_start: ${exec.cmd.join(' ')}`);
    if (exec.tty && exec.consoleSize) {
      await process.resize(exec.consoleSize).catch((err: unknown) => this.log.debug({ err, exec: exec.id }, 'initial exec resize failed'));
    }
    process.exited.then(
      (code) => {
        exec.exitCode = code;
        exec.running = false;
        exec.pid = 0;
        this.publish(ctx, exec, 'exec_die', { exitCode: String(code) });
      },
      (err: unknown) => {
        this.log.warn({ err, exec: exec.id }, 'lost track of an exec process');
        exec.exitCode = exec.exitCode ?? 126;
        exec.running = false;
        exec.pid = 0;
      },
    );
    return process;
  }

  async resize(ctx: RequestContext, execId: string, size: TerminalSize): Promise<void> {
    const exec = this.get(ctx, execId);
    if (!exec.started) throw conflict(`Exec ${exec.id} is not running`);
    // The CLI resizes right after start; give the launch a moment, as dockerd does.
    await Promise.race([exec.launched, delay(10_000)]);
    if (!exec.process || !exec.running) throw conflict(`Exec ${exec.id} is not running`);
    await exec.process.resize(size);
  }

  inspect(ctx: RequestContext, execId: string): ExecInspect {
    const exec = this.get(ctx, execId);
    return {
      CanRemove: false,
      ContainerID: exec.containerId,
      DetachKeys: exec.detachKeysSpec,
      ExitCode: exec.exitCode,
      ID: exec.id,
      OpenStderr: exec.attachStderr,
      OpenStdin: exec.attachStdin,
      OpenStdout: exec.attachStdout,
      ProcessConfig: {
        arguments: exec.cmd.slice(1),
        entrypoint: exec.cmd[0] ?? '',
        privileged: exec.privileged,
        tty: exec.tty,
        user: exec.user,
      },
      Running: exec.running,
      Pid: exec.pid,
    };
  }

  private get(ctx: RequestContext, execId: string): ExecRecord {
    const exec = this.execs.get(execId);
    // Another tenant's exec is "no such exec", never a hint that it exists.
    if (!exec || exec.tenant !== ctx.tenant) throw notFound(`No such exec instance: ${execId}`);
    return exec;
  }

  /** Drops a container's exec records a little after it stops (or is removed). */
  private forgetOnExit(ctx: RequestContext, containerId: string): void {
    void this.containers
      .wait(ctx, containerId, 'next-exit')
      .then((waiter) => waiter())
      .then(
        () => delay(FORGET_AFTER_EXIT_MS),
        () => undefined,
      )
      .then(() => {
        const ids = this.byContainer.get(containerId);
        this.byContainer.delete(containerId);
        for (const id of ids ?? []) this.execs.delete(id);
      });
  }

  private publish(ctx: RequestContext, exec: ExecRecord, action: string, extra: Record<string, string> = {}): void {
    this.events.publish(ctx, {
      Type: 'container',
      Action: action,
      Actor: {
        ID: exec.containerId,
        Attributes: { ...exec.containerLabels, execID: exec.id, image: exec.containerImage, name: exec.containerName, ...extra },
      },
    });
  }
}

/** dockerd's order and wording: not running names the id, paused names what the user typed. */
function assertRunning(record: ContainerRecord, ref: string): void {
  if (!record.state.Running) throw conflict(`Container ${record.id} is not running`);
  if (record.state.Paused) throw conflict(`Container ${ref} is paused, unpause the container before exec`);
  if (record.state.Restarting) throw conflict(`Container ${record.id} is restarting, wait until the container is running`);
}

function consoleSize(size: [number, number] | null | undefined): TerminalSize | undefined {
  if (!Array.isArray(size) || size.length !== 2) return undefined;
  const [height, width] = size;
  if (typeof height !== 'number' || typeof width !== 'number' || height <= 0 || width <= 0) return undefined;
  return { height, width };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
