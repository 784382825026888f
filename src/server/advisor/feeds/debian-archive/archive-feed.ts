/**
 * The offline feed builder: advisories for one Debian release made only from what an apt
 * mirror serves, no security tracker needed.
 *
 * For each source package in the security suite (bookworm-security) whose version there is
 * above the base suite's (older security uploads stay in the archive after a point release
 * has included them; those are skipped without a download):
 * 1. its version there is the newest fixed version (from main/binary-amd64/Packages, whose
 *    `Source:` fields name the source and, for binNMUs or renamed versions, its version);
 * 2. its version in the base suite (bookworm) is what an image without security updates has;
 * 3. the changelog.Debian inside one of its .debs (the smallest first; another when a doc
 *    directory is a symlink) lists every upload with the CVEs it fixed;
 * 4. each CVE mentioned by an entry newer than the base version is fixed at the EARLIEST such
 *    entry (a later entry mentioning it again is a follow-up, not the fix), capped at the
 *    security suite's version (a backport's changelog can carry unstable entries above it).
 *
 * Every index is checked against the Release file's SHA256 and every .deb against the
 * Packages file's, and cached by digest under cacheDir, so rebuilding is cheap and offline
 * once the cache is warm. Severity is `unknown`: an upload's urgency is about the upload, not
 * the flaw; the tracker importer's severity wins when the service merges both feeds.
 */
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument } from '../../../../common/errors.js';
import type { Advisory } from '../../model.js';
import { compareDebianVersions } from '../../versions/debian.js';
import { isKernelSource } from '../kernel.js';
import { ArchiveClient } from './archive-client.js';
import { cvesMentioned, lineMentioning, parseDebianChangelog, type ChangelogEntry } from './changelog.js';
import { readDebChangelog } from './deb-changelog.js';
import { parsePackagesIndex, type BinaryPackage } from './packages-index.js';
import { parseReleaseFile, type ReleaseFile } from './release-file.js';
import { DEBIAN_ARCHIVE_KEYRING, verifyClearsigned } from './release-signature.js';

export interface ArchiveFeedProgress {
  phase: 'indexes' | 'changelogs' | 'done';
  done: number;
  total: number;
  source?: string;
}

export interface ArchiveFeedOptions {
  /** Security archive base URL, e.g. http://deb.debian.org/debian-security. */
  mirror: string;
  /** e.g. bookworm-security. */
  suite: string;
  /** The release the advisories apply to, e.g. debian:bookworm. */
  release: string;
  cacheDir: string;
  /** Only these source packages (still all of them that the security suite has). */
  sourcePackages?: string[];
  /** The base archive; default: the mirror URL with `-security` dropped (…/debian). */
  baseMirror?: string;
  /** The base suite; default: the suite with `-security` dropped (bookworm). */
  baseSuite?: string;
  /**
   * OpenPGP keyring that must have signed each suite's InRelease (gpgv, as apt checks it).
   * Default: Debian's archive keyring; null skips the check (a mirror the operator already
   * verified), and then a plain Release file is accepted too.
   */
  keyring?: string | null;
  /** Accept a Release file past its Valid-Until (apt's Check-Valid-Until=false); default false. */
  allowExpired?: boolean;
  component?: string;
  architecture?: string;
  /** Parallel .deb downloads; default 4. */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (progress: ArchiveFeedProgress) => void;
}

/** What one source contributed, for provenance and for tests that re-check the attribution. */
export interface SourceReport {
  source: string;
  securityVersion: string;
  baseVersion: string | null;
  /**
   * `read`: a changelog was found and parsed; `no-changelog`: none of the candidate .debs had
   * one; `not-newer`: the security suite's version is not above the base suite's (the archive
   * keeps superseded security uploads once a point release includes them), so nothing was
   * downloaded.
   */
  outcome: 'read' | 'no-changelog' | 'not-newer';
  /** The binary whose changelog was read, and that changelog's text; null when none had one. */
  changelogFrom: BinaryPackage | null;
  changelog: string | null;
  advisories: Advisory[];
}

export interface ArchiveFeed {
  advisories: Advisory[];
  sources: SourceReport[];
  /** Release file dates and index digests the feed was built from. */
  provenance: string[];
}

const CANDIDATE_LIMIT = 12;

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

function defaultBaseMirror(mirror: string): string {
  return trimSlash(mirror).replace(/-security$/, '');
}

/**
 * A suite's Release file. With a keyring, only a signed InRelease is accepted and only its
 * signed text is read; without one (keyring: null), InRelease or a plain Release.
 */
