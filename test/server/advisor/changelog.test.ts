/** Changelog parsing and CVE attribution (the archive builder's pure core). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { advisoriesFromChangelog } from '../../../src/server/advisor/feeds/index.js';
import { parseDebianChangelog, lineMentioning } from '../../../src/server/advisor/feeds/debian-archive/changelog.js';
import { parseSourceField } from '../../../src/server/advisor/feeds/debian-archive/packages-index.js';
import { parseReleaseFile } from '../../../src/server/advisor/feeds/debian-archive/release-file.js';

const CHANGELOG = `openssl (3.0.16-1~deb12u1) bookworm-security; urgency=medium

  * New upstream release.
    - Fixes CVE-2099-0003 (follow-up) and CVE-2099-0004.

 -- Maintainer <m@example.org>  Sun, 27 Oct 2024 12:00:00 +0100

openssl (3.0.15-1~deb12u1) bookworm-security; urgency=high

  * Fix a timing side channel
    (CVE-2099-0003).
  * Fix CVE-2099-0002.

 -- Maintainer <m@example.org>  Sun, 20 Oct 2024 12:00:00 +0100

openssl (3.0.11-1~deb12u2) bookworm; urgency=medium

  * Fix CVE-2099-0001, already in the base suite.

 -- Maintainer <m@example.org>  Sun, 1 Oct 2023 12:00:00 +0100

Old Changelog:
openssl (0.9) whatever
  * CVE-1999-0001 in free-form history
`;

describe('Debian changelog', () => {
  test('parses entries newest first, with urgency and body, and stops at Old Changelog', () => {
    const entries = parseDebianChangelog(CHANGELOG);
    assert.deepEqual(entries.map((e) => [e.source, e.version, e.distributions.join(' '), e.urgency]), [
      ['openssl', '3.0.16-1~deb12u1', 'bookworm-security', 'medium'],
      ['openssl', '3.0.15-1~deb12u1', 'bookworm-security', 'high'],
      ['openssl', '3.0.11-1~deb12u2', 'bookworm', 'medium'],
    ]);
    assert.equal(entries[1]!.text, '* Fix a timing side channel\n  (CVE-2099-0003).\n* Fix CVE-2099-0002.');
    assert.equal(lineMentioning(entries[1]!.text, 'CVE-2099-0003'), '(CVE-2099-0003).');
    assert.equal(lineMentioning(entries[1]!.text, 'CVE-2099-0002'), 'Fix CVE-2099-0002.');
  });

  test('a CVE is fixed at the earliest entry newer than the base version', () => {
    const advisories = advisoriesFromChangelog({
      source: 'openssl',
      release: 'debian:bookworm',
      codename: 'bookworm',
      securityVersion: '3.0.16-1~deb12u1',
      baseVersion: '3.0.11-1~deb12u2',
      entries: parseDebianChangelog(CHANGELOG),
    });
    assert.deepEqual(advisories.map((a) => `${a.id}@${a.fixedVersion}`).sort(), ['CVE-2099-0002@3.0.15-1~deb12u1', 'CVE-2099-0003@3.0.15-1~deb12u1', 'CVE-2099-0004@3.0.16-1~deb12u1']);
    assert.ok(advisories.every((a) => a.status === 'fixed' && a.severity === 'unknown' && a.source === 'debian-archive-changelog' && a.package === 'openssl'));
  });

  test('a backport: unstable entries above the security version are capped, those the base already has are not news', () => {
    const text = `firefox-esr (115.10.0esr-1~deb12u1) bookworm-security; urgency=medium

  * Backport to bookworm.

 -- M <m@example.org>  Sun, 20 Oct 2024 12:00:00 +0100

firefox-esr (115.10.0esr-1) unstable; urgency=medium

  * Fixes for mfsa2024-19: CVE-2099-0010.

 -- M <m@example.org>  Sun, 20 Oct 2024 12:00:00 +0100

firefox-esr (115.9.0esr-1) unstable; urgency=medium

  * Fixes for mfsa2024-12: CVE-2099-0009.

 -- M <m@example.org>  Sun, 20 Oct 2024 12:00:00 +0100
`;
    const advisories = advisoriesFromChangelog({
      source: 'firefox-esr',
      release: 'debian:bookworm',
      codename: 'bookworm',
      securityVersion: '115.10.0esr-1~deb12u1',
      baseVersion: '115.9.0esr-1~deb12u1',
      entries: parseDebianChangelog(text),
    });
    assert.deepEqual(advisories.map((a) => `${a.id}@${a.fixedVersion}`), ['CVE-2099-0010@115.10.0esr-1~deb12u1']);
  });

  test('a source absent from the base suite counts only uploads for this release', () => {
    const advisories = advisoriesFromChangelog({
      source: 'openssl',
      release: 'debian:bookworm',
      codename: 'bookworm',
      securityVersion: '3.0.16-1~deb12u1',
      baseVersion: null,
      entries: parseDebianChangelog(CHANGELOG.replace('openssl (3.0.11-1~deb12u2) bookworm;', 'openssl (3.0.11-1) unstable;')),
    });
    assert.deepEqual(advisories.map((a) => a.id).sort(), ['CVE-2099-0002', 'CVE-2099-0003', 'CVE-2099-0004']);
  });
});

describe('archive indexes', () => {
  test('Source fields with and without a version', () => {
    assert.deepEqual(parseSourceField('openssl (3.0.15-1~deb12u1)', 'libssl3', '3.0.15-1~deb12u1+b1'), { source: 'openssl', sourceVersion: '3.0.15-1~deb12u1' });
    assert.deepEqual(parseSourceField('openssl', 'libssl3', '3.0.15-1'), { source: 'openssl', sourceVersion: '3.0.15-1' });
    assert.deepEqual(parseSourceField(undefined, 'bash', '5.2.15-2+b2'), { source: 'bash', sourceVersion: '5.2.15-2+b2' });
  });

  test('Release files: clearsigned or plain, SHA256 list required', () => {
    const body = 'Suite: bookworm-security\nDate: Sat, 21 Nov 2026 00:53:02 UTC\nSHA256:\n ' + 'a'.repeat(64) + ' 10 main/binary-amd64/Packages.xz\n';
    const signed = `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n${body}-----BEGIN PGP SIGNATURE-----\n\nxyz\n-----END PGP SIGNATURE-----\n`;
    for (const text of [body, signed]) {
      const release = parseReleaseFile(text);
      assert.equal(release.suite, 'bookworm-security');
      assert.deepEqual(release.files.get('main/binary-amd64/Packages.xz'), { sha256: 'a'.repeat(64), size: 10 });
    }
    assert.throws(() => parseReleaseFile('Suite: x\n'), /no SHA256/);
  });
});
