import { lstat, readlink } from 'node:fs/promises';
import { posix } from 'node:path';
import { invalidArgument } from '../../common/errors.js';

const MAX_LINKS = 40;

/**
 * The host path of `path` inside the root filesystem `root`, with every symlink on the way
 * resolved as if `root` were `/` (a link to /etc means <root>/etc, `..` stops at the root).
 * A container's own symlinks must never lead Berth, which runs as root on the host, out of
 * the container's filesystem. Components that do not exist are kept as they are.
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  const pending = posix.normalize(path).split('/').filter((c) => c !== '' && c !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = posix.join(root, ...resolved, part);
    const info = await lstat(candidate).catch(() => undefined);
    if (!info?.isSymbolicLink()) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw invalidArgument(`too many levels of symbolic links in ${path}`);
    const target = await readlink(candidate);
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
  }
  return posix.join(root, ...resolved);
}
