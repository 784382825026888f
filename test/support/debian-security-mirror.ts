/**
 * A Debian mirror on loopback for advisor tests: real archive data, fetched once.
 *
 * prepareDebianSecurityMirror() downloads, into <repo>/.cache/debian-mirror/ (gitignored; or
 * $BERTH_DEBIAN_MIRROR_CACHE), the two trees the offline feed builder reads:
 *   debian-security/dists/bookworm-security/{InRelease, main/binary-amd64/Packages.xz}
 *   debian/dists/bookworm/{InRelease, main/binary-amd64/Packages.xz}
 * plus, for each requested source package, the .debs of the security suite the builder will
 * open for its changelog (the same candidates in the same order, until one has it), each
 * checked against the Packages SHA256. Indexes are fetched once per cache: a later run serves
 * the same snapshot even when the archive has moved on, so the tests are stable — until the
 * security suite's InRelease expires (Valid-Until, a week), when the snapshot is refreshed.
 *
 * startDebianSecurityMirror() serves that tree read-only on 127.0.0.1 (random port) and
 * records the paths asked for. `corrupt` lets a test make the mirror lie about a file.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unxz } from '../../src/server/advisor/feeds/debian-archive/archive-client.js';
import { changelogCandidates, isChangelogOf } from '../../src/server/advisor/feeds/debian-archive/archive-feed.js';
import { readDebChangelog } from '../../src/server/advisor/feeds/debian-archive/deb-changelog.js';
import { parsePackagesIndex, type BinaryPackage } from '../../src/server/advisor/feeds/debian-archive/packages-index.js';
import { parseReleaseFile } from '../../src/server/advisor/feeds/debian-archive/release-file.js';
import { compareDebianVersions } from '../../src/server/advisor/versions/debian.js';

export const UPSTREAM = 'http://deb.debian.org';
export const SECURITY_SUITE = 'bookworm-security';
export const BASE_SUITE = 'bookworm';
const INDEX = 'main/binary-amd64/Packages.xz';

/** <repo>/.cache/debian-mirror, or $BERTH_DEBIAN_MIRROR_CACHE. */
export function mirrorCacheDir(): string {
  return process.env.BERTH_DEBIAN_MIRROR_CACHE ?? fileURLToPath(new URL('../../../.cache/debian-mirror/', import.meta.url));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function download(url: string): Promise<Buffer> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

async function writeAtomically(path: string, data: Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Fetches a suite's InRelease and Packages.xz once, checking the index against InRelease. */
async function ensureSuite(archive: string, suite: string): Promise<void> {
  const root = join(mirrorCacheDir(), archive, 'dists', suite);
  if ((await exists(join(root, 'InRelease'))) && (await exists(join(root, INDEX)))) {
    // The security suite's InRelease expires after a week (Valid-Until), and the builder
    // refuses an expired one as apt does: then the snapshot is refreshed, index and all.
    const validUntil = parseReleaseFile(await readFile(join(root, 'InRelease'), 'utf8')).validUntil;
    if (validUntil === undefined || validUntil.getTime() > Date.now() + 3600_000) return;
  }
  const inRelease = await download(`${UPSTREAM}/${archive}/dists/${suite}/InRelease`);
  const expected = parseReleaseFile(inRelease.toString('utf8')).files.get(INDEX);
  if (expected === undefined) throw new Error(`${suite}: InRelease lists no ${INDEX}`);
  const index = await download(`${UPSTREAM}/${archive}/dists/${suite}/${INDEX}`);
  if (sha256(index) !== expected.sha256) throw new Error(`${suite}: ${INDEX} does not match InRelease (the mirror moved mid-download? retry)`);
  await writeAtomically(join(root, INDEX), index);
  await writeAtomically(join(root, 'InRelease'), inRelease);
}

const parsedIndexes = new Map<string, Promise<BinaryPackage[]>>();

/** The cached Packages index of a suite (`debian-security`/`bookworm-security`, `debian`/`bookworm`). */
export function cachedPackages(archive: 'debian' | 'debian-security'): Promise<BinaryPackage[]> {
  const suite = archive === 'debian' ? BASE_SUITE : SECURITY_SUITE;
  let parsed = parsedIndexes.get(archive);
  if (parsed === undefined) {
    parsed = (async () => {
      await ensureSuite(archive, suite);
      const text = await unxz(await readFile(join(mirrorCacheDir(), archive, 'dists', suite, INDEX)));
      return parsePackagesIndex(text);
    })();
    parsedIndexes.set(archive, parsed);
  }
  return parsed;
}

/** The cached path of a pool file (a .deb) of the security archive. */
export function cachedPoolPath(filename: string): string {
  return join(mirrorCacheDir(), 'debian-security', filename);
}

/**
 * Whether a cached .deb carries `source`'s changelog; the answer is remembered next to it
 * (`<deb>.changelog-of-<source>`: yes/no), so preparing a warm mirror reads no package again.
 */
async function hasOwnChangelog(debPath: string, source: string): Promise<boolean> {
  const marker = `${debPath}.changelog-of-${source}`;
  const known = await readFile(marker, 'utf8').catch(() => undefined);
  if (known !== undefined) return known === 'yes';
  const text = await readDebChangelog(debPath);
  const answer = text !== null && isChangelogOf(text, source);
  await writeAtomically(marker, Buffer.from(answer ? 'yes' : 'no'));
  return answer;
}

/** Downloads the indexes and, per source, the .debs the builder will read its changelog from. */
export async function prepareDebianSecurityMirror(opts: { sourcePackages: string[] }): Promise<void> {
  const security = await cachedPackages('debian-security');
  const newest = new Map<string, string>();
  for (const p of security) {
    const seen = newest.get(p.source);
    if (seen === undefined || compareDebianVersions(p.sourceVersion, seen) > 0) newest.set(p.source, p.sourceVersion);
  }
  // The builder reads nothing for a source the base suite already has at that version or later.
  for (const p of await cachedPackages('debian')) {
    const version = newest.get(p.source);
    if (version !== undefined && compareDebianVersions(version, p.sourceVersion) <= 0) newest.delete(p.source);
  }
  const queue = [...opts.sourcePackages];
  const worker = async (): Promise<void> => {
    for (let source = queue.shift(); source !== undefined; source = queue.shift()) {
      const version = newest.get(source);
      if (version === undefined) continue;
      const binaries = security.filter((p) => p.source === source && p.sourceVersion === version);
      for (const binary of changelogCandidates(binaries)) {
        const path = cachedPoolPath(binary.filename);
        if (!(await exists(path))) {
          const deb = await download(`${UPSTREAM}/debian-security/${binary.filename}`);
          if (sha256(deb) !== binary.sha256) throw new Error(`${binary.filename}: SHA256 does not match Packages`);
          await writeAtomically(path, deb);
        }
        if (await hasOwnChangelog(path, source)) break;
      }
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

/** Every source package of the cached security suite (for a full-feed benchmark). */
export async function securitySuiteSources(): Promise<string[]> {
  return [...new Set((await cachedPackages('debian-security')).map((p) => p.source))].sort();
}

export interface DebianMirror {
  /** http://127.0.0.1:<port> */
  url: string;
  /** The security archive's base URL, as buildDebianArchiveFeed takes it. */
  securityUrl: string;
  /** Paths requested, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** Serves the cached tree on a random loopback port. */
export async function startDebianSecurityMirror(opts: { corrupt?: (path: string) => boolean } = {}): Promise<DebianMirror> {
  const root = mirrorCacheDir();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://mirror').pathname);
    requests.push(path);
    const file = normalize(join(root, path));
    if (!file.startsWith(root) || path.includes('.tmp-') || req.method !== 'GET') {
      res.writeHead(404).end();
      return;
    }
    stat(file).then(
      async (info) => {
        if (!info.isFile()) {
          res.writeHead(404).end();
          return;
        }
        if (opts.corrupt?.(path) === true) {
          const data = await readFile(file);
          data[data.length >> 1] ^= 0xff;
          res.writeHead(200, { 'content-length': data.length }).end(data);
          return;
        }
        res.writeHead(200, { 'content-length': info.size });
        createReadStream(file).pipe(res);
      },
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    securityUrl: `${url}/debian-security`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Removes the cache (for a test that wants a cold start; not used by default). */
export async function clearMirrorCache(): Promise<void> {
  await rm(mirrorCacheDir(), { recursive: true, force: true });
}
