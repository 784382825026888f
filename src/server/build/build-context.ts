import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoCode, invalidArgument, isKind } from '../../common/errors.js';
import { AutoDecompress } from '../../agent/images/layer-unpack.js';
import { extractInto } from '../containers/archive-tar.js';
import { hasExceptionsBelow, isIgnored, parseDockerignore, type IgnoreRule } from './dockerignore.js';

/**
 * The build context: the tar the client sent, unpacked into a private directory, minus
 * what `.dockerignore` leaves out.
 *
 * Lifecycle: receive (unpack, read the Dockerfile, apply .dockerignore) → the builder reads
 * sources from `dir` → dispose (removes the directory). The Dockerfile is read before the
 * ignore rules apply, so ignoring it (as people do) still builds, as with dockerd.
 */
export interface BuildContext {
  dir: string;
  dockerfile: string;
  dispose(): Promise<void>;
}

export async function receiveContext(source: Readable, dir: string, dockerfileName: string): Promise<BuildContext> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const dispose = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    const decompress = new AutoDecompress();
    source.on('error', (err) => decompress.destroy(err));
    try {
      await extractInto(source.pipe(decompress), { root: dir, destination: '/', noOverwriteDirNonDir: false });
    } catch (err) {
      if (isKind(err, 'InvalidArgument')) throw err;
      throw invalidArgument(`the build context is not a valid tar archive: ${(err as Error).message}`, err);
    }
    const name = cleanContextPath(dockerfileName === '' ? 'Dockerfile' : dockerfileName);
    let dockerfile: string;
    try {
      dockerfile = await readFile(join(dir, name), 'utf8');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'EISDIR' && errnoCode(err) !== 'ENOTDIR') throw err;
      throw invalidArgument(`Cannot locate specified Dockerfile: ${dockerfileName === '' ? 'Dockerfile' : dockerfileName}`);
    }
    const ignore = await readFile(join(dir, '.dockerignore'), 'utf8').catch(() => '');
    const rules = parseDockerignore(ignore);
    if (rules.length > 0) await removeIgnored(dir, '', rules);
    return { dir, dockerfile, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** A path inside the context, relative and cleaned; ".." cannot leave it. */
export function cleanContextPath(path: string): string {
  return posix.normalize(`/${path}`).slice(1).replace(/\/+$/, '');
}

async function removeIgnored(root: string, rel: string, rules: readonly IgnoreRule[]): Promise<void> {
  for (const name of await readdir(join(root, rel))) {
    const path = rel === '' ? name : `${rel}/${name}`;
    const full = join(root, path);
    const st = await lstat(full);
    const ignored = isIgnored(rules, path);
    if (st.isDirectory()) {
      if (ignored && !hasExceptionsBelow(rules, path)) await rm(full, { recursive: true, force: true });
      else await removeIgnored(root, path, rules);
    } else if (ignored) {
      await rm(full, { force: true });
    }
  }
}

/**
 * A digest of files as COPY and ADD see them (names below the source, types, modes, link
 * targets and contents; not times), so a changed source misses the cache.
 */
export async function hashSources(paths: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  const visit = async (full: string, rel: string): Promise<void> => {
    const st = await lstat(full);
    hash.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0`);
    if (st.isDirectory()) {
      for (const child of (await readdir(full)).sort()) await visit(join(full, child), `${rel}/${child}`);
    } else if (st.isSymbolicLink()) {
      hash.update(`link\0${await readlink(full)}\0`);
    } else if (st.isFile()) {
      hash.update(`file\0${st.size}\0`);
      await pipeline(createReadStream(full), async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) hash.update(chunk);
      });
    }
  };
  for (const path of paths) await visit(path, '');
  return hash.digest('hex');
}
