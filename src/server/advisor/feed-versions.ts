import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument, isKind, unavailable } from '../../common/errors.js';
import type { AdvisorDb, FeedSummary } from './advisor-db.js';
import { mergeAdvisories } from './feed-merge.js';
import type { Advisory, FeedSnapshot } from './model.js';
import { FeedIndex, buildDebianArchiveFeed, importDebianTracker, importOsv } from './parts.js';

export type FeedSource = { format: 'debian-tracker'; name: string; data: unknown } | { format: 'osv'; name: string; data: unknown };

export interface ArchiveFeedInput {
  mirror: string;
  suite: string;
  release?: string;
  sourcePackages?: string[];
  replace?: boolean;
}

/** A stored feed version with its matching index. */
export interface CurrentFeed {
  snapshot: FeedSnapshot;
  index: FeedIndex;
}

/**
 * Feed versions: how advisories get in (tracker JSON, OSV, the Debian archive), and which
 * version findings use (the newest). Each import or build stores a new immutable version —
 * the previous one plus what came in (mergeAdvisories), or only what came in with `replace`.
 * The index of the newest version is kept in memory, built once per version.
 */
export class FeedVersions {
  private current: CurrentFeed | null | undefined;

  constructor(
    private readonly db: AdvisorDb,
    /** Where the archive builder caches indexes and changelogs: `<data-root>/advisor/archive-cache`. */
    private readonly cacheDir: string,
  ) {}

  list(): FeedSummary[] {
    return this.db.listFeeds();
  }

  /** The newest version, or null before the first feed. */
  now(): CurrentFeed | null {
    if (this.current === undefined) {
      const snapshot = this.db.latestFeed();
      this.current = snapshot ? { snapshot, index: new FeedIndex(snapshot.advisories) } : null;
    }
    return this.current;
  }

  /** Imports tracker JSON and OSV records as a new version. Returns it and the one before. */
  importSources(sources: FeedSource[], replace: boolean): { added: CurrentFeed; previous: CurrentFeed | null } {
    if (sources.length === 0) throw invalidArgument('give at least one source: --debian-tracker FILE or --osv FILE');
    let advisories: Advisory[] = [];
    for (const source of sources) {
      let imported: Advisory[];
      try {
        imported = source.format === 'debian-tracker' ? importDebianTracker(source.data) : importOsv(Array.isArray(source.data) ? source.data : [source.data]);
      } catch (err) {
        if (isKind(err, 'InvalidArgument')) throw err;
        throw invalidArgument(`${source.name}: not a valid ${source.format} document: ${(err as Error).message}`, err);
      }
      // An importer skips what it does not understand; a file of nothing usable is a mistake.
      if (imported.length === 0) throw invalidArgument(`${source.name}: no ${source.format} advisories for a supported ecosystem in it`);
      advisories = mergeAdvisories(advisories, imported);
    }
    return this.add(
      sources.map((s) => `${s.format}:${s.name}`),
      advisories,
      replace,
    );
  }

  /** Builds a version from a Debian security archive as apt reaches it. */
  async buildFromArchive(input: ArchiveFeedInput): Promise<{ added: CurrentFeed; previous: CurrentFeed | null }> {
    let url: URL;
    try {
      url = new URL(input.mirror);
    } catch {
      throw invalidArgument(`mirror must be a URL like http://deb.debian.org/debian-security, not "${input.mirror}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidArgument('mirror must be an http:// or https:// URL');
    if (!/^[a-z]+(-security|-updates)?$/.test(input.suite)) throw invalidArgument(`suite must look like bookworm-security, not "${input.suite}"`);
    const release = input.release ?? `debian:${input.suite.replace(/-.*$/, '')}`;
    await mkdir(this.cacheDir, { recursive: true });
    let advisories: Advisory[];
    try {
      advisories = await buildDebianArchiveFeed({
        mirror: input.mirror.replace(/\/+$/, ''),
        suite: input.suite,
        release,
        cacheDir: this.cacheDir,
        ...(input.sourcePackages && input.sourcePackages.length > 0 ? { sourcePackages: input.sourcePackages } : {}),
      });
    } catch (err) {
      if (isKind(err, 'InvalidArgument') || isKind(err, 'Unavailable')) throw err;
      throw unavailable(`building the feed from ${input.mirror} ${input.suite} failed: ${(err as Error).message}`, err);
    }
    const label = `debian-archive:${input.mirror} ${input.suite}${input.sourcePackages?.length ? ` (${input.sourcePackages.length} source packages)` : ''}`;
    return this.add([label], advisories, input.replace ?? false);
  }

  /** Synchronous from reading the newest version to storing the next: versions never fork. */
  private add(sources: string[], incoming: Advisory[], replace: boolean): { added: CurrentFeed; previous: CurrentFeed | null } {
    const previous = this.now();
    const base = replace || !previous ? [] : previous.snapshot.advisories;
    const snapshot = this.db.addFeed(sources, mergeAdvisories(base, incoming));
    this.current = { snapshot, index: new FeedIndex(snapshot.advisories) };
    return { added: this.current, previous };
  }
}

export function summaryOf(feed: CurrentFeed): FeedSummary {
  return { version: feed.snapshot.version, createdAt: feed.snapshot.createdAt, sources: feed.snapshot.sources, advisories: feed.snapshot.advisories.length };
}

export function archiveCacheDir(dataRoot: string): string {
  return join(dataRoot, 'advisor', 'archive-cache');
}
