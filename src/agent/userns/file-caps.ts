import { toImageId, type IdRange } from './id-range.js';

/**
 * File capabilities (the `security.capability` xattr, linux/capability.h) as a layer must
 * carry them. Set inside a user namespace, the kernel stores them as version 3: the v2 body
 * plus the host uid of the namespace's root (`rootid`), so they apply only under that root.
 * A layer is read by every tenant and the operator, each under another root: its capabilities
 * are stored as the container saw them, version 2 (root of whoever runs it) when they were
 * root's of the range, else version 3 with the owner shifted into image ids.
 *
 * Layout: le32 magic_etc (revision in the top byte, flags in the low bits), then
 * { le32 permitted, le32 inheritable } × 2, then (v3 only) le32 rootid.
 */
const REVISION_MASK = 0xff000000;
const REVISION_2 = 0x02000000;
const REVISION_3 = 0x03000000;
const V2_SIZE = 20;
const V3_SIZE = 24;

/** The attribute value (bytes as a latin1 string, as getfattr gives them) a layer should carry. */
export function capabilityForLayer(value: string, range: IdRange | undefined): string {
  const bytes = Buffer.from(value, 'latin1');
  if (!range || bytes.length !== V3_SIZE) return value;
  const magic = bytes.readUInt32LE(0);
  if ((magic & REVISION_MASK) >>> 0 !== REVISION_3) return value;
  const rootid = toImageId(range, bytes.readUInt32LE(20));
  if (rootid !== 0) {
    const shifted = Buffer.from(bytes);
    shifted.writeUInt32LE(rootid, 20);
    return shifted.toString('latin1');
  }
  const v2 = Buffer.alloc(V2_SIZE);
  bytes.copy(v2, 0, 0, V2_SIZE);
  v2.writeUInt32LE(((magic & ~REVISION_MASK) | REVISION_2) >>> 0, 0);
  return v2.toString('latin1');
}
