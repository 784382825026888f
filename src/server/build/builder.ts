import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { RequestContext } from '../../common/context.js';
import { sha256Digest } from '../../agent/images/digest.js';
import { fileDigest } from '../../agent/images/layer-diff.js';
import { BerthError, invalidArgument, isKind, notImplemented } from '../../common/errors.js';
import type { ImageConfigJson } from '../images/image-record.js';
import type { ImageService } from '../images/image-service.js';
import type { ImageRuntimeConfig } from '../images/types.js';
import { resolveInContainer } from '../containers/archive-paths.js';
import { BuildCache } from './build-cache.js';
import { hashSources } from './build-context.js';
import { applyConfigStep, commandOf, CONFIG_ONLY, shellOf } from './config-steps.js';
import { copyInto, resolveChown, resolveSources } from './copy.js';
import { parseInstruction, type Instruction } from './dockerfile.js';
import type { RunStepRunner } from './run-step.js';
import { StepFailed, type BuildOptions, type BuildOutput, type ImagePuller, type Memo } from './types.js';
import type { ScratchMounts } from './scratch-mounts.js';
import { expandWord, keyValuePairs, splitWords, type Lookup } from './shell-words.js';

export interface BuilderDeps {
  images: ImageService;
  cache: BuildCache;
  runs: RunStepRunner;
  scratch: ScratchMounts;
  /** Where step layer tars are written while a step runs. */
  tmpDir: string;
  /** Digests of COPY --from sources, by image and sources (shared by builds). */
  imageSourceHashes: Memo;
  pull?: ImagePuller;
}

/** Args every build knows without an ARG line; they reach RUN's environment only. */
const PREDEFINED_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

const HOST_ARCH = process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;

/** The config of `FROM scratch`: no layers, no time, so its id (and every cache key on it) is stable. */
const SCRATCH_CONFIG: ImageConfigJson = { architecture: HOST_ARCH, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] } };

interface Stage {
  name?: string;
  instructions: Instruction[];
  from: Instruction;
}

interface StageState {
  imageId: string;
  image: ImageConfigJson;
  config: ImageRuntimeConfig;
  cmdSet: boolean;
  author?: string;
  /** ARGs declared in this stage, with their values (undefined: declared, no value). */
  args: Map<string, string | undefined>;
  scratch: boolean;
}

/**
 * One classic build: stages in order, each instruction a step whose result is an image held
 * by the build cache (so an unchanged step is not run again), ending in the final image.
 *
 * Output follows dockerd's classic builder: `Step N/M : <instruction>`, ` ---> Using cache`,
 * ` ---> Running in <id>`, the step's output, `Removing intermediate container <id>`,
 * ` ---> <id>`, and at the end `Successfully built <id>` / `Successfully tagged <name>`.
 */
export class Build {
  private step = 0;
  private total = 0;
  private readonly stages: { name?: string; imageId: string }[] = [];
  private readonly metaArgs = new Map<string, string | undefined>();
  private readonly usedArgs = new Set<string>();
  private scratchId: string | undefined;

  constructor(
    private readonly ctx: RequestContext,
    private readonly deps: BuilderDeps,
    private readonly options: BuildOptions,
    private readonly contextDir: string,
    private readonly escape: string,
    private readonly out: BuildOutput,
    private readonly signal: AbortSignal,
  ) {}

