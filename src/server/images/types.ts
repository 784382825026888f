import type { IdRange } from '../../agent/userns/id-range.js';
import type { Readable } from 'node:stream';
import type { RequestContext } from '../../common/context.js';

/** The parts of an image's config a container is built from (Docker image config "config"). */
export interface ImageRuntimeConfig {
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  StopSignal?: string;
  Labels?: Record<string, string>;
  Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number };
  OnBuild?: string[];
  Shell?: string[];
}

export interface ResolvedImage {
  /** "sha256:<hex>" — the digest of the image config, as Docker reports it. */
  id: string;
  config: ImageRuntimeConfig;
  repoTags: string[];
}

/** What the container service needs from images: resolution of a user's reference. */
export interface ImageResolver {
  /** A name[:tag], name@digest, full id ("sha256:…" or hex) or unique id prefix. NotFound: "No such image: <ref>". */
  resolve(ctx: RequestContext, ref: string): Promise<ResolvedImage>;
}

/**
 * A container's root filesystem: an overlay of the image's layers (read-only, shared) under
 * a private writable upper directory. Keyed by container id.
 *
 * Lifecycle: prepare (creates upper/work dirs and mounts) → mount again after a host reboot
 * or reconcile (idempotent) → remove (unmounts, deletes upper). remove is safe twice.
 */
export interface RootfsManager {
  /** With an ID range (a tenant's container), the image's files show shifted into it. */
  prepare(containerId: string, imageId: string, idRange?: IdRange): Promise<string>;
  /** The ID range given at prepare, if any. */
  idRangeOf(containerId: string): Promise<IdRange | undefined>;
  /** Ensures the overlay is mounted and returns its path. */
  mount(containerId: string): Promise<string>;
  unmount(containerId: string): Promise<void>;
  remove(containerId: string): Promise<void>;
  /** Changes of the writable layer against the image, as `docker diff` reports them (Kind 0 modified, 1 added, 2 deleted). */
  changes(containerId: string): Promise<{ Path: string; Kind: 0 | 1 | 2 }[]>;
  /** The whole container filesystem as a tar stream (`docker export`). */
  exportTar(containerId: string): Promise<Readable>;
  /** Bytes used by the writable layer (SizeRw). */
  sizeRw(containerId: string): Promise<number>;
}

/**
 * What images need from containers: which containers use an image, so `docker rmi` and
 * `docker image prune` refuse (or untag only) as dockerd does. `imageId` is "sha256:<hex>".
 */
export interface ImageUsage {
  containersUsing(ctx: RequestContext, imageId: string): Promise<{ id: string; running: boolean }[]>;
}