async function fetchRelease(client: ArchiveClient, mirror: string, suite: string, keyring: string | null, now: Date | null): Promise<ReleaseFile> {
  const dists = `${trimSlash(mirror)}/dists/${suite}`;
  let release: ReleaseFile;
  if (keyring === null) {
    const { body } = await client.fetchFirst([`${dists}/InRelease`, `${dists}/Release`]);
    release = parseReleaseFile(body);
  } else {
    const signed = await client.fetchText(`${dists}/InRelease`);
    release = parseReleaseFile(await verifyClearsigned(signed, keyring, `${suite}/InRelease`));
  }
  // As apt: a signed but expired Release file may be an old one replayed to hide new fixes.
  if (now !== null && release.validUntil !== undefined && release.validUntil.getTime() < now.getTime()) {
    throw invalidArgument(`${suite}: the Release file expired at ${release.validUntil.toISOString()} (Valid-Until); the mirror is stale or replayed`);
  }
  return release;
}

async function defaultKeyring(): Promise<string> {
  if (await stat(DEBIAN_ARCHIVE_KEYRING).then(() => true, () => false)) return DEBIAN_ARCHIVE_KEYRING;
  throw invalidArgument(`No keyring to check the archive's signatures: install debian-archive-keyring (${DEBIAN_ARCHIVE_KEYRING}) or pass one`);
}

async function fetchPackages(client: ArchiveClient, mirror: string, suite: string, release: ReleaseFile, component: string, arch: string): Promise<{ packages: BinaryPackage[]; provenance: string }> {
  const path = `${component}/binary-${arch}/Packages.xz`;
  const entry = release.files.get(path);
  if (entry === undefined) throw invalidArgument(`${suite}'s Release file lists no ${path}`);
  const text = await client.fetchXzText(`${trimSlash(mirror)}/dists/${suite}/${path}`, entry.sha256, entry.size);
  return { packages: parsePackagesIndex(text), provenance: `${suite} ${release.date ?? ''} ${path} sha256:${entry.sha256}` };
}

/** The newest source version per source package. */
function sourceVersions(packages: BinaryPackage[]): Map<string, string> {
  const versions = new Map<string, string>();
  for (const p of packages) {
    const seen = versions.get(p.source);
    if (seen === undefined || compareDebianVersions(p.sourceVersion, seen) > 0) versions.set(p.source, p.sourceVersion);
  }
  return versions;
}

/**
 * Whether a changelog entry came after the base suite's version. A backport such as
 * 115.9.0esr-1~deb12u1 already contains the unstable upload 115.9.0esr-1 it was made from,
 * although dpkg orders the latter higher.
 */
function isNewerThanBase(entryVersion: string, baseVersion: string | null): boolean {
  if (baseVersion === null) return true;
  return compareDebianVersions(entryVersion, baseVersion) > 0 && !baseVersion.startsWith(`${entryVersion}~`);
}

/** Advisories for one source from its changelog (pure: the heart of the builder). */
export function advisoriesFromChangelog(opts: {
  source: string;
  release: string;
  codename: string;
  securityVersion: string;
  baseVersion: string | null;
  entries: ChangelogEntry[];
}): Advisory[] {
  const fixedAt = new Map<string, { version: string; summary?: string }>();
  // Oldest entry first, so the first entry to mention a CVE is where it was fixed.
  for (const entry of [...opts.entries].reverse()) {
    if (!isNewerThanBase(entry.version, opts.baseVersion)) continue;
    // A source only in the security suite has no base version: only uploads made for this
    // release count then, not decades of unrelated history.
    if (opts.baseVersion === null && !entry.distributions.some((d) => d.startsWith(opts.codename))) continue;
    for (const cve of cvesMentioned(entry.text)) {
      if (fixedAt.has(cve)) continue;
      const capped = compareDebianVersions(entry.version, opts.securityVersion) > 0 ? opts.securityVersion : entry.version;
      fixedAt.set(cve, { version: capped, summary: lineMentioning(entry.text, cve) });
    }
  }
  return [...fixedAt].map(([cve, { version, summary }]) => ({
    id: cve,
    ecosystem: 'deb' as const,
    release: opts.release,
    package: opts.source,
    status: 'fixed' as const,
    fixedVersion: version,
    severity: 'unknown' as const,
    severitySource: 'none',
    ...(summary !== undefined ? { summary } : {}),
    source: 'debian-archive-changelog',
  }));
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) await work(items[next++]!);
  });
  await Promise.all(workers);
}

/**
 * The binaries of one source whose .deb may hold its changelog, in the order they are tried:
 * a `-common` package first (where multi-binary sources keep the shared doc directory that
 * the others symlink to), then smallest download first. Exported so a test mirror can fetch
 * exactly these.
 */
export function changelogCandidates(binaries: BinaryPackage[]): BinaryPackage[] {
  const common = (p: BinaryPackage): number => (p.package.endsWith('-common') && !p.package.endsWith('-dbg') ? 0 : 1);
  return [...binaries].sort((a, b) => common(a) - common(b) || a.size - b.size || a.package.localeCompare(b.package)).slice(0, CANDIDATE_LIMIT);
}

/** Whether a changelog text is `source`'s own (a .deb can carry another source's doc directory). */
export function isChangelogOf(text: string, source: string): boolean {
  return parseDebianChangelog(text.slice(0, 4096))[0]?.source === source;
}

