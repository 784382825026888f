import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoCode, invalidArgument, isKind } from '../../common/errors.js';
import { AutoDecompress } from '../../agent/images/layer-unpack.js';
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
    await unpackContext(source, dir);
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

/**
 * Unpacks the context with GNU tar into the fresh directory. tar keeps members inside it:
 * it strips leading "/" and refuses "..", and creates symlinks that point out of the tree
 * only after every other member, so no member is written through one.
 */
async function unpackContext(source: Readable, dir: string): Promise<void> {
  const decompress = new AutoDecompress();
  source.on('error', (err) => decompress.destroy(err));
  const child = spawn('tar', ['-x', '-f', '-', '-C', dir, '--numeric-owner', '--no-overwrite-dir', '--warning=no-timestamp'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
  // tar may stop reading early (not a tar): that error is tar's to report.
  const fed = pipeline(source.pipe(decompress), new TarTerminator(), child.stdin).catch((err: unknown) => err);
  const [code, feedError] = await Promise.all([exited, fed]);
  if (code !== 0) {
    const reason = stderr.trim().split('\n').find((line) => line !== '') ?? `tar exited with ${code}`;
    throw invalidArgument(`the build context is not a valid tar archive: ${reason.replace(/^tar: /, '')}`);
  }
  if (feedError instanceof Error) {
    if (isKind(feedError, 'InvalidArgument')) throw feedError;
    throw invalidArgument(`reading the build context failed: ${feedError.message}`, feedError);
  }
}

/**
 * Ends the archive properly: the docker CLI's context with a Dockerfile from stdin (`-f -`)
 * stops right after the last member's data, without its padding and the two zero blocks that
 * end a tar. Go's reader accepts that; GNU tar does not. Zeros after a proper end are ignored.
 */
class TarTerminator extends Transform {
  private length = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.length += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    callback(null, Buffer.alloc(((512 - (this.length % 512)) % 512) + 1024));
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
 * A digest of files as COPY and ADD see them (names below the source, types, modes, owners,
 * link targets and contents; not times), so a changed source misses the cache. Metadata is
 * gathered per directory at once and small files are read in parallel, since a context of
 * many small files is the common case.
 */
export async function hashSources(paths: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const [index, path] of paths.entries()) {
    hash.update(`source ${index}\0`);
    const entries: { rel: string; full: string; st: Stats }[] = [];
    const collect = async (full: string, rel: string, st: Stats): Promise<void> => {
      entries.push({ rel, full, st });
      if (!st.isDirectory()) return;
      const names = (await readdir(full)).sort();
      const stats = await Promise.all(names.map((name) => lstat(join(full, name))));
      for (let i = 0; i < names.length; i++) await collect(join(full, names[i]!), `${rel}/${names[i]!}`, stats[i]!);
    };
    await collect(path, '', await lstat(path));
    const contents = await mapLimit(entries, 16, async ({ full, st }) => {
      if (st.isSymbolicLink()) return Buffer.from(await readlink(full));
      if (st.isFile() && st.size <= SMALL_FILE) return readFile(full);
      return undefined;
    });
    for (let i = 0; i < entries.length; i++) {
      const { rel, full, st } = entries[i]!;
      hash.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0${st.size}\0`);
      const content = contents[i];
      if (content !== undefined) hash.update(content);
      else if (st.isFile()) for await (const chunk of createReadStream(full, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
    }
  }
  return hash.digest('hex');
}

/** Files up to this size are read whole (in parallel); bigger ones are streamed one by one. */
const SMALL_FILE = 1024 * 1024;

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
