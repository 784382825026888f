/**
 * Which release's OS advisories apply to an inventory: `debian:<codename>`, from os-release's
 * VERSION_CODENAME or, when an image lacks it, from VERSION_ID (12 -> bookworm). Other
 * distributions are `<id>:<codename or version id>`; nothing known means no OS matching at
 * all, because Debian's data must never be applied to another distribution's packages.
 */
import { DEBIAN_CODENAMES } from '../feeds/osv.js';
import type { OsRelease } from '../model.js';

export function releaseOf(os: OsRelease | null): string | undefined {
  if (os === null || os.id.trim() === '') return undefined;
  const id = os.id.trim().toLowerCase();
  const codename = os.codename?.trim().toLowerCase() || undefined;
  if (id === 'debian') {
    const fromVersion = os.versionId === undefined ? undefined : DEBIAN_CODENAMES[os.versionId.trim().split('.')[0]!];
    const name = codename ?? fromVersion;
    return name === undefined ? undefined : `debian:${name}`;
  }
  const name = codename ?? os.versionId?.trim();
  return name === undefined || name === '' ? undefined : `${id}:${name}`;
}
