import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { invalidArgument } from '../../common/errors.js';

/**
 * Content digests as images name their parts.
 *
 * Terms:
 * - digest: "sha256:<64 lowercase hex>", the hash of some exact bytes (a config, a layer tar).
 * - diff id: the digest of a layer's *uncompressed* tar; listed in the image config's rootfs.
 * - chain id: names a layer together with every layer below it, so one unpacked directory
 *   can be shared by all images that start with the same layers (OCI image spec,
 *   "ChainID"): chain(L0) = diff(L0); chain(L0..Ln) = sha256(chain(L0..Ln-1) + " " + diff(Ln)).
 */
export type Digest = string;

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HEX = /^[0-9a-f]{64}$/;

export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

export function isHex64(value: string): boolean {
  return HEX.test(value);
}

/** The hex part of a digest; InvalidArgument when it is not a sha256 digest. */
export function digestHex(digest: string): string {
  if (!DIGEST.test(digest)) throw invalidArgument(`invalid digest: ${digest}`);
  return digest.slice('sha256:'.length);
}

export function sha256Digest(data: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The chain ids of a stack of layers, bottom first, from their diff ids. */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const chains: Digest[] = [];
  for (const diffId of diffIds) {
    const parent = chains[chains.length - 1];
    chains.push(parent === undefined ? diffId : sha256Digest(`${parent} ${diffId}`));
  }
  return chains;
}

/**
 * Reads `source` to its end and checks that its bytes hash to `expected`: InvalidArgument
 * with the same message as a content-store ingest otherwise. Stores nothing.
 */
export async function expectDigest(source: Readable, expected: Digest): Promise<void> {
  const hash = createHash('sha256');
  for await (const chunk of source) hash.update(chunk as Buffer);
  const digest = `sha256:${hash.digest('hex')}`;
  if (digest !== expected) throw invalidArgument(`digest mismatch: expected ${expected}, got ${digest}`);
}