  /** Runs the build; returns the final image's id (untagged; the caller records it). */
  async run(instructions: Instruction[]): Promise<string> {
    const { meta, stages } = this.splitStages(instructions);
    const targetIndex = this.targetIndex(stages);
    const built = stages.slice(0, targetIndex + 1);
    if (Object.keys(this.options.labels).length > 0) {
      const labels = Object.entries(this.options.labels).map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(' ');
      built[built.length - 1]!.instructions.push(parseInstruction(`LABEL ${labels}`, 0));
    }
    this.total = meta.length + built.reduce((sum, stage) => sum + 1 + stage.instructions.length, 0);

    for (const arg of meta) {
      this.header(arg);
      for (const [name, value] of keyValuePairs('ARG', arg.args, (n) => this.metaValue(n), this.escape, true)) {
        this.metaArgs.set(name, value);
        this.usedArgs.add(name);
      }
    }
    let state: StageState | undefined;
    for (const stage of built) {
      state = await this.runStage(stage);
      this.stages.push({ ...(stage.name !== undefined ? { name: stage.name } : {}), imageId: state.imageId });
    }
    if (state === undefined || state.scratch) throw invalidArgument('No image was generated. Is your Dockerfile empty?');
    const unused = Object.keys(this.options.buildArgs).filter((name) => !this.usedArgs.has(name) && !PREDEFINED_ARGS.has(name));
    if (unused.length > 0) this.out.stream(`[Warning] One or more build-args [${unused.sort().join(' ')}] were not consumed\n`);
    return state.imageId;
  }

  // ---- stages ------------------------------------------------------------------------------

  private splitStages(instructions: Instruction[]): { meta: Instruction[]; stages: Stage[] } {
    const meta: Instruction[] = [];
    const stages: Stage[] = [];
    for (const instruction of instructions) {
      if (instruction.keyword === 'FROM') {
        const words = splitWords(instruction.args, this.escape);
        let name: string | undefined;
        if (words.length === 3 && words[1]!.toUpperCase() === 'AS') name = words[2]!.toLowerCase();
        else if (words.length !== 1) throw invalidArgument(`dockerfile parse error on line ${instruction.line}: FROM requires either one or three arguments`);
        if (name !== undefined && !/^[a-z][a-z0-9_.-]*$/.test(name)) throw invalidArgument(`invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`);
        if (name !== undefined && stages.some((s) => s.name === name)) throw invalidArgument(`duplicate name ${name}`);
        stages.push({ ...(name !== undefined ? { name } : {}), instructions: [], from: instruction });
      } else if (stages.length === 0) {
        if (instruction.keyword !== 'ARG') throw invalidArgument(`dockerfile parse error on line ${instruction.line}: no build stage in current context`);
        meta.push(instruction);
      } else {
        stages[stages.length - 1]!.instructions.push(instruction);
      }
    }
    if (stages.length === 0) throw invalidArgument('the Dockerfile has no FROM instruction: no build stage in current context');
    return { meta, stages };
  }

  private targetIndex(stages: Stage[]): number {
    const target = this.options.target;
    if (target === undefined || target === '') return stages.length - 1;
    const index = stages.findIndex((s) => s.name === target.toLowerCase());
    if (index === -1) throw invalidArgument(`failed to reach build target ${target} in Dockerfile`);
    return index;
  }

  private metaValue(name: string): string | undefined {
    if (!this.metaArgs.has(name)) return undefined;
    const given = this.options.buildArgs[name];
    return given !== undefined && given !== null ? given : this.metaArgs.get(name);
  }

