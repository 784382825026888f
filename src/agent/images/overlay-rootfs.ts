import { execFile, spawn } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { errnoCode, internal, notFound } from '../../common/errors.js';
import type { RootfsManager } from '../../server/images/types.js';
import { readRangeFile, writeRangeFile, type IdRange } from '../userns/id-range.js';
import { helperPath, mountShiftedOverlay, userRangeCommand } from '../userns/helper.js';
import { chownToRangeRoot } from '../userns/ownership.js';

/** Names the ID range of a tenant's container (absent: the operator's, unshifted). */
const RANGE_FILE = 'idrange';

const run = promisify(execFile);

export interface OverlayRootfsOptions {
  dataRoot: string;
  /** An image's lower dirs, absolute, top layer first (ImageService.layerPathsOf). */
  layersFor(imageId: string): Promise<string[]>;
}

/**
 * Container root filesystems as overlay mounts, one per container.
 *
 * Layout: `<dataRoot>/containers/<id>/{upper,work,merged}` plus `lower`, the list of lower
 * dirs written at prepare, so the mount can be made again (after a reboot, by reconcile)
 * without asking the image service. Lower dirs are short links in one directory; `mount`
 * runs with that directory as its working directory and names them relatively, so the
 * option string of an image with a hundred layers still fits the kernel's one-page limit.
 *
 * Invariants: a failed prepare leaves no mount and no directory; remove is safe twice.
 */
export class OverlayRootfs implements RootfsManager {
  constructor(private readonly opts: OverlayRootfsOptions) {}

  private dir(containerId: string): string {
    if (!/^[0-9a-f]{64}$/.test(containerId) && !/^[A-Za-z0-9_.-]+$/.test(containerId)) throw notFound(`No such container: ${containerId}`);
    return join(this.opts.dataRoot, 'containers', containerId);
  }

  async prepare(containerId: string, imageId: string, idRange?: IdRange): Promise<string> {
    const base = this.dir(containerId);
    const lower = await this.opts.layersFor(imageId);
    try {
      await mkdir(join(base, 'upper'), { recursive: true, mode: 0o755 });
      await mkdir(join(base, 'work'), { recursive: true, mode: 0o700 });
      await mkdir(join(base, 'merged'), { recursive: true, mode: 0o755 });
      await writeFile(join(base, 'lower'), lower.join('\n'));
      await writeRangeFile(join(base, RANGE_FILE), idRange);
      // The upper dir's owner and mode are those of the container's / .
      if (idRange) await chownToRangeRoot(idRange, [join(base, 'upper'), join(base, 'work')]);
      return await this.mount(containerId);
    } catch (err) {
      await this.remove(containerId).catch(() => undefined);
      throw err;
    }
  }