/**
 * A .deb's changelog, remembered by the .deb's digest under <cacheDir>/changelogs/ (an empty
 * `.none` file when it has none), so a rebuild need not decompress any package again.
 */
async function cachedDebChangelog(client: ArchiveClient, cacheDir: string, mirror: string, binary: BinaryPackage): Promise<string | null> {
  const dir = join(cacheDir, 'changelogs');
  const textPath = join(dir, `${binary.sha256}.txt`);
  const nonePath = join(dir, `${binary.sha256}.none`);
  const cached = await readFile(textPath, 'utf8').catch(() => undefined);
  if (cached !== undefined) return cached;
  if (await stat(nonePath).then(() => true, () => false)) return null;
  const deb = await client.fetchVerified(`${trimSlash(mirror)}/${binary.filename}`, binary.sha256, binary.size);
  const text = await readDebChangelog(deb);
  await mkdir(dir, { recursive: true });
  const target = text === null ? nonePath : textPath;
  const tmp = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  await writeFile(tmp, text ?? '');
  await rename(tmp, target);
  return text;
}

async function changelogForSource(client: ArchiveClient, cacheDir: string, mirror: string, source: string, binaries: BinaryPackage[]): Promise<{ from: BinaryPackage; text: string } | null> {
  for (const binary of changelogCandidates(binaries)) {
    const text = await cachedDebChangelog(client, cacheDir, mirror, binary);
    if (text !== null && isChangelogOf(text, source)) return { from: binary, text };
  }
  return null;
}

/** Builds the feed and reports what each source contributed. */
export async function buildDebianArchiveFeedDetailed(opts: ArchiveFeedOptions): Promise<ArchiveFeed> {
  const component = opts.component ?? 'main';
  const arch = opts.architecture ?? 'amd64';
  const baseMirror = opts.baseMirror ?? defaultBaseMirror(opts.mirror);
  const baseSuite = opts.baseSuite ?? opts.suite.replace(/-security$/, '');
  const codename = opts.release.includes(':') ? opts.release.slice(opts.release.indexOf(':') + 1) : baseSuite;
  const client = new ArchiveClient(opts.cacheDir, opts.signal);

  opts.onProgress?.({ phase: 'indexes', done: 0, total: 2 });
  const keyring = opts.keyring === undefined ? await defaultKeyring() : opts.keyring;
  const now = opts.allowExpired === true ? null : new Date();
  const securityRelease = await fetchRelease(client, opts.mirror, opts.suite, keyring, now);
  const security = await fetchPackages(client, opts.mirror, opts.suite, securityRelease, component, arch);
  opts.onProgress?.({ phase: 'indexes', done: 1, total: 2 });
  const baseRelease = await fetchRelease(client, baseMirror, baseSuite, keyring, now);
  const base = await fetchPackages(client, baseMirror, baseSuite, baseRelease, component, arch);
  opts.onProgress?.({ phase: 'indexes', done: 2, total: 2 });

  const securityVersions = sourceVersions(security.packages);
  const baseVersions = sourceVersions(base.packages);
  const wanted = opts.sourcePackages === undefined ? null : new Set(opts.sourcePackages);
  const sources = [...securityVersions.keys()].filter((s) => !isKernelSource(s) && (wanted === null || wanted.has(s))).sort();

  const reports: SourceReport[] = [];
  let done = 0;
  await eachLimited(sources, opts.concurrency ?? 4, async (source) => {
    opts.signal?.throwIfAborted();
    const securityVersion = securityVersions.get(source)!;
    const baseVersion = baseVersions.get(source) ?? null;
    if (baseVersion !== null && compareDebianVersions(securityVersion, baseVersion) <= 0) {
      reports.push({ source, securityVersion, baseVersion, outcome: 'not-newer', changelogFrom: null, changelog: null, advisories: [] });
    } else {
      const binaries = security.packages.filter((p) => p.source === source && p.sourceVersion === securityVersion);
      const found = await changelogForSource(client, opts.cacheDir, opts.mirror, source, binaries);
      const advisories =
        found === null
          ? []
          : advisoriesFromChangelog({ source, release: opts.release, codename, securityVersion, baseVersion, entries: parseDebianChangelog(found.text) });
      reports.push({ source, securityVersion, baseVersion, outcome: found === null ? 'no-changelog' : 'read', changelogFrom: found?.from ?? null, changelog: found?.text ?? null, advisories });
    }
    opts.onProgress?.({ phase: 'changelogs', done: ++done, total: sources.length, source });
  });
  reports.sort((a, b) => a.source.localeCompare(b.source));
  opts.onProgress?.({ phase: 'done', done: sources.length, total: sources.length });
  return {
    advisories: reports.flatMap((r) => r.advisories),
    sources: reports,
    provenance: [security.provenance, base.provenance],
  };
}

/** The advisories only (the service's entry point). */
export async function buildDebianArchiveFeed(opts: ArchiveFeedOptions): Promise<Advisory[]> {
  return (await buildDebianArchiveFeedDetailed(opts)).advisories;
}