  private async runStage(stage: Stage): Promise<StageState> {
    this.header(stage.from);
    const state = await this.from(stage.from);
    this.out.stream(` ---> ${short(state.imageId)}\n`);
    const triggers = state.config.OnBuild ?? [];
    if (triggers.length > 0) {
      delete state.config.OnBuild;
      this.out.stream(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}\n`);
      for (const trigger of triggers) {
        const instruction = parseInstruction(trigger, stage.from.line);
        if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(instruction.keyword)) throw invalidArgument(`${instruction.keyword} isn't allowed as an ONBUILD trigger`);
        await this.dispatch(state, instruction);
      }
    }
    for (const instruction of stage.instructions) {
      this.throwIfCancelled();
      this.header(instruction);
      await this.dispatch(state, instruction);
    }
    return state;
  }

  private async from(instruction: Instruction): Promise<StageState> {
    const words = splitWords(instruction.args, this.escape);
    const ref = expandWord(words[0]!, (n) => this.metaValue(n), this.escape);
    if (ref === '') throw invalidArgument('base name (${...}) should not be blank');
    const platform = instruction.flags.platform !== undefined ? expandWord(instruction.flags.platform, (n) => this.metaValue(n), this.escape) : this.options.platform;
    const fresh = (imageId: string, image: ImageConfigJson, scratch: boolean): StageState => ({
      imageId,
      image,
      config: structuredClone(image.config ?? {}),
      cmdSet: false,
      args: new Map(),
      scratch,
      ...(image.author ? { author: image.author } : {}),
    });
    if (ref.toLowerCase() === 'scratch') return fresh(await this.scratchImage(), SCRATCH_CONFIG, true);
    const stage = this.stages.find((s) => s.name === ref.toLowerCase());
    if (stage) return fresh(stage.imageId, await this.deps.images.storedConfig(stage.imageId), false);
    const imageId = await this.baseImage(ref, platform);
    const image = await this.deps.images.storedConfig(imageId);
    checkPlatform(ref, image, platform);
    return fresh(imageId, image, false);
  }

  /** A base image by reference: pulled first with --pull, or when it is not here. */
  private async baseImage(ref: string, platform: string | undefined): Promise<string> {
    if (this.options.pull) await this.pull(ref, platform);
    try {
      return (await this.deps.images.find(this.ctx, ref)).value.id;
    } catch (err) {
      if (!isKind(err, 'NotFound') || this.options.pull) throw err;
    }
    await this.pull(ref, platform);
    return (await this.deps.images.find(this.ctx, ref)).value.id;
  }

  private async pull(ref: string, platform: string | undefined): Promise<void> {
    if (this.deps.pull === undefined) {
      throw notImplemented(`pulling ${ref} for the build is not supported yet: load the image with docker load first`);
    }
    await this.deps.pull(this.ctx, ref, platform);
  }

  private async scratchImage(): Promise<string> {
    if (this.scratchId !== undefined) return this.scratchId;
    const bytes = Buffer.from(JSON.stringify(SCRATCH_CONFIG));
    const key = BuildCache.keyOf({ scratch: true, arch: HOST_ARCH });
    const entry = (await this.deps.cache.lookup(this.ctx, key)) ?? (await this.deps.cache.put(this.ctx, key, '', bytes, new Map(), 'FROM scratch'));
    this.scratchId = entry.imageId;
    return entry.imageId;
  }

  // ---- instructions ------------------------------------------------------------------------

  private async dispatch(state: StageState, instruction: Instruction): Promise<void> {
    const lookup = this.lookupFor(state);
    if (CONFIG_ONLY.has(instruction.keyword)) {
      const stepState = { config: state.config, cmdSet: state.cmdSet, ...(state.author !== undefined ? { author: state.author } : {}) };
      const { comment } = applyConfigStep(instruction, stepState, lookup, this.escape);
      state.cmdSet = stepState.cmdSet;
      if (stepState.author !== undefined) state.author = stepState.author;
      await this.commitConfig(state, comment);
      return;
    }
    switch (instruction.keyword) {
      case 'ARG':
        return this.arg(state, instruction, lookup);
      case 'WORKDIR':
        return this.workdir(state, instruction, lookup);
      case 'RUN':
        return this.runStep(state, instruction);
      case 'COPY':
      case 'ADD':
        return this.copyStep(state, instruction, lookup);
      case 'FROM':
        throw invalidArgument('FROM is only allowed at the start of a stage');
      default:
        throw invalidArgument(`unknown instruction: ${instruction.keyword}`);
    }
  }

  /** ENV wins over ARG of the same name, as in Docker. */
  private lookupFor(state: StageState): Lookup {
    return (name) => {
      for (const entry of state.config.Env ?? []) {
        const eq = entry.indexOf('=');
        if ((eq === -1 ? entry : entry.slice(0, eq)) === name) return eq === -1 ? '' : entry.slice(eq + 1);
      }
      return state.args.has(name) ? state.args.get(name) : undefined;
    };
  }

  private async arg(state: StageState, instruction: Instruction, lookup: Lookup): Promise<void> {
    const pairs = keyValuePairs('ARG', instruction.args, lookup, this.escape, true);
    for (const [name, defaultValue] of pairs) {
      this.usedArgs.add(name);
      const given = this.options.buildArgs[name];
      const inherited = defaultValue ?? this.metaValue(name);
      state.args.set(name, given !== undefined && given !== null ? given : inherited);
    }
    await this.commitConfig(state, `ARG ${pairs.map(([n, v]) => (v === undefined ? n : `${n}=${v}`)).join(' ')}`);
  }

  private async workdir(state: StageState, instruction: Instruction, lookup: Lookup): Promise<void> {
    const dir = expandWord(instruction.args, lookup, this.escape);
    state.config.WorkingDir = posix.resolve(state.config.WorkingDir || '/', dir);
    const path = state.config.WorkingDir;
    await this.commitFiles(state, `WORKDIR ${path}`, (root) => ensureWorkdir(root, path));
  }

  /** The build args RUN sees: declared in the stage (or predefined and given), not shadowed by ENV. */
  private runArgs(state: StageState): string[] {
    const envKeys = new Set((state.config.Env ?? []).map((e) => e.split('=')[0]));
    const out: string[] = [];
    for (const [name, value] of state.args) if (value !== undefined && !envKeys.has(name)) out.push(`${name}=${value}`);
    for (const name of PREDEFINED_ARGS) {
      const value = this.options.buildArgs[name];
      if (value !== undefined && value !== null && !state.args.has(name) && !envKeys.has(name)) out.push(`${name}=${value}`);
    }
    return out.sort();
  }

  private async runStep(state: StageState, instruction: Instruction): Promise<void> {
    const cmd = commandOf(instruction, state.config);
    const args = this.runArgs(state);
    const declared = args.filter((a) => state.args.has(a.slice(0, a.indexOf('='))));
    // dockerd records the build args a RUN saw in front of its command (history and cache key).
    const recorded = declared.length > 0 ? [`|${declared.length}`, ...declared, ...cmd] : cmd;
    const containerConfig = { ...state.config, Cmd: recorded };
    const key = BuildCache.keyOf({ parent: state.imageId, config: containerConfig });
    if (await this.cached(state, key)) return;
    const layerTar = this.tmpTar();
    try {
      const lowerDirs = await this.deps.images.layerPathsOf(state.imageId);
      const result = await this.deps.runs.run(this.ctx, {
        imageId: state.imageId,
        cmd,
        env: [...(state.config.Env ?? []), ...args],
        user: state.config.User ?? '',
        workingDir: state.config.WorkingDir ?? '',
        lowerDirs,
        layerTar,
        onStart: (id) => this.out.stream(` ---> Running in ${short(id)}\n`),
        onOutput: (text) => this.out.stream(text),
        signal: this.signal,
      });
      if (result.exitCode !== 0) {
        throw new StepFailed(`The command '${cmd.join(' ')}' returned a non-zero code: ${result.exitCode}`, result.exitCode);
      }
      this.out.stream(`Removing intermediate container ${short(result.containerId)}\n`);
      await this.commit(state, key, containerConfig, recorded.join(' '), result.members > 0 ? layerTar : undefined, instruction.original);
    } finally {
      await rm(layerTar, { force: true });
    }
  }

  private async copyStep(state: StageState, instruction: Instruction, lookup: Lookup): Promise<void> {
    const keyword = instruction.keyword as 'COPY' | 'ADD';
    if (instruction.flags.chmod !== undefined) throw invalidArgument(`the --chmod option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled`);
    for (const flag of ['link', 'parents', 'exclude', 'checksum', 'keep-git-dir']) {
      if (instruction.flags[flag] !== undefined) throw invalidArgument(`the --${flag} option requires BuildKit`);
    }
    // Each word (of either form) goes through the shell lexer, as in Docker.
    const words = (instruction.json ?? splitWords(instruction.args, this.escape)).map((w) => expandWord(w, lookup, this.escape));
    if (words.length < 2) throw invalidArgument(`${keyword} requires at least two arguments, but only one was provided. Destination could not be determined.`);
    const rawDest = words[words.length - 1]!;
    const dest = rawDest.startsWith('/') ? rawDest : `${posix.resolve(state.config.WorkingDir || '/', rawDest)}${rawDest.endsWith('/') || rawDest === '.' ? '/' : ''}`;
    const from = instruction.flags.from !== undefined ? expandWord(instruction.flags.from, lookup, this.escape) : undefined;
    if (from !== undefined && keyword === 'ADD') throw invalidArgument('ADD does not support --from; use COPY --from');
    const chown = instruction.flags.chown !== undefined ? expandWord(instruction.flags.chown, lookup, this.escape) : undefined;

    const sourceImage = from !== undefined ? await this.copySourceImage(from) : undefined;
    const withSources = async <T>(fn: (root: string) => Promise<T>): Promise<T> =>
      sourceImage === undefined ? fn(this.contextDir) : this.deps.scratch.withMount(sourceImage, fn);

    const hashOf = (): Promise<string> =>
      withSources(async (root) => {
        const sources = await resolveSources(root, words.slice(0, -1), keyword, sourceImage === undefined);
        const kind = sources.length > 1 ? 'multi' : sources[0]!.isDirectory ? 'dir' : 'file';
        return `${kind}:${await hashSources(sources.map((s) => s.hostPath))}`;
      });
    // An image never changes, so the digest of its files is worked out (and mounted for) once.
    const hash = sourceImage === undefined ? await hashOf() : await this.deps.imageSourceHashes.get(`${sourceImage} ${JSON.stringify(words.slice(0, -1))}`, hashOf);
    const comment = `${keyword}${chown ? ` --chown=${chown}` : ''}${from !== undefined ? ` --from=${from}` : ''} ${hash} in ${dest} `;
    await this.commitFiles(state, comment, async (root) => {
      const owner = await resolveChown(root, chown);
      await withSources(async (sourceRoot) => {
        const sources = await resolveSources(sourceRoot, words.slice(0, -1), keyword, sourceImage === undefined);
        await copyInto(root, sources, { dest, owner, extractArchives: keyword === 'ADD', instruction: keyword });
      });
    });
  }

  /** `--from`: a stage by name or index, else an image reference. */
  private async copySourceImage(from: string): Promise<string> {
    const byName = this.stages.find((s) => s.name === from.toLowerCase());
    if (byName) return byName.imageId;
    if (/^\d+$/.test(from)) {
      const stage = this.stages[Number(from)];
      if (stage === undefined) throw invalidArgument(`invalid from flag value ${from}: refers to current build stage or a later one`);
      return stage.imageId;
    }
    try {
      return await this.baseImage(from, undefined);
    } catch (err) {
      if (err instanceof BerthError) throw new BerthError(err.kind, `invalid from flag value ${from}: ${err.message}`);
      throw err;
    }
  }

  // ---- commits -----------------------------------------------------------------------------

  private async commitConfig(state: StageState, comment: string): Promise<void> {
    const containerConfig = nopConfig(state.config, comment);
    const key = BuildCache.keyOf({ parent: state.imageId, config: containerConfig, author: state.author ?? '' });
    if (await this.cached(state, key)) return;
    await this.commit(state, key, containerConfig, containerConfig.Cmd.join(' '), undefined, comment);
  }

  /** A step that changes files without running anything: on a private overlay of the parent. */
  private async commitFiles(state: StageState, comment: string, change: (root: string) => Promise<void>): Promise<void> {
    const containerConfig = nopConfig(state.config, comment);
    const key = BuildCache.keyOf({ parent: state.imageId, config: containerConfig });
    if (await this.cached(state, key)) return;
    const layerTar = this.tmpTar();
    try {
      const members = await this.deps.scratch.change(state.imageId, change, layerTar);
      await this.commit(state, key, containerConfig, containerConfig.Cmd.join(' '), members > 0 ? layerTar : undefined, comment);
    } finally {
      await rm(layerTar, { force: true });
    }
  }

  private async cached(state: StageState, key: string): Promise<boolean> {
    if (this.options.noCache) return false;
    const hit = await this.deps.cache.lookup(this.ctx, key);
    if (hit === undefined) return false;
    this.out.stream(' ---> Using cache\n');
    await this.advance(state, hit.imageId, await this.deps.images.storedConfig(hit.imageId));
    return true;
  }

  private async commit(state: StageState, key: string, containerConfig: ImageRuntimeConfig, createdBy: string, layerTar: string | undefined, description: string): Promise<void> {
    const created = new Date().toISOString();
    const parent = state.scratch ? SCRATCH_CONFIG : state.image;
    const newLayers = new Map<string, string>();
    if (layerTar !== undefined) newLayers.set(await fileDigest(layerTar), layerTar);
    const diffIds = [...parent.rootfs.diff_ids, ...newLayers.keys()];
    const image: ImageConfigJson = {
      architecture: parent.architecture ?? HOST_ARCH,
      ...(parent.variant ? { variant: parent.variant } : {}),
      os: 'linux',
      ...(state.author ? { author: state.author } : {}),
      config: state.config,
      container_config: containerConfig,
      created,
      history: [...(parent.history ?? []), { created, created_by: createdBy, ...(layerTar === undefined ? { empty_layer: true } : {}) }],
      rootfs: { type: 'layers', diff_ids: diffIds },
    };
    const bytes = Buffer.from(JSON.stringify(image));
    const entry = await this.deps.cache.put(this.ctx, key, state.imageId, bytes, newLayers, description);
    // The cache may keep an earlier result of the same step (see BuildCache.put).
    const kept = entry.imageId === sha256Digest(bytes) ? image : await this.deps.images.storedConfig(entry.imageId);
    await this.advance(state, entry.imageId, kept);
  }

  private async advance(state: StageState, imageId: string, image: ImageConfigJson): Promise<void> {
    state.imageId = imageId;
    state.image = image;
    state.scratch = false;
    this.out.stream(` ---> ${short(imageId)}\n`);
  }

  // ---- helpers -----------------------------------------------------------------------------

  private header(instruction: Instruction): void {
    this.step++;
    this.out.stream(`Step ${this.step}/${this.total} : ${instruction.original}\n`);
  }

  private tmpTar(): string {
    return join(this.deps.tmpDir, `layer-${randomBytes(8).toString('hex')}.tar`);
  }

  private throwIfCancelled(): void {
    if (this.signal.aborted) throw invalidArgument('the build was cancelled');
  }
}

