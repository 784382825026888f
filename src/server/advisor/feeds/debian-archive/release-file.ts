/**
 * A suite's Release or InRelease file: the index files it lists with their SHA256 and size.
 * Every index Berth downloads is checked against this list, so a corrupted or substituted
 * Packages file is refused. The OpenPGP signature of InRelease is checked before this
 * parser sees the text (release-signature.ts); the unwrapping here serves unchecked mirrors.
 */
import { invalidArgument } from '../../../../common/errors.js';
import { parseDeb822 } from './deb822.js';

export interface ReleaseFile {
  suite?: string;
  codename?: string;
  /** The Release file's own Date: field, kept for the feed's provenance. */
  date?: string;
  /** `Valid-Until:` (security suites have one): after it, the file may be a replayed old one. */
  validUntil?: Date;
  /** Index path relative to dists/<suite>/ -> digest and size. */
  files: Map<string, { sha256: string; size: number }>;
}

/** Strips an OpenPGP clearsign wrapper, leaving the signed text. */
function unwrapClearsigned(text: string): string {
  if (!text.startsWith('-----BEGIN PGP SIGNED MESSAGE-----')) return text;
  const bodyStart = text.indexOf('\n\n');
  const sigStart = text.indexOf('\n-----BEGIN PGP SIGNATURE-----');
  if (bodyStart < 0 || sigStart < bodyStart) throw invalidArgument('InRelease is not a well-formed clearsigned file');
  // Dash-escaped lines ("- -----") lose their escape.
  return text.slice(bodyStart + 2, sigStart).replace(/^- /gm, '');
}

export function parseReleaseFile(text: string): ReleaseFile {
  const [paragraph] = parseDeb822(unwrapClearsigned(text));
  if (paragraph === undefined) throw invalidArgument('Release file is empty');
  const files = new Map<string, { sha256: string; size: number }>();
  for (const line of (paragraph.get('sha256') ?? '').split('\n')) {
    const [sha256, size, path] = line.trim().split(/\s+/);
    if (sha256 !== undefined && /^[0-9a-f]{64}$/.test(sha256) && size !== undefined && path !== undefined) {
      files.set(path, { sha256, size: Number(size) });
    }
  }
  if (files.size === 0) throw invalidArgument('Release file lists no SHA256 checksums');
  const validUntilField = paragraph.get('valid-until');
  const validUntil = validUntilField === undefined ? undefined : new Date(validUntilField);
  if (validUntil !== undefined && Number.isNaN(validUntil.getTime())) throw invalidArgument(`Release file has an unreadable Valid-Until: ${validUntilField}`);
  return { suite: paragraph.get('suite'), codename: paragraph.get('codename'), date: paragraph.get('date'), ...(validUntil !== undefined ? { validUntil } : {}), files };
}
