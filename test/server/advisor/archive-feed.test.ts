/**
 * The offline feed builder against real Debian data served on loopback: the security suite's
 * index and .debs for the source packages of the Debian test image (mmdebstrap minbase from
 * the base suite, no security updates). Every advisory it produces is re-checked
 * independently: the changelog is pulled out of the cached .deb with dpkg-deb, tar and zcat,
 * and `dpkg --compare-versions` confirms the CVE is mentioned at an entry above the base
 * version and at or below the advisory's fixed version, and nowhere earlier above the base.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { buildDebianArchiveFeed, buildDebianArchiveFeedDetailed, type ArchiveFeed } from '../../../src/server/advisor/feeds/index.js';
import { FeedIndex, matchInventory } from '../../../src/server/advisor/matching/index.js';
import type { Inventory } from '../../../src/server/advisor/model.js';
import { debianImageInventory } from '../../support/debian-image-packages.js';
import { cachedPoolPath, prepareDebianSecurityMirror, startDebianSecurityMirror, type DebianMirror } from '../../support/debian-security-mirror.js';

const run = promisify(execFile);

async function dpkgHolds(a: string, relation: 'lt' | 'le' | 'eq' | 'gt', b: string): Promise<boolean> {
  try {
    await run('dpkg', ['--compare-versions', a, relation, b]);
    return true;
  } catch {
    return false;
  }
}

/**
 * The changelog of a cached .deb, extracted with the stock tools rather than Berth's code
 * (changelog.Debian.gz, or changelog.gz for a native package such as apt).
 */
