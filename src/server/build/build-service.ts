import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { RequestContext } from '../../common/context.js';
import { invalidArgument } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { fileDigest, writeLayerDiff } from '../../agent/images/layer-diff.js';
import type { ContainerService } from '../containers/container-service.js';
import type { ContainerIoService } from '../containers/container-io-service.js';
import type { ContainerConfig } from '../containers/model.js';
import { applyChanges } from '../images/change.js';
import type { ImageConfigJson } from '../images/image-record.js';
import type { ImageService } from '../images/image-service.js';
import { familiarTagged, parseReference } from '../images/reference.js';
import type { ImageRuntimeConfig, ImageUsage, ResolvedImage } from '../images/types.js';
import type { Store } from '../store/store.js';
import { BuildCache, type DfBuildCache } from './build-cache.js';
import { receiveContext } from './build-context.js';
import { Build } from './builder.js';
import { Memo, type BuildOptions, type BuildOutput, type ImagePuller } from './types.js';
import { parseDockerfile } from './dockerfile.js';
import { existsBelowAs, RunStepRunner, runtimeMountPoint } from './run-step.js';
import { ScratchMounts } from './scratch-mounts.js';

export interface BuildServiceOptions {
  store: Store;
  images: ImageService;
  containers: ContainerService;
  containerIo: ContainerIoService;
  usage: ImageUsage;
  dataRoot: string;
  logger: Logger;
  /** Fetches base images; without it a missing base image is a clear 501. */
  pull?: ImagePuller;
  /** The tenant's container policy applied to a RUN step's HostConfig (limits, refusals). */
  admitRunHostConfig?: (tenant: string, hostConfig: Record<string, unknown>) => Record<string, unknown>;
}

export interface CommitOptions {
  container: string;
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  pause: boolean;
  changes: string[];
}

/**
 * `docker build` (the classic builder) and `docker commit`, and the build cache behind them.
 *
 * Layout: `<dataRoot>/build/tmp` holds contexts and step layer tars while a build runs;
 * `<dataRoot>/build/containers` the private overlay mounts of COPY/ADD/WORKDIR steps. Both
 * are emptied at start-up (`reconcile`), since no build outlives the process.
 */
export class BuildService {
  readonly cache: BuildCache;
  private readonly runs: RunStepRunner;
  private readonly scratch: ScratchMounts;
  private readonly tmpDir: string;
  private readonly imageSourceHashes = new Memo(1000);

  constructor(private readonly opts: BuildServiceOptions) {
    const root = join(opts.dataRoot, 'build');
    this.tmpDir = join(root, 'tmp');
    this.cache = new BuildCache(opts.store, opts.images, opts.usage, opts.logger);
    this.runs = new RunStepRunner(opts.containers, opts.containerIo, opts.store, opts.logger, opts.admitRunHostConfig);
    this.scratch = new ScratchMounts(root, (imageId) => opts.images.layerPathsOf(imageId), opts.logger);
  }

  /** After the container service's reconcile: removes what builds cut short by a crash left. */
  async reconcile(): Promise<void> {
    await this.runs.reconcile();
    await this.scratch.cleanup();
    await rm(this.tmpDir, { recursive: true, force: true });
  }

  /** Builds from a tar context; streams progress to `out`; returns the image id. */
  async build(ctx: RequestContext, source: Readable, options: BuildOptions, out: BuildOutput, signal: AbortSignal): Promise<string> {
    const tags = options.tags.map((t) => {
      const parsed = parseReference(t);
      if (parsed.digest !== undefined) throw invalidArgument(`invalid tag "${t}": a digest is not a tag`);
      return familiarTagged(parsed);
    });
    const shown: BuildOutput = options.quiet ? { stream: () => undefined, aux: out.aux } : out;
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    const context = await receiveContext(source, join(this.tmpDir, `context-${randomBytes(8).toString('hex')}`), options.dockerfile);
    try {
      const dockerfile = parseDockerfile(context.dockerfile);
      const build = new Build(
        ctx,
        { images: this.opts.images, cache: this.cache, runs: this.runs, scratch: this.scratch, tmpDir: this.tmpDir, imageSourceHashes: this.imageSourceHashes, ...(this.opts.pull ? { pull: this.opts.pull } : {}) },
        options,
        context.dir,
        dockerfile.escape,
        shown,
        signal,
      );
      const imageId = await build.run(dockerfile.instructions);
      const id = await this.opts.images.createImage(ctx, await this.opts.images.content.read(imageId), new Map(), tags);
      shown.aux(id);
      shown.stream(`Successfully built ${short(id)}\n`);
      for (const tag of tags) shown.stream(`Successfully tagged ${tag}\n`);
      if (options.quiet) out.stream(`${id}\n`);
      return id;
    } finally {
      await context.dispose();
    }
  }

