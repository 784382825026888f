import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildInfo } from './types.js';

/**
 * Describes the running Berth: the version from its package.json, the commit of the checkout
 * it runs from (read from .git without running git), and the time this module was compiled.
 * Works from src/ (tests through a loader) and from dist/src/ alike by walking up to the
 * package.json named "berth".
 */
export function readBuildInfo(moduleUrl: string = import.meta.url): BuildInfo {
  const modulePath = fileURLToPath(moduleUrl);
  const root = findPackageRoot(dirname(modulePath));
  let version = '0.0.0';
  if (root !== undefined) {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string };
    version = pkg.version ?? version;
  }
  let buildTime: string;
  try {
    buildTime = statSync(modulePath).mtime.toISOString();
  } catch {
    buildTime = new Date(0).toISOString();
  }
  return {
    version,
    gitCommit: (root !== undefined && readGitCommit(join(root, '.git'))) || 'unknown',
    buildTime,
    runtimeVersion: `node ${process.version}`,
  };
}

function findPackageRoot(start: string): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'berth') return dir;
    } catch {
      // not here; keep walking up
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** The short commit HEAD points at, from a loose ref or packed-refs; undefined without one. */
export function readGitCommit(gitDir: string): string | undefined {
  try {
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
    if (/^[0-9a-f]{40}$/.test(head)) return head.slice(0, 7);
    const ref = /^ref: (\S+)$/.exec(head)?.[1];
    if (ref === undefined) return undefined;
    try {
      return readFileSync(join(gitDir, ref), 'utf8').trim().slice(0, 7);
    } catch {
      const packed = readFileSync(join(gitDir, 'packed-refs'), 'utf8');
      const line = packed.split('\n').find((l) => l.endsWith(` ${ref}`));
      return line?.slice(0, 7);
    }
  } catch {
    return undefined;
  }
}