async function changelogByShell(debPath: string): Promise<string> {
  const script = `
    members=$(dpkg-deb --fsys-tarfile "$1" | tar -t | grep -E '^./usr/share/doc/[^/]+/changelog.Debian.gz$')
    [ -n "$members" ] || members=$(dpkg-deb --fsys-tarfile "$1" | tar -tv | grep '^-' | grep -oE './usr/share/doc/[^/]+/changelog.gz$')
    dpkg-deb --fsys-tarfile "$1" | tar -xO $members | zcat`;
  const { stdout } = await run('sh', ['-c', script, 'sh', debPath], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** Versions of the changelog entries whose text mentions `cve` (header lines found with a regex of their own). */
function versionsMentioning(changelog: string, cve: string): string[] {
  const versions: string[] = [];
  let current: string | undefined;
  for (const line of changelog.split('\n')) {
    const header = /^\S+ \(([^)]+)\) /.exec(line);
    if (header !== null) current = header[1];
    else if (current !== undefined && line.includes(cve) && !versions.includes(current)) versions.push(current);
  }
  return versions;
}

describe('offline Debian archive feed', () => {
  let mirror: DebianMirror;
  let cacheDir: string;
  let inventory: Inventory;
  let sources: string[];
  let feed: ArchiveFeed;

  before(async () => {
    inventory = (await debianImageInventory()).inventory;
    sources = [...new Set(inventory.packages.map((p) => p.sourceName ?? p.name))].sort();
    await prepareDebianSecurityMirror({ sourcePackages: sources });
    mirror = await startDebianSecurityMirror();
    cacheDir = await mkdtemp(join(tmpdir(), 'berth-archive-feed-'));
  });

  after(async () => {
    await mirror?.close();
    if (cacheDir !== undefined) await rm(cacheDir, { recursive: true, force: true });
  });

  test('builds advisories for the image sources that the security suite updates', async () => {
    const phases = new Set<string>();
    feed = await buildDebianArchiveFeedDetailed({
      mirror: mirror.securityUrl,
      suite: 'bookworm-security',
      release: 'debian:bookworm',
      cacheDir,
      sourcePackages: sources,
      onProgress: (p) => phases.add(p.phase),
    });
    assert.deepEqual([...phases].sort(), ['changelogs', 'done', 'indexes']);
    assert.ok(feed.sources.length > 0, 'the security suite updates some of the image sources');
    assert.ok(feed.advisories.length > 0, 'and their changelogs name CVEs');
    for (const report of feed.sources) {
      assert.ok(sources.includes(report.source), `${report.source} was asked for`);
      const newer = report.baseVersion === null || (await dpkgHolds(report.securityVersion, 'gt', report.baseVersion));
      assert.equal(report.outcome, newer ? 'read' : 'not-newer', `${report.source} ${report.securityVersion} vs base ${report.baseVersion}`);
      assert.equal(report.changelogFrom !== null, newer, `${report.source}: a changelog was read exactly when the security version is newer`);
    }
    assert.ok(feed.sources.some((r) => r.outcome === 'read'));
    for (const a of feed.advisories) {
      assert.equal(a.ecosystem, 'deb');
      assert.equal(a.release, 'debian:bookworm');
      assert.equal(a.status, 'fixed');
      assert.match(a.id, /^CVE-\d{4}-\d{4,}$/);
    }
    // Everything came from the loopback mirror, both suites' InRelease signatures were checked
    // against Debian's archive keyring (the default), and both indexes were read.
    assert.ok(mirror.requests.some((p) => p === '/debian-security/dists/bookworm-security/InRelease'));
    assert.ok(mirror.requests.some((p) => p === '/debian/dists/bookworm/main/binary-amd64/Packages.xz'));
  });

  test('each advisory is confirmed by the changelog in the archive (checked with dpkg-deb, zcat and dpkg)', async () => {
    let checked = 0;
    for (const report of feed.sources) {
      if (report.advisories.length === 0) continue;
      const changelog = await changelogByShell(cachedPoolPath(report.changelogFrom!.filename));
      for (const advisory of report.advisories) {
        const mentions = versionsMentioning(changelog, advisory.id);
        assert.ok(mentions.length > 0, `${advisory.id} appears in ${report.source}'s changelog`);
        const aboveBase: string[] = [];
        for (const v of mentions) {
          if (report.baseVersion === null || (await dpkgHolds(v, 'gt', report.baseVersion))) aboveBase.push(v);
        }
        assert.ok(aboveBase.length > 0, `${advisory.id}: mentioned above the base version ${report.baseVersion}`);
        let earliest = aboveBase[0]!;
        for (const v of aboveBase) if (await dpkgHolds(v, 'lt', earliest)) earliest = v;
        const expected = (await dpkgHolds(earliest, 'gt', report.securityVersion)) ? report.securityVersion : earliest;
        assert.ok(await dpkgHolds(expected, 'eq', advisory.fixedVersion!), `${advisory.id} in ${report.source}: fixed at ${expected}, feed says ${advisory.fixedVersion}`);
        assert.ok(await dpkgHolds(advisory.fixedVersion!, 'le', report.securityVersion));
        checked++;
      }
    }
    assert.equal(checked, feed.advisories.length);
  });

  test('the image built without security updates is vulnerable exactly where its versions are older', async () => {
    const findings = matchInventory(inventory, new FeedIndex(feed.advisories));
    assert.ok(findings.length > 0, 'the base-suite image has findings');
    const byName = new Map(inventory.packages.map((p) => [p.name, p]));
    for (const f of findings) {
      const installed = byName.get(f.package)!;
      assert.ok(await dpkgHolds(installed.sourceVersion!, 'lt', f.fixedVersion!), `${f.package} ${installed.sourceVersion} < ${f.fixedVersion}`);
      assert.match(f.remediation!, new RegExp(`^apt-get install --only-upgrade .*\\b${f.package.replace(/[+.]/g, '\\$&')}\\b`));
    }
    // Every advisory whose source the image has at an older version shows up.
    const expected = new Set<string>();
    for (const a of feed.advisories) {
      for (const p of inventory.packages) {
        if (p.sourceName === a.package && (await dpkgHolds(p.sourceVersion!, 'lt', a.fixedVersion!))) expected.add(`${a.id} ${p.name}`);
      }
    }
    assert.deepEqual(new Set(findings.map((f) => `${f.advisoryId} ${f.package}`)), expected);
  });

  test('a .deb that does not match its Packages SHA256 is refused, and nothing is cached for it', async () => {
    const lying = await startDebianSecurityMirror({ corrupt: (path) => path.endsWith('.deb') });
    const coldCache = await mkdtemp(join(tmpdir(), 'berth-archive-feed-cold-'));
    try {
      const target = feed.sources.find((s) => s.changelogFrom !== null)!.source;
      await assert.rejects(
        buildDebianArchiveFeed({ mirror: lying.securityUrl, suite: 'bookworm-security', release: 'debian:bookworm', cacheDir: coldCache, sourcePackages: [target] }),
        /SHA256 .* does not match the index/,
      );
      const { stdout } = await run('sh', ['-c', `ls "$1"/sha256 | wc -l`, 'sh', coldCache]);
      assert.equal(Number(stdout.trim()), 2, 'only the two verified Packages indexes are cached');
    } finally {
      await lying.close();
      await rm(coldCache, { recursive: true, force: true });
    }
  });

  test('a corrupted index is refused before anything is parsed', async () => {
    const lying = await startDebianSecurityMirror({ corrupt: (path) => path.endsWith('Packages.xz') });
    const coldCache = await mkdtemp(join(tmpdir(), 'berth-archive-feed-cold-'));
    try {
      await assert.rejects(
        buildDebianArchiveFeed({ mirror: lying.securityUrl, suite: 'bookworm-security', release: 'debian:bookworm', cacheDir: coldCache, sourcePackages: ['openssl'] }),
        /does not match the index/,
      );
    } finally {
      await lying.close();
      await rm(coldCache, { recursive: true, force: true });
    }
  });

  test("InRelease must carry a good signature from the keyring: a tampered file or a stranger's keyring is refused", async () => {
    const tampering = await startDebianSecurityMirror({ corrupt: (path) => path.endsWith('/InRelease') });
    const coldCache = await mkdtemp(join(tmpdir(), 'berth-archive-feed-cold-'));
    try {
      await assert.rejects(
        buildDebianArchiveFeed({ mirror: tampering.securityUrl, suite: 'bookworm-security', release: 'debian:bookworm', cacheDir: coldCache, sourcePackages: ['openssl'] }),
        /bookworm-security\/InRelease: the OpenPGP signature does not verify/,
      );
      // The trixie release key alone signed neither suite.
      await assert.rejects(
        buildDebianArchiveFeed({
          mirror: mirror.securityUrl,
          suite: 'bookworm-security',
          release: 'debian:bookworm',
          cacheDir: coldCache,
          sourcePackages: ['openssl'],
          keyring: '/usr/share/keyrings/debian-archive-trixie-stable.gpg',
        }),
        /the OpenPGP signature does not verify/,
      );
      const { stdout } = await run('sh', ['-c', `ls "$1" | wc -l`, 'sh', coldCache]);
      assert.equal(Number(stdout.trim()), 0, 'nothing was downloaded past the refused Release file');
    } finally {
      await tampering.close();
      await rm(coldCache, { recursive: true, force: true });
    }
  });

  test('a Release file past its Valid-Until is refused unless allowed, as apt does', async () => {
    const release = `Suite: old-security\nValid-Until: Sat, 01 Jan 2000 00:00:00 UTC\nSHA256:\n ${'0'.repeat(64)} 1 main/binary-amd64/Packages.xz\n`;
    const server = createServer((req, res) => {
      if (req.url === '/debian-security/dists/old-security/Release') res.writeHead(200).end(release);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/debian-security`;
    try {
      const opts = { mirror: url, suite: 'old-security', release: 'debian:bookworm', cacheDir, keyring: null };
      await assert.rejects(buildDebianArchiveFeed(opts), /old-security: the Release file expired at 2000-01-01T00:00:00.000Z/);
      // Allowed, it gets as far as the (absent) index.
      await assert.rejects(buildDebianArchiveFeed({ ...opts, allowExpired: true }), /Packages.xz: HTTP 404/);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('an unknown suite and an unreachable mirror fail with a clear error', async () => {
    await assert.rejects(
      buildDebianArchiveFeed({ mirror: mirror.securityUrl, suite: 'no-such-suite', release: 'debian:bookworm', cacheDir }),
      /HTTP 404/,
    );
    await assert.rejects(
      buildDebianArchiveFeed({ mirror: 'http://127.0.0.1:9/debian-security', suite: 'bookworm-security', release: 'debian:bookworm', cacheDir }),
      /Cannot reach the Debian mirror/,
    );
  });

  test('an aborted build stops', async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      buildDebianArchiveFeed({ mirror: mirror.securityUrl, suite: 'bookworm-security', release: 'debian:bookworm', cacheDir, signal: controller.signal }),
      (err: Error) => err.name === 'AbortError',
    );
  });
});