/** The container config dockerd records for a step that runs nothing: the shell, "#(nop) ", the step. */
function nopConfig(config: ImageRuntimeConfig, comment: string): ImageRuntimeConfig & { Cmd: string[] } {
  return { ...config, Cmd: [...shellOf(config), '#(nop) ', comment] };
}

/** WORKDIR creates its directory (root-owned), as dockerd's classic builder does. */
async function ensureWorkdir(root: string, path: string): Promise<void> {
  const { hostPath } = await resolveInContainer(root, path, { followLast: true });
  await mkdir(hostPath, { recursive: true, mode: 0o755 });
}

function checkPlatform(ref: string, image: ImageConfigJson, platform: string | undefined): void {
  if (platform === undefined || platform === '') return;
  const [os = 'linux', arch, variant] = platform.toLowerCase().split('/');
  const actualArch = image.architecture ?? HOST_ARCH;
  const matches = os === (image.os ?? 'linux') && (arch === undefined || arch === actualArch) && (variant === undefined || variant === (image.variant ?? ''));
  if (!matches) {
    throw invalidArgument(`image with reference ${ref} was found but does not match the specified platform: wanted ${platform}, actual: ${image.os ?? 'linux'}/${actualArch}`);
  }
  if (arch !== undefined && arch !== HOST_ARCH) {
    throw invalidArgument(`image platform ${platform} cannot run on this ${HOST_ARCH} host; Berth does not emulate other architectures`);
  }
}

const short = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);
