import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoCode, invalidArgument, notFound } from '../../common/errors.js';
import { digestHex, type Digest } from './digest.js';

/** Reads committed blobs. */
export interface ContentProvider {
  has(digest: Digest): Promise<boolean>;
  size(digest: Digest): Promise<number>;
  open(digest: Digest): Readable;
  read(digest: Digest): Promise<Buffer>;
  /** The blob's file; callers only read it. */
  path(digest: Digest): string;
}

/** Writes blobs; a blob becomes visible only once its digest has been verified. */
export interface ContentIngester {
  ingest(source: Readable, expected?: Digest): Promise<{ digest: Digest; size: number }>;
}

/** Deletes blobs; callers decide (by reference counts) that nothing needs them any more. */
export interface ContentManager {
  delete(digest: Digest): Promise<void>;
}

/**
 * A content-addressed blob store on the local disk, after containerd's content store.
 *
 * Layout: `<root>/sha256/<hex>` holds committed blobs, `<root>/ingest/` partial writes.
 * Lifecycle of a blob: ingest writes a private temp file while hashing it, compares the
 * digest with the expected one (when given) at commit, then renames it into place; a failed
 * or mismatched ingest deletes its temp file. Committed blobs never change; a blob with the
 * same digest committed twice is simply kept once.
 */
export class ContentStore implements ContentProvider, ContentIngester, ContentManager {
  constructor(private readonly root: string) {}

  path(digest: Digest): string {
    return join(this.root, 'sha256', digestHex(digest));
  }

  async has(digest: Digest): Promise<boolean> {
    try {
      await stat(this.path(digest));
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  async size(digest: Digest): Promise<number> {
    try {
      return (await stat(this.path(digest))).size;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw notFound(`content ${digest} not found`);
      throw err;
    }
  }

  open(digest: Digest): Readable {
    return createReadStream(this.path(digest));
  }

  async read(digest: Digest): Promise<Buffer> {
    try {
      return await readFile(this.path(digest));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw notFound(`content ${digest} not found`);
      throw err;
    }
  }

  async ingest(source: Readable, expected?: Digest): Promise<{ digest: Digest; size: number }> {
    if (expected !== undefined) digestHex(expected);
    const ingestDir = join(this.root, 'ingest');
    await mkdir(ingestDir, { recursive: true });
    await mkdir(join(this.root, 'sha256'), { recursive: true });
    const tmp = join(ingestDir, randomBytes(16).toString('hex'));
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        source,
        new Transform({
          transform(chunk: Buffer, _enc, callback) {
            hash.update(chunk);
            size += chunk.length;
            callback(null, chunk);
          },
        }),
        createWriteStream(tmp, { mode: 0o600 }),
      );
      const digest = `sha256:${hash.digest('hex')}`;
      if (expected !== undefined && digest !== expected) {
        throw invalidArgument(`digest mismatch: expected ${expected}, got ${digest}`);
      }
      await rename(tmp, this.path(digest));
      return { digest, size };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Removes partial writes left by ingests that died with the process. Only for start-up,
   * when no ingest can be running.
   */
  async abortIngests(): Promise<void> {
    await rm(join(this.root, 'ingest'), { recursive: true, force: true });
  }

  async delete(digest: Digest): Promise<void> {
    await rm(this.path(digest), { force: true });
  }
}
