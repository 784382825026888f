import { posix } from 'node:path';
import type { InstalledPackage } from '../../server/advisor/model.js';
import { readNodeModules } from './npm.js';
import { parsePythonMetadata } from './python.js';
import { containerPath, listResolvedDir, readResolvedFile } from './rootfs-files.js';
import { walkRootfs, type WalkLimits } from './walk.js';

/**
 * npm and Python packages wherever an image keeps them (/usr/lib/node_modules, /app, a
 * virtualenv under /opt, site-packages...): one bounded walk of the whole rootfs (see walk.ts
 * for the caps) that hands each node_modules directory to npm.ts and reads each Python
 * metadata file, without descending into either.
 *
 * Trees that never hold language packages but are large in every Debian image are not
 * walked: documentation, man pages, locales, time zones, headers, dpkg's own database and the
 * apt cache.
 */

const NOT_WALKED = [
  '/usr/share/doc',
  '/usr/share/man',
  '/usr/share/locale',
  '/usr/share/i18n',
  '/usr/share/zoneinfo',
  '/usr/share/info',
  '/usr/include',
  '/var/lib/dpkg',
  '/var/lib/apt/lists',
  '/var/cache',
  '/var/log',
  '/run',
];

const MAX_METADATA_BYTES = 16 * 1024 * 1024;

export async function readLanguagePackages(root: string, limits?: WalkLimits): Promise<{ packages: InstalledPackage[]; truncated: boolean }> {
  const packages: InstalledPackage[] = [];
  const result = await walkRootfs(
    root,
    '/',
    {
      directory: async (hostPath, _path, entries) => {
        const descend: string[] = [];
        for (const entry of entries) {
          const name = entry.name;
          if (entry.isDirectory()) {
            if (name === 'node_modules') {
              const dir = posix.join(hostPath, name);
              packages.push(...(await readNodeModules(root, dir, await listResolvedDir(root, dir))));
            } else if (name.endsWith('.dist-info')) {
              await readPython(root, posix.join(hostPath, name, 'METADATA'), packages);
            } else if (name.endsWith('.egg-info')) {
              await readPython(root, posix.join(hostPath, name, 'PKG-INFO'), packages);
            } else {
              descend.push(name);
            }
          } else if (entry.isFile() && name.endsWith('.egg-info')) {
            await readPython(root, posix.join(hostPath, name), packages);
          }
        }
        return descend;
      },
    },
    { skip: NOT_WALKED, ...(limits ? { limits } : {}) },
  );
  // Walk order depends on the file system; stored inventories should not.
  packages.sort((a, b) => (a.location < b.location ? -1 : a.location > b.location ? 1 : 0));
  return { packages, truncated: result.truncated };
}

async function readPython(root: string, hostPath: string, into: InstalledPackage[]): Promise<void> {
  const text = (await readResolvedFile(root, hostPath, MAX_METADATA_BYTES))?.toString('utf8');
  if (text === undefined) return;
  const pkg = parsePythonMetadata(text, containerPath(root, hostPath));
  if (pkg !== undefined) into.push(pkg);
}
