import type { Dirent } from 'node:fs';
import { posix } from 'node:path';
import type { InstalledPackage } from '../../server/advisor/model.js';
import { containerPath, listResolvedDir, readResolvedFile } from './rootfs-files.js';

/**
 * npm packages from node_modules trees: every `node_modules/<name>/package.json` and
 * `node_modules/@scope/<name>/package.json`, then the package's own nested node_modules
 * (npm's layout for conflicting versions), to `MAX_NESTING` levels. Only those paths are
 * read, never the rest of a package's files, so a large tree costs one readdir per package.
 * pnpm's store inside a project (`node_modules/.pnpm/<name>@<version>/node_modules/<name>`)
 * is read the same way; the symlinks pnpm puts at the top of node_modules are not followed
 * (they point into that store, or to workspace packages that are the project's own code).
 * Bundled copies hidden deeper inside a package's own folders (lib/node_modules) are not
 * found.
 */

const MAX_NESTING = 16;
/** package.json files are small; a huge one is not a package manifest worth parsing. */
const MAX_MANIFEST_BYTES = 1024 * 1024;

export async function readNodeModules(root: string, nodeModulesDir: string, entries: Dirent[], depth = 0): Promise<InstalledPackage[]> {
  const packages: InstalledPackage[] = [];
  for (const entry of entries) {
    if (entry.isDirectory() && entry.name === '.pnpm' && depth < MAX_NESTING) {
      packages.push(...(await readPnpmStore(root, posix.join(nodeModulesDir, entry.name), depth)));
      continue;
    }
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const dir = posix.join(nodeModulesDir, entry.name);
    if (entry.name.startsWith('@')) {
      for (const scoped of await listResolvedDir(root, dir)) {
        if (scoped.isDirectory() && !scoped.name.startsWith('.')) packages.push(...(await readPackageDir(root, posix.join(dir, scoped.name), depth)));
      }
    } else {
      packages.push(...(await readPackageDir(root, dir, depth)));
    }
  }
  return packages;
}

/** `.pnpm/<name>@<version>/node_modules/...`: each entry holds one package (plus links to its dependencies). */
async function readPnpmStore(root: string, store: string, depth: number): Promise<InstalledPackage[]> {
  const packages: InstalledPackage[] = [];
  for (const entry of await listResolvedDir(root, store)) {
    if (!entry.isDirectory() || entry.name === 'node_modules') continue;
    const nested = posix.join(store, entry.name, 'node_modules');
    packages.push(...(await readNodeModules(root, nested, await listResolvedDir(root, nested), depth + 1)));
  }
  return packages;
}

async function readPackageDir(root: string, dir: string, depth: number): Promise<InstalledPackage[]> {
  const packages: InstalledPackage[] = [];
  const manifestPath = posix.join(dir, 'package.json');
  const manifest = await readResolvedFile(root, manifestPath, MAX_MANIFEST_BYTES);
  const pkg = manifest === undefined ? undefined : parsePackageJson(manifest.toString('utf8'), containerPath(root, manifestPath));
  if (pkg !== undefined) packages.push(pkg);
  if (depth < MAX_NESTING) {
    const nested = posix.join(dir, 'node_modules');
    const entries = await listResolvedDir(root, nested);
    if (entries.length > 0) packages.push(...(await readNodeModules(root, nested, entries, depth + 1)));
  }
  return packages;
}

export function parsePackageJson(text: string, location: string): InstalledPackage | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null) return undefined;
  const { name, version } = json as { name?: unknown; version?: unknown };
  if (typeof name !== 'string' || typeof version !== 'string' || name === '' || version === '') return undefined;
  const pkg: InstalledPackage = { ecosystem: 'npm', name, version, location };
  const license = npmLicense(json as Record<string, unknown>);
  if (license) pkg.license = license;
  return pkg;
}

/** `license: "MIT"`, the old `license: {type}` and `licenses: [{type}]` forms. */
function npmLicense(json: Record<string, unknown>): string | undefined {
  const typeOf = (v: unknown): string | undefined =>
    typeof v === 'string' ? v : typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string' ? (v as { type: string }).type : undefined;
  const single = typeOf(json.license);
  if (single) return single;
  if (Array.isArray(json.licenses)) {
    const all = json.licenses.map(typeOf).filter((t): t is string => !!t);
    if (all.length > 0) return all.length === 1 ? all[0] : `(${all.join(' OR ')})`;
  }
  return undefined;
}
