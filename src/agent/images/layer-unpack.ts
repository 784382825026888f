import { execFile } from 'node:child_process';
import { mkdir, rm, unlink } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { Transform, type TransformCallback, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip, type Gunzip } from 'node:zlib';
import tar from 'tar-stream';
import { internal, invalidArgument } from '../../common/errors.js';

const run = promisify(execFile);

/** OCI whiteout markers (image-spec layer.md): `.wh.<name>` deletes <name>; `.wh..wh..opq` hides the lower directory. */
export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
/** The xattr overlayfs reads to treat an upper directory as opaque. */
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

/**
 * Passes a layer through, gunzipping it when it starts with the gzip magic. Layers in
 * archives come plain (docker save) or gzipped (OCI layouts, registries); zstd is refused.
 */
export class AutoDecompress extends Transform {
  private head: Buffer[] = [];
  private headLength = 0;
  private decided = false;
  private gunzip: Gunzip | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.decided) {
      this.head.push(chunk);
      this.headLength += chunk.length;
      if (this.headLength < 4) return callback();
      const data = Buffer.concat(this.head);
      this.head = [];
      const err = this.decide(data);
      if (err) return callback(err);
      this.forward(data, callback);
      return;
    }
    this.forward(chunk, callback);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.decided) {
      const data = Buffer.concat(this.head);
      const err = this.decide(data);
      if (err) return callback(err);
      if (data.length > 0) this.forward(data, () => undefined);
    }
    if (this.gunzip === undefined) return callback();
    const gunzip = this.gunzip;
    gunzip.once('end', () => callback());
    gunzip.once('error', (e) => callback(invalidArgument(`invalid gzip layer: ${e.message}`)));
    gunzip.end();
  }

  private decide(head: Buffer): Error | undefined {
    this.decided = true;
    if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
      this.gunzip = createGunzip();
      this.gunzip.on('data', (data: Buffer) => this.push(data));
      return undefined;
    }
    if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) {
      return invalidArgument('unsupported layer compression: zstd');
    }
    return undefined;
  }

  private forward(data: Buffer, callback: TransformCallback): void {
    if (this.gunzip === undefined) {
      this.push(data);
      callback();
      return;
    }
    this.gunzip.write(data, () => callback());
  }
}

/** What a layer tar holds, read before it is unpacked. */
export interface LayerScan {
  /** Paths (relative, no leading slash) the layer deletes from the layers below. */
  whiteouts: string[];
  /** Directories whose lower contents the layer hides. */
  opaqueDirs: string[];
  /** Sum of regular file sizes, as Docker reports a layer's size. */
  size: number;
}

/** A tar member name as a clean relative path; "" for the root. ".." cannot climb above the root. */
export function cleanMemberName(name: string): string {
  return posix.normalize(`/${name}`).slice(1).replace(/\/+$/, '');
}

/** Reads a layer tar once, listing its whiteouts and adding up its size. */
export async function scanLayer(source: Readable): Promise<LayerScan> {
  const scan: LayerScan = { whiteouts: [], opaqueDirs: [], size: 0 };
  const extract = tar.extract();
  const reading = pipeline(source, extract);
  try {
    for await (const entry of extract) {
      const name = cleanMemberName(entry.header.name);
      const base = posix.basename(name);
      if (base === OPAQUE_MARKER) scan.opaqueDirs.push(posix.dirname(name) === '.' ? '' : posix.dirname(name));
      else if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) {
        // Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not part of the filesystem.
      } else if (base.startsWith(WHITEOUT_PREFIX)) {
        scan.whiteouts.push(posix.join(posix.dirname(name), base.slice(WHITEOUT_PREFIX.length)));
      } else if (entry.header.type === 'file' || entry.header.type === 'contiguous-file') {
        scan.size += entry.header.size ?? 0;
      }
      entry.resume();
    }
    await reading;
  } catch (err) {
    source.destroy();
    if (err instanceof Error && err.name.startsWith('BerthError')) throw err;
    throw invalidArgument(`invalid layer tar: ${(err as Error).message}`, err);
  }
  return scan;
}

/**
 * Unpacks an uncompressed layer tar into an empty directory as an overlayfs lower layer:
 * files with owners, modes, times and xattrs (GNU tar, which also refuses members that
 * would be written through a symlink out of the directory), then OCI whiteouts turned into
 * overlayfs whiteouts (a 0/0 character device) and opaque markers into the opaque xattr.
 * On failure the caller removes the directory.
 */
export async function unpackLayer(tarPath: string, dest: string, scan: LayerScan): Promise<void> {
  await mkdir(dest, { recursive: true });
  try {
    await run('tar', ['-x', '-f', tarPath, '-C', dest, '--numeric-owner', '--same-owner', '-p', '--xattrs', '--xattrs-include=*'], {
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    throw invalidArgument(`invalid layer: ${((err as { stderr?: string }).stderr ?? '').trim().split('\n')[0] ?? 'tar failed'}`, err);
  }
  for (const dir of scan.opaqueDirs) {
    const path = join(dest, dir);
    await rm(join(path, OPAQUE_MARKER), { force: true });
    await mkdir(path, { recursive: true });
    await runHost('setfattr', ['-n', OVERLAY_OPAQUE_XATTR, '-v', 'y', path]);
  }
  for (const whiteout of scan.whiteouts) {
    const path = join(dest, whiteout);
    await unlink(join(dirname(path), `${WHITEOUT_PREFIX}${posix.basename(whiteout)}`)).catch(() => undefined);
    await rm(path, { force: true, recursive: true });
    await mkdir(dirname(path), { recursive: true });
    await runHost('mknod', ['-m', '0', path, 'c', '0', '0']);
  }
}

async function runHost(command: string, args: string[]): Promise<void> {
  try {
    await run(command, args);
  } catch (err) {
    throw internal(`unpacking a layer failed: ${command}`, err);
  }
}
