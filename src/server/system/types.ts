import type { RequestContext } from '../../common/context.js';

/**
 * What SystemService needs from the rest of Berth, one tenant at a time. The lead wires these
 * to the container, image and volume services; SystemService only adds them up and shapes them
 * as Docker does. Every method is scoped by the context's tenant.
 */
export interface SystemSources {
  containerCounts(ctx: RequestContext): Promise<ContainerCounts>;
  imageCount(ctx: RequestContext): Promise<number>;
  /** Images with their sizes and how many containers use each (`Containers`). */
  dfImages(ctx: RequestContext): Promise<{ layersSize: number; images: DfImage[] }>;
  /** Containers with `SizeRw` and `SizeRootFs` filled in. */
  dfContainers(ctx: RequestContext): Promise<DfContainer[]>;
  /** Volumes with `UsageData` filled in (Size -1 when unknown). */
  dfVolumes(ctx: RequestContext): Promise<DfVolume[]>;
  /** Build cache entries (Docker's BuildCache records); none when absent. */
  dfBuildCache?(ctx: RequestContext): Promise<unknown[]>;
}

export interface ContainerCounts {
  total: number;
  running: number;
  paused: number;
  stopped: number;
}

/** An image as `GET /system/df` lists it (Docker's ImageSummary). */
export interface DfImage {
  Id: string;
  ParentId: string;
  RepoTags: string[];
  RepoDigests: string[];
  Created: number; // unix seconds
  Size: number;
  /** Bytes shared with other images; -1 when not computed. */
  SharedSize: number;
  Labels: Record<string, string>;
  /** Containers using the image; -1 when not computed. */
  Containers: number;
}

/**
 * A container as `GET /system/df` lists it: Docker's ContainerSummary as `GET /containers/json`
 * renders it (the container views already build that shape), with `SizeRw` and `SizeRootFs`.
 * `docker system df` reads Id, Names, Image, Command, Created, State, Status, SizeRw and
 * SizeRootFs; SystemService passes the objects through untouched.
 */
export type DfContainer = Record<string, unknown>;

/** A volume as `GET /system/df` lists it. */
export interface DfVolume {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt?: string;
  Labels: Record<string, string> | null;
  Scope: 'local' | 'global';
  Options: Record<string, string> | null;
  UsageData: { Size: number; RefCount: number };
}

/** Facts about the machine Berth runs on; probeHost() reads the real ones. */
export interface HostFacts {
  hostname: string;
  kernelVersion: string; // uname -r
  operatingSystem: string; // PRETTY_NAME of /etc/os-release
  osVersion: string; // VERSION_ID
  /** As `uname -m` prints it (x86_64, aarch64): what `docker info` shows as Architecture. */
  machine: string;
  /** As Go names it (amd64, arm64): what `docker version` shows as Arch. */
  goArch: string;
  ncpu: number;
  memTotal: number; // bytes
  /** "1" on v1 and hybrid hosts (controllers on v1), "2" on unified hosts. */
  cgroupVersion: '1' | '2';
  swapLimit: boolean;
  ipv4Forwarding: boolean;
  /** runc's version and commit, or undefined when runc cannot be run. */
  runc: { version: string; commit: string } | undefined;
  /** The init Berth runs for `--init` (tini), when installed. */
  init: { binary: string; version: string } | undefined;
}

/** What describes this Berth build. */
export interface BuildInfo {
  version: string; // package.json "version"
  gitCommit: string; // short commit of the checkout, or "unknown"
  buildTime: string; // RFC 3339; when the running code was compiled
  runtimeVersion: string; // e.g. "node v20.20.2", shown where Docker shows its Go version
}

export type DiskUsageType = 'container' | 'image' | 'volume' | 'build-cache';
