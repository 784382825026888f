import { randomBytes } from 'node:crypto';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { RequestContext } from '../../common/context.js';
import { isKind } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { Store } from '../store/store.js';
import { HOST_SCOPE } from '../images/content-refs.js';
import { writeLayerDiff } from '../../agent/images/layer-diff.js';
import type { ContainerService } from '../containers/container-service.js';
import type { ContainerIoService } from '../containers/container-io-service.js';
import { FrameDecoder } from '../containers/stdcopy.js';

/**
 * Runs one RUN step in an ordinary Berth container (the same hardened spec, cgroups, logs
 * and clean-up as `docker run`) and turns what it changed into a layer tar.
 *
 * Lifecycle: create from the step's parent image → start → stream its output → wait →
 * (exit 0) diff the writable layer → remove the container, whatever happened, so a failed
 * or cancelled step leaves no container, mount or runc state behind.
 */
export interface RunStepInput {
  imageId: string;
  cmd: string[];
  env: string[];
  user: string;
  workingDir: string;
  /** Lower dirs of the parent image, top first (to tell a copy-up from a change). */
  lowerDirs: string[];
  /** Where to write the layer diff. */
  layerTar: string;
  onStart(containerId: string): void;
  onOutput(text: string): void;
  signal?: AbortSignal;
}

export interface RunStepResult {
  containerId: string;
  exitCode: number;
  /** Members of the layer (0: nothing changed). */
  members: number;
}

/** Paths the runtime makes as mount points; dockerd keeps them in an init layer, never in an image. */
const RUNTIME_DIRS = new Set(['proc', 'sys', 'dev']);
const RUNTIME_FILES = new Set(['etc/hosts', 'etc/hostname', 'etc/resolv.conf', '.dockerenv']);

/** Leaves the runtime's mount points out of a container's diff. */
export function runtimeMountPoint(path: string, isDirectory: boolean, size: number): boolean {
  return isDirectory ? RUNTIME_DIRS.has(path) : RUNTIME_FILES.has(path) && size === 0;
}

/**
 * Store kind of the record that owns a RUN step's container while it exists (the reserved host scope:
 * value names the tenant), written before the container is created and deleted after it is
 * removed, so start-up can remove the containers of builds a crash cut short.
 */
const BUILD_STEP_KIND = 'build-step';

interface BuildStepRecord {
  tenant: string;
  /** The container's name: known before it is created. */
  name: string;
}

export class RunStepRunner {
  constructor(
    private readonly containers: ContainerService,
    private readonly containerIo: ContainerIoService,
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly admitHostConfig: (tenant: string, hostConfig: Record<string, unknown>) => Record<string, unknown> = (_tenant, hostConfig) => hostConfig,
  ) {}

  /** Removes the containers of RUN steps whose build ended with the process that ran it. */
  async reconcile(): Promise<void> {
    for (const { id, value } of await this.store.list<BuildStepRecord>(HOST_SCOPE, BUILD_STEP_KIND)) {
      const ctx: RequestContext = { tenant: value.tenant, requestId: 'build-reconcile' };
      try {
        await this.containers.remove(ctx, value.name, { force: true, volumes: true });
        this.logger.info({ name: value.name }, 'removed the container of an interrupted build step');
      } catch (err) {
        if (!isKind(err, 'NotFound')) {
          this.logger.error({ err, name: value.name }, 'removing the container of an interrupted build step failed');
          continue;
        }
      }
      await this.store.delete(HOST_SCOPE, BUILD_STEP_KIND, id).catch(() => undefined);
    }
  }

  async run(ctx: RequestContext, input: RunStepInput): Promise<RunStepResult> {
    const stepId = randomBytes(8).toString('hex');
    const name = `buildstep_${stepId}`;
    await this.store.create<BuildStepRecord>(HOST_SCOPE, BUILD_STEP_KIND, { id: stepId, value: { tenant: ctx.tenant, name } });
    let id: string;
    try {
      id = await this.createContainer(ctx, name, input);
    } catch (err) {
      await this.store.delete(HOST_SCOPE, BUILD_STEP_KIND, stepId).catch(() => undefined);
      throw err;
    }
    try {
      return await this.runContainer(ctx, id, input);
    } finally {
      // The record goes with the container; when removal failed it stays for start-up.
      const gone = await this.containers.lookup(ctx, id).then(
        () => false,
        (err: unknown) => isKind(err, 'NotFound'),
      );
      if (gone) await this.store.delete(HOST_SCOPE, BUILD_STEP_KIND, stepId).catch(() => undefined);
    }
  }

  private async createContainer(ctx: RequestContext, name: string, input: RunStepInput): Promise<string> {
    const { Id: id } = await this.containers.create(ctx, name, {
      Image: input.imageId,
      Cmd: input.cmd,
      Entrypoint: [''],
      Env: input.env,
      User: input.user,
      WorkingDir: input.workingDir,
      Healthcheck: { Test: ['NONE'] },
      HostConfig: this.admitHostConfig(ctx.tenant, {}),
    });
    return id;
  }

  private async runContainer(ctx: RequestContext, id: string, input: RunStepInput): Promise<RunStepResult> {
    const kill = (): void => {
      this.containers.kill(ctx, id, 'SIGKILL').catch(() => undefined);
    };
    input.signal?.addEventListener('abort', kill);
    try {
      input.onStart(id);
      await this.containers.start(ctx, id);
      await this.pumpOutput(ctx, id, input.onOutput);
      const { StatusCode } = await (await this.containers.wait(ctx, id, 'not-running'))();
      if (input.signal?.aborted) throw input.signal.reason ?? new Error('build cancelled');
      if (StatusCode !== 0) return { containerId: id, exitCode: StatusCode, members: 0 };
      const upper = join(this.containers.containerDir(id), 'upper');
      const { members } = await writeLayerDiff(upper, input.layerTar, {
        skip: runtimeMountPoint,
        onlyCopiedUp: (path, st) => existsBelowAs(input.lowerDirs, path, st),
        idRange: await this.containers.idRangeOf(id),
      });
      return { containerId: id, exitCode: 0, members };
    } finally {
      input.signal?.removeEventListener('abort', kill);
      await this.containers.remove(ctx, id, { force: true, volumes: true }).catch((err: unknown) => {
        this.logger.error({ err, id }, 'removing an intermediate build container failed');
      });
    }
  }

  private async pumpOutput(ctx: RequestContext, id: string, onOutput: (text: string) => void): Promise<void> {
    const { stream } = await this.containerIo.logs(ctx, id, { follow: true, stdout: true, stderr: true, timestamps: false });
    const frames = new FrameDecoder();
    const text = new StringDecoder('utf8');
    for await (const chunk of stream) {
      for (const frame of frames.push(chunk as Buffer)) {
        const out = text.write(frame.data);
        if (out !== '') onOutput(out);
      }
    }
    const rest = text.end();
    if (rest !== '') onOutput(rest);
  }
}

/** Whether `path` is in the lower layers with the same owner and mode (so the upper copy is a copy-up). */
export async function existsBelowAs(lowerDirs: readonly string[], path: string, st: { mode: number; uid: number; gid: number }): Promise<boolean> {
  for (const lower of lowerDirs) {
    try {
      const below = await lstat(join(lower, path));
      if (below.isCharacterDevice() && below.rdev === 0) return false; // whited out there
      return below.mode === st.mode && below.uid === st.uid && below.gid === st.gid;
    } catch {
      // Not in this layer; look further down.
    }
  }
  return false;
}
