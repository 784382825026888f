import { readFile, writeFile } from 'node:fs/promises';
import { errnoCode, invalidArgument } from '../../common/errors.js';

/**
 * A tenant's user-namespace ID range: uid and gid N inside its containers (0 <= N < count)
 * are base+N on the host. The operator's own containers have none and run without a user
 * namespace, as under dockerd without --userns-remap.
 *
 * Terms: an "image id" is an owner as the image and the container see it (root is 0); a
 * "host id" is the same owner as the host stores it (root is base). Layers shared between
 * tenants keep image ids; a container's writable layer, its volumes and its etc files keep
 * host ids; whatever turns one into the other (commit, cp, export) shifts by base.
 */
export interface IdRange {
  base: number;
  count: number;
}

/** Every tenant gets this many ids, as many as one whole 16-bit uid space. */
export const RANGE_SIZE = 65536;

/** 2^20: well above the uids and subuid ranges (100000 + 65536 × users) hosts hand out. */
export const DEFAULT_USERNS_BASE = 1 << 20;

/** An owner the container (or a tar sent into it) names, as the host stores it. */
export function toHostId(range: IdRange | undefined, imageId: number): number {
  if (!range) return imageId;
  if (!(Number.isInteger(imageId) && imageId >= 0 && imageId < range.count)) {
    throw invalidArgument(`owner id ${imageId} cannot be mapped into the container's user namespace (0 to ${range.count - 1})`);
  }
  return range.base + imageId;
}

/** An owner on the host as the container sees it; ids outside the range are nobody (65534). */
export function toImageId(range: IdRange | undefined, hostId: number): number {
  if (!range) return hostId;
  return hostId >= range.base && hostId < range.base + range.count ? hostId - range.base : OVERFLOW_ID;
}

/** The kernel's overflow uid: how unmapped owners show inside a user namespace. */
export const OVERFLOW_ID = 65534;

/** The OCI spec's uidMappings/gidMappings entry for the range. */
export function ociIdMapping(range: IdRange): { containerID: number; hostID: number; size: number } {
  return { containerID: 0, hostID: range.base, size: range.count };
}

/** A container directory remembers its range so that later mounts (reconcile, reboot) agree. */
export async function writeRangeFile(path: string, range: IdRange | undefined): Promise<void> {
  if (range) await writeFile(path, `${range.base} ${range.count}\n`);
}

export async function readRangeFile(path: string): Promise<IdRange | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  const [base, count] = text.trim().split(' ').map(Number);
  if (!Number.isSafeInteger(base) || !Number.isSafeInteger(count)) throw new Error(`bad id range file ${path}`);
  return { base: base!, count: count! };
}