  async mount(containerId: string): Promise<string> {
    const base = this.dir(containerId);
    const merged = join(base, 'merged');
    if (await isMountPoint(merged)) return merged;
    let lowers = await this.lowerDirs(base);
    // An image without layers still needs one lower dir.
    if (lowers.length === 0) {
      await mkdir(join(base, 'empty'), { recursive: true });
      lowers = [join(base, 'empty')];
    }
    const idRange = await readRangeFile(join(base, RANGE_FILE));
    const upperAndWork = `upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}`;
    try {
      if (idRange) {
        // Shared layers are seen shifted into the tenant's range through an idmapped mount; the
        // upper dir stores host ids (see userns/id-range.ts).
        const layerRoot = dirname(dirname(lowers[0]!));
        const names = lowers.map((l) => relative(layerRoot, l));
        if (names.some((n) => n.startsWith('..'))) throw new Error(`lower dirs are not under one layer root: ${lowers.join(' ')}`);
        await mountShiftedOverlay(idRange, layerRoot, merged, `lowerdir=${names.join(':')},${upperAndWork}`);
      } else {
        const { cwd, names } = relativeToCommonDir(lowers);
        await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${names.join(':')},${upperAndWork}`, merged], { cwd });
      }
    } catch (err) {
      throw internal('mounting the container filesystem failed', err);
    }
    return merged;
  }

  async unmount(containerId: string): Promise<void> {
    const merged = join(this.dir(containerId), 'merged');
    if (!(await isMountPoint(merged))) return;
    try {
      await run('umount', [merged]);
    } catch (err) {
      // A busy mount (a process still inside) is detached now and freed when released.
      await run('umount', ['-l', merged]).catch(() => undefined);
      if (await isMountPoint(merged)) throw internal('unmounting the container filesystem failed', err);
    }
  }

  async remove(containerId: string): Promise<void> {
    const base = this.dir(containerId);
    await this.unmount(containerId);
    await Promise.all(['merged', 'upper', 'work', 'lower', 'empty', RANGE_FILE].map((part) => rm(join(base, part), { recursive: true, force: true })));
  }

  /** The tenant's ID range the container's files are stored in; undefined for the operator's. */
  async idRangeOf(containerId: string): Promise<IdRange | undefined> {
    return readRangeFile(join(this.dir(containerId), RANGE_FILE));
  }

  async changes(containerId: string): Promise<{ Path: string; Kind: 0 | 1 | 2 }[]> {
    const base = this.dir(containerId);
    const lowers = await this.lowerDirs(base);
    const out: { Path: string; Kind: 0 | 1 | 2 }[] = [];
    const inLower = async (rel: string): Promise<boolean> => {
      for (const lower of lowers) {
        try {
          const st = await lstat(join(lower, rel));
          // A whiteout in a lower layer hides the path from the layers below it.
          return !(st.isCharacterDevice() && st.rdev === 0);
        } catch {
          // Not in this layer; look further down.
        }
      }
      return false;
    };
    const walk = async (rel: string): Promise<void> => {
      const entries = await readdir(join(base, 'upper', rel), { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
        const st = await lstat(join(base, 'upper', path));
        if (st.isCharacterDevice() && st.rdev === 0) {
          out.push({ Path: `/${path}`, Kind: 2 });
          continue;
        }
        out.push({ Path: `/${path}`, Kind: (await inLower(path)) ? 0 : 1 });
        if (entry.isDirectory()) await walk(path);
      }
    };
    await walk('');
    return out.sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0));
  }

  private async lowerDirs(base: string): Promise<string[]> {
    let spec: string;
    try {
      spec = await readFile(join(base, 'lower'), 'utf8');
    } catch (err) {
      throw notFound(`No such container: ${basename(base)}`, err);
    }
    return spec.split('\n').filter((l) => l !== '');
  }

  async exportTar(containerId: string): Promise<Readable> {
    const merged = await this.mount(containerId);
    const names = (await readdir(merged)).sort();
    const tarArgs = ['-c', '-f', '-', '-C', merged, '--numeric-owner', '--xattrs', '--', ...names];
    // A tenant's container is archived by root of its range, so owners are the container's.
    const idRange = await this.idRangeOf(containerId);
    const [command, args] = idRange ? [helperPath(), userRangeCommand(idRange, 'tar', tarArgs)] : ['tar', tarArgs];
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      if (code !== 0) child.stdout.destroy(internal(`export failed: ${stderr.trim().split('\n')[0] ?? ''}`));
    });
    return child.stdout;
  }

  async sizeRw(containerId: string): Promise<number> {
    const upper = join(this.dir(containerId), 'upper');
    const seen = new Set<number>();
    let total = 0;
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return;
        throw err;
      }
      for (const entry of entries) {
        const path = join(dir, entry.name);
        const st = await lstat(path);
        if (entry.isDirectory()) {
          await walk(path);
        } else if (!seen.has(st.ino)) {
          // Hard links count once, as Docker's directory size does.
          seen.add(st.ino);
          total += st.size;
        }
      }
    };
    await walk(upper);
    return total;
  }
}

/** Paths as names relative to their common directory (plain absolute paths when there is none). */
export function relativeToCommonDir(paths: string[]): { cwd: string; names: string[] } {
  const parents = new Set(paths.map((p) => dirname(p)));
  if (parents.size === 1) {
    const cwd = [...parents][0]!;
    return { cwd, names: paths.map((p) => basename(p)) };
  }
  return { cwd: '/', names: paths };
}

async function isMountPoint(path: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const escaped = path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return info.split('\n').some((line) => line.split(' ')[4] === escaped);
}
