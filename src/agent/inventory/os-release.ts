import type { OsRelease } from '../../server/advisor/model.js';
import { readTextInRoot } from './rootfs-files.js';

/** os-release files are a few hundred bytes. */
const MAX_BYTES = 64 * 1024;

/**
 * The distribution of a rootfs from /etc/os-release, falling back to /usr/lib/os-release (the
 * order os-release(5) gives). Debian's /etc/os-release is a relative symlink to
 * ../usr/lib/os-release; links are followed inside the rootfs only.
 */
export async function readOsRelease(root: string): Promise<OsRelease | null> {
  for (const path of ['/etc/os-release', '/usr/lib/os-release']) {
    const text = await readTextInRoot(root, path, MAX_BYTES);
    if (text === undefined) continue;
    const fields = parseOsRelease(text);
    if (fields.ID === undefined || fields.ID === '') continue;
    const release: OsRelease = { id: fields.ID };
    if (fields.VERSION_ID) release.versionId = fields.VERSION_ID;
    if (fields.VERSION_CODENAME) release.codename = fields.VERSION_CODENAME;
    if (fields.PRETTY_NAME) release.prettyName = fields.PRETTY_NAME;
    return release;
  }
  return null;
}

/**
 * KEY=value lines, values optionally in single or double quotes with shell-style backslash
 * escapes inside double quotes (os-release(5)); comments and malformed lines are ignored.
 */
export function parseOsRelease(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!match) continue;
    fields[match[1]!] = unquote(match[2]!);
  }
  return fields;
}

function unquote(value: string): string {
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    return value.slice(1, -1).replace(/\\([\\$"`])/g, '$1');
  }
  if (value.length >= 2 && value.startsWith("'") && value.endsWith("'")) return value.slice(1, -1);
  return value;
}
