/**
 * What is installed in a root filesystem, and what a live container is doing (issue 8).
 *
 * Entry points the Vulnerability Advisor calls:
 * - takeInventory(rootfs): OS release, OS packages (dpkg incl. status.d, apk, rpm's SQLite
 *   db) and language packages (npm, PyPI) of an image's or a container's root, as an
 *   Inventory (model.ts);
 * - readRuntimeState({pid, upperDir, rootfs}): processes, listening sockets and drift of a
 *   running container.
 *
 * Every file read treats the rootfs as hostile: see rootfs-files.ts. rpm is read from its
 * SQLite database only (rpm.ts); the Berkeley DB and NDB formats are not.
 */
import type { Inventory } from '../../server/advisor/model.js';
import { readApkPackages } from './apk.js';
import { readDpkgPackages } from './dpkg.js';
import { readLanguagePackages } from './language-packages.js';
import { readOsRelease } from './os-release.js';
import { canonicalRoot } from './rootfs-files.js';
import { readRpmPackages } from './rpm.js';

export { readRuntimeState } from './runtime-state.js';

export async function takeInventory(rootfs: string): Promise<Inventory> {
  const root = await canonicalRoot(rootfs);
  const [os, dpkg, apk, rpm, language] = await Promise.all([
    readOsRelease(root),
    readDpkgPackages(root),
    readApkPackages(root),
    readRpmPackages(root),
    readLanguagePackages(root),
  ]);
  return { schema: 1, os, packages: [...dpkg, ...apk, ...rpm, ...language.packages], takenAt: new Date().toISOString() };
}