  /** `docker commit`: the container's changes as a new top layer over its image. */
  async commit(ctx: RequestContext, options: CommitOptions): Promise<string> {
    const tags = options.repo ? [familiarTagged(parseReference(options.tag ? `${options.repo}:${options.tag}` : options.repo))] : [];
    const record = await this.opts.containers.lookup(ctx, options.container);
    const config = applyChanges(imageConfigOf(record.config), options.changes);
    const parent = await this.opts.images.storedConfig(record.imageId);
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    const layerTar = join(this.tmpDir, `commit-${randomBytes(8).toString('hex')}.tar`);
    const pause = options.pause && record.state.Running && !record.state.Paused;
    try {
      if (pause) await this.opts.containers.pause(ctx, record.id);
      let members: number;
      try {
        const lowerDirs = await this.opts.images.layerPathsOf(record.imageId);
        ({ members } = await writeLayerDiff(join(this.opts.containers.containerDir(record.id), 'upper'), layerTar, {
          skip: runtimeMountPoint,
          onlyCopiedUp: (path, st) => existsBelowAs(lowerDirs, path, st),
          idRange: await this.opts.containers.idRangeOf(record.id),
        }));
      } finally {
        if (pause) await this.opts.containers.unpause(ctx, record.id).catch((err: unknown) => this.opts.logger.warn({ err }, 'unpausing after commit failed'));
      }
      const created = new Date().toISOString();
      const newLayers = new Map<string, string>();
      if (members > 0) newLayers.set(await fileDigest(layerTar), layerTar);
      const image: ImageConfigJson = {
        architecture: parent.architecture ?? 'amd64',
        ...(parent.variant ? { variant: parent.variant } : {}),
        os: 'linux',
        ...(options.author ? { author: options.author } : {}),
        ...(options.comment ? { comment: options.comment } : {}),
        config,
        container: record.id,
        container_config: imageConfigOf(record.config),
        created,
        history: [
          ...(parent.history ?? []),
          {
            created,
            created_by: [record.path, ...record.args].join(' '),
            ...(options.author ? { author: options.author } : {}),
            ...(options.comment ? { comment: options.comment } : {}),
            ...(members === 0 ? { empty_layer: true } : {}),
          },
        ],
        rootfs: { type: 'layers', diff_ids: [...parent.rootfs.diff_ids, ...newLayers.keys()] },
      };
      return await this.opts.images.createImage(ctx, Buffer.from(JSON.stringify(image)), newLayers, tags);
    } finally {
      await rm(layerTar, { force: true });
    }
  }

  /** Intermediate images of the tenant's build cache, for the container service's resolver. */
  resolveIntermediate(ctx: RequestContext, ref: string): Promise<ResolvedImage | undefined> {
    return this.cache.resolve(ctx, ref);
  }

  diskUsage(ctx: RequestContext): Promise<DfBuildCache[]> {
    return this.cache.diskUsage(ctx);
  }

  prune(ctx: RequestContext, filters: Readonly<Record<string, readonly string[]>>): Promise<{ CachesDeleted: string[]; SpaceReclaimed: number }> {
    return this.cache.prune(ctx, filters);
  }
}

/** The image-config part of a container's config, as `docker commit` keeps it. */
function imageConfigOf(config: ContainerConfig): ImageRuntimeConfig {
  const out: ImageRuntimeConfig = {};
  if (config.Env.length > 0) out.Env = config.Env;
  if (config.Cmd !== null) out.Cmd = config.Cmd;
  if (config.Entrypoint !== null) out.Entrypoint = config.Entrypoint;
  if (config.WorkingDir) out.WorkingDir = config.WorkingDir;
  if (config.User) out.User = config.User;
  if (config.ExposedPorts && Object.keys(config.ExposedPorts).length > 0) out.ExposedPorts = config.ExposedPorts;
  if (config.Volumes && Object.keys(config.Volumes).length > 0) out.Volumes = config.Volumes;
  if (config.StopSignal) out.StopSignal = config.StopSignal;
  if (config.Labels && Object.keys(config.Labels).length > 0) out.Labels = config.Labels;
  const extra = config as ContainerConfig & { Healthcheck?: ImageRuntimeConfig['Healthcheck']; OnBuild?: string[]; Shell?: string[] };
  if (extra.Healthcheck) out.Healthcheck = extra.Healthcheck;
  if (extra.OnBuild && extra.OnBuild.length > 0) out.OnBuild = extra.OnBuild;
  if (extra.Shell && extra.Shell.length > 0) out.Shell = extra.Shell;
  return out;
}

const short = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);
