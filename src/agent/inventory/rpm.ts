import Database from 'better-sqlite3';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstalledPackage } from '../../server/advisor/model.js';
import { readFileInRoot } from './rootfs-files.js';

/**
 * RPM packages from rpm's SQLite database (rpm >= 4.16: Fedora 33+, RHEL/Rocky/Alma 9,
 * Amazon Linux 2023, openSUSE's newer images), at /usr/lib/sysimage/rpm/rpmdb.sqlite or
 * /var/lib/rpm/rpmdb.sqlite. The older Berkeley DB `Packages` file (RHEL/CentOS 7 and 8,
 * Amazon Linux 2) and SUSE's NDB `Packages.db` are not read: no library for them is at hand.
 *
 * The database and its write-ahead log (rpm keeps the database in WAL mode, and recent
 * changes may still sit in rpmdb.sqlite-wal) are read like any other untrusted file (inside
 * the rootfs, size-capped) and copied into a private temp dir that SQLite opens, so SQLite
 * never opens a path inside the image. Each row of the Packages table is an rpm header blob:
 *
 *   uint32 BE index count, uint32 BE data length,
 *   count × { int32 tag, uint32 type, int32 offset, uint32 count } (big-endian),
 *   data (strings NUL-terminated, integers big-endian).
 *
 * Only the tags we need are decoded; a malformed blob is skipped.
 */

const DATABASES = ['/usr/lib/sysimage/rpm/rpmdb.sqlite', '/var/lib/rpm/rpmdb.sqlite'];
const MAX_DB_BYTES = 1024 * 1024 * 1024;

const TAG = { name: 1000, version: 1001, release: 1002, epoch: 1003, license: 1014, arch: 1022, sourceRpm: 1044 } as const;
const TYPE = { int32: 4, string: 6, stringArray: 8, i18nString: 9 } as const;

export async function readRpmPackages(root: string): Promise<InstalledPackage[]> {
  for (const path of DATABASES) {
    const bytes = await readFileInRoot(root, path, MAX_DB_BYTES);
    if (bytes === undefined) continue;
    const wal = await readFileInRoot(root, `${path}-wal`, MAX_DB_BYTES);
    const dir = await mkdtemp(join(tmpdir(), 'berth-rpmdb-'));
    try {
      const copy = join(dir, 'rpmdb.sqlite');
      await writeFile(copy, bytes, { mode: 0o600 });
      if (wal !== undefined && wal.length > 0) await writeFile(`${copy}-wal`, wal, { mode: 0o600 });
      return parseRpmDatabase(copy, path);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return [];
}

/** Packages of the rpm SQLite database at `file` (a private copy), [] if it is not one. */
export function parseRpmDatabase(file: string, location: string): InstalledPackage[] {
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true });
  } catch {
    return [];
  }
  try {
    const rows = db.prepare('SELECT blob FROM Packages').all() as { blob: Buffer }[];
    return rows.flatMap(({ blob }) => {
      const pkg = packageFromHeader(blob, location);
      return pkg === undefined ? [] : [pkg];
    });
  } catch {
    return [];
  } finally {
    db.close();
  }
}

interface HeaderFields {
  strings: Map<number, string>;
  ints: Map<number, number>;
}

/** Decodes the wanted tags of one header blob; undefined when the blob is malformed. */
export function decodeHeader(blob: Buffer): HeaderFields | undefined {
  if (blob.length < 8) return undefined;
  const count = blob.readUInt32BE(0);
  const dataLength = blob.readUInt32BE(4);
  const dataStart = 8 + count * 16;
  if (count > 100_000 || dataStart + dataLength > blob.length) return undefined;
  const wanted = new Set<number>(Object.values(TAG));
  const fields: HeaderFields = { strings: new Map(), ints: new Map() };
  for (let i = 0; i < count; i++) {
    const entry = 8 + i * 16;
    const tag = blob.readInt32BE(entry);
    if (!wanted.has(tag)) continue;
    const type = blob.readUInt32BE(entry + 4);
    const offset = blob.readInt32BE(entry + 8);
    if (offset < 0 || offset >= dataLength) return undefined;
    const at = dataStart + offset;
    if (type === TYPE.int32) {
      if (offset + 4 > dataLength) return undefined;
      fields.ints.set(tag, blob.readInt32BE(at));
    } else if (type === TYPE.string || type === TYPE.stringArray || type === TYPE.i18nString) {
      // The first string: for arrays and translated strings that is the untranslated one.
      const end = blob.indexOf(0, at);
      if (end === -1 || end > dataStart + dataLength) return undefined;
      fields.strings.set(tag, blob.toString('utf8', at, end));
    }
  }
  return fields;
}

function packageFromHeader(blob: Buffer, location: string): InstalledPackage | undefined {
  const fields = decodeHeader(blob);
  if (fields === undefined) return undefined;
  const name = fields.strings.get(TAG.name);
  const version = fields.strings.get(TAG.version);
  const release = fields.strings.get(TAG.release);
  // gpg-pubkey entries are imported signing keys, not software.
  if (!name || !version || name === 'gpg-pubkey') return undefined;
  const epoch = fields.ints.get(TAG.epoch);
  const evr = `${epoch ? `${epoch}:` : ''}${version}${release ? `-${release}` : ''}`;
  const pkg: InstalledPackage = { ecosystem: 'rpm', name, version: evr, location };
  const source = parseSourceRpm(fields.strings.get(TAG.sourceRpm));
  pkg.sourceName = source?.name ?? name;
  pkg.sourceVersion = source === undefined ? evr : `${epoch ? `${epoch}:` : ''}${source.version}`;
  const arch = fields.strings.get(TAG.arch);
  if (arch) pkg.architecture = arch;
  const license = fields.strings.get(TAG.license);
  if (license) pkg.license = license;
  return pkg;
}

/** `openssl-3.0.7-25.el9_3.src.rpm` → openssl, 3.0.7-25.el9_3 (name may contain dashes). */
export function parseSourceRpm(value: string | undefined): { name: string; version: string } | undefined {
  const match = /^(.+)-([^-]+)-([^-]+)\.(?:no)?src\.rpm$/.exec(value ?? '');
  return match ? { name: match[1]!, version: `${match[2]}-${match[3]}` } : undefined;
}
