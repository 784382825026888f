/**
 * Downloads from a Debian mirror with a content-addressed cache: every file whose SHA256 is
 * known beforehand (index files from the Release file, .debs from Packages) is stored under
 * <cacheDir>/sha256/<hex> only after its digest has been checked, and is never downloaded
 * again. A file whose digest does not match is refused, never cached.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument, unavailable } from '../../../../common/errors.js';

export class ArchiveClient {
  constructor(
    private readonly cacheDir: string,
    private readonly signal?: AbortSignal,
  ) {}

  /** The body of `url`, uncached (Release files, whose digest nothing vouches for). */
  async fetchText(url: string): Promise<string> {
    return (await this.download(url)).toString('utf8');
  }

  /** Tries each URL in turn; the first that answers 200 wins. */
  async fetchFirst(urls: string[]): Promise<{ url: string; body: string }> {
    let lastError: unknown;
    for (const url of urls) {
      try {
        return { url, body: await this.fetchText(url) };
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  /** The path of the cached file with this digest, downloading and verifying it if absent. */
  async fetchVerified(url: string, sha256: string, size?: number): Promise<string> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw invalidArgument(`No usable SHA256 for ${url}`);
    const dir = join(this.cacheDir, 'sha256');
    const path = join(dir, sha256);
    try {
      await stat(path);
      return path;
    } catch {
      // Not cached yet.
    }
    const body = await this.download(url);
    if (size !== undefined && size > 0 && body.length !== size) {
      throw invalidArgument(`${url}: expected ${size} bytes, got ${body.length}`);
    }
    const actual = createHash('sha256').update(body).digest('hex');
    if (actual !== sha256) throw invalidArgument(`${url}: SHA256 ${actual} does not match the index (${sha256})`);
    await mkdir(dir, { recursive: true });
    const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    await writeFile(tmp, body);
    await rename(tmp, path).catch(async (err: unknown) => {
      await rm(tmp, { force: true });
      throw err;
    });
    return path;
  }

  /** A verified, cached .xz index decompressed to text. */
  async fetchXzText(url: string, sha256: string, size?: number): Promise<string> {
    return unxz(await readFile(await this.fetchVerified(url, sha256, size)));
  }

  private async download(url: string): Promise<Buffer> {
    let response: Response;
    try {
      response = await fetch(url, { signal: this.signal });
    } catch (err) {
      if (this.signal?.aborted) throw err;
      throw unavailable(`Cannot reach the Debian mirror at ${new URL(url).origin}`, err);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw unavailable(`${url}: HTTP ${response.status}`);
    }
    return Buffer.from(await response.arrayBuffer());
  }
}

/** Decompresses xz data with the xz tool (Node has no xz codec). */
export async function unxz(data: Buffer): Promise<string> {
  const child = spawn('xz', ['--decompress', '--stdout'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  const errors: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stderr.on('data', (c: Buffer) => errors.push(c));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
  child.stdin.on('error', () => undefined);
  child.stdin.end(data);
  const code = await exited;
  if (code !== 0) throw invalidArgument(`xz could not decompress the index: ${Buffer.concat(errors).toString().trim()}`);
  return Buffer.concat(chunks).toString('utf8');
}
