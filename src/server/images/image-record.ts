import { invalidArgument } from '../../common/errors.js';
import { isDigest } from '../../agent/images/digest.js';
import type { ImageRuntimeConfig } from './types.js';

/** Store kind of image records; id = config digest hex; scoped by tenant. */
export const IMAGE_KIND = 'image';

/**
 * An image as one tenant has it. Field contracts: `id`, `diffIds`, `chainIds`, `layerSizes`,
 * `config`, `created` are immutable (they follow from the config bytes, which live in the
 * content store under `id`); `repoTags`, `repoDigests`, `lastTagTime` change with tag/untag.
 * A tag ("name:tag", familiar form) is on at most one image of a tenant.
 */
export interface ImageRecord {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  diffIds: string[];
  chainIds: string[];
  layerSizes: number[];
  config: ImageConfigJson;
  /** The config's `created`, or the load time when it has none. */
  created: string;
  lastTagTime?: string;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** The image config JSON (OCI image-spec config.md plus Docker's extra fields). */
export interface ImageConfigJson {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  comment?: string;
  docker_version?: string;
  container?: string;
  config?: ImageRuntimeConfig | null;
  container_config?: ImageRuntimeConfig | null;
  history?: HistoryEntry[];
  rootfs: { type: string; diff_ids: string[] };
}

/** Parses and checks config bytes; InvalidArgument when they are not an image config. */
export function parseImageConfig(bytes: Buffer): ImageConfigJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw invalidArgument('invalid image config: not JSON', err);
  }
  if (typeof parsed !== 'object' || parsed === null) throw invalidArgument('invalid image config');
  const config = parsed as ImageConfigJson;
  const rootfs = config.rootfs as unknown;
  if (
    typeof rootfs !== 'object' ||
    rootfs === null ||
    !Array.isArray((rootfs as { diff_ids?: unknown }).diff_ids) ||
    !(rootfs as { diff_ids: unknown[] }).diff_ids.every((d) => typeof d === 'string' && isDigest(d))
  ) {
    throw invalidArgument('invalid image config: rootfs.diff_ids missing or malformed');
  }
  if (config.os !== undefined && config.os !== 'linux') throw invalidArgument(`image operating system "${config.os}" cannot be used on this platform`);
  return config;
}

export const imageSize = (record: ImageRecord): number => record.layerSizes.reduce((a, b) => a + b, 0);
