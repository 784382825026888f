import { lchown, lstat } from 'node:fs/promises';
import type { IdRange } from './id-range.js';

/**
 * Host-side files a tenant's container uses as its own (etc files, the container directory,
 * a fresh volume): owned by root of the tenant's range, as dockerd --userns-remap does.
 */
export async function chownToRangeRoot(range: IdRange, paths: string[]): Promise<void> {
  await Promise.all(paths.map((p) => lchown(p, range.base, range.base)));
}

/**
 * A volume directory a tenant's container is about to mount: still host root's (just made,
 * nothing copied up into it) means root of the range takes it. Anything else (the image's
 * owner after a copy-up, a container's chown) is left as it is.
 */
export async function adoptFreshDirectory(range: IdRange, dir: string): Promise<void> {
  const st = await lstat(dir);
  if (st.uid === 0 && st.gid === 0) await lchown(dir, range.base, range.base);
}
