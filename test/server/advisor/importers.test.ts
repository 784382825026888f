/** The tracker and OSV importers on fixtures shaped like the real exports. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { importDebianTracker, importOsv } from '../../../src/server/advisor/feeds/index.js';
import { cvss3BaseScore } from '../../../src/server/advisor/feeds/cvss.js';
import type { Advisory } from '../../../src/server/advisor/model.js';
import { loadFixture } from './fixtures.js';

function byId(advisories: Advisory[], id: string, release = 'debian:bookworm'): Advisory {
  const found = advisories.filter((a) => a.id === id && (a.release === undefined || a.release === release));
  assert.equal(found.length, 1, `exactly one ${id} for ${release}`);
  return found[0]!;
}

describe('Debian security tracker importer', () => {
  test('maps every tracker state and urgency', async () => {
    const advisories = importDebianTracker(await loadFixture('debian-tracker.json'));
    const expect = (id: string, status: string, severity: string, fixedVersion?: string): void => {
      const a = byId(advisories, id);
      assert.equal(a.status, status, id);
      assert.equal(a.severity, severity, id);
      assert.equal(a.fixedVersion, fixedVersion, id);
      assert.equal(a.ecosystem, 'deb');
      assert.equal(a.source, 'debian-tracker');
      assert.equal(a.severitySource, 'debian');
    };
    expect('CVE-2099-0001', 'fixed', 'medium', '3.0.15-1~deb12u1');
    expect('CVE-2099-0002', 'unfixed', 'low'); // "low**": NVD-derived, still the tracker's word
    expect('CVE-2099-0003', 'postponed', 'low');
    expect('CVE-2099-0004', 'ignored', 'negligible');
    expect('CVE-2099-0005', 'undetermined', 'unknown');
    expect('CVE-2099-0006', 'not-affected', 'negligible');
    expect('CVE-2099-0007', 'unfixed', 'high'); // no-dsa without a reason: still open
    expect('TEMP-0000000-ABCDEF', 'unfixed', 'unknown'); // end-of-life urgency
    expect('CVE-2099-2000', 'fixed', 'high', '1.5.2-6+deb12u2');
    assert.equal(byId(advisories, 'CVE-2099-0001').package, 'openssl');
    assert.equal(byId(advisories, 'CVE-2099-0001').summary, 'Fixed in a security update');
    assert.equal(byId(advisories, 'CVE-2099-0001', 'debian:trixie').fixedVersion, '3.2.0-1');
    // Malformed release entries and sources are skipped, not thrown.
    assert.equal(advisories.filter((a) => a.id === 'CVE-2099-0008').length, 0);
    assert.equal(advisories.filter((a) => a.package === 'broken-source').length, 0);
    assert.equal(advisories.length, 11); // 8 openssl bookworm + 1 trixie + linux + pam
  });

  test('limits to the releases asked for', async () => {
    const advisories = importDebianTracker(await loadFixture('debian-tracker.json'), { releases: ['trixie'] });
    assert.deepEqual(advisories.map((a) => `${a.id} ${a.release}`), ['CVE-2099-0001 debian:trixie']);
  });

  test('refuses input that is not the tracker shape', () => {
    assert.throws(() => importDebianTracker([]), /keyed by source package/);
    assert.throws(() => importDebianTracker('x'), /keyed by source package/);
  });
});

describe('OSV importer', () => {
  test('npm: SEMVER and ECOSYSTEM ranges, last_affected, versions lists, severities', async () => {
    const advisories = importOsv((await loadFixture('osv-npm.json')) as unknown[]);
    assert.deepEqual(advisories.map((a) => a.id).sort(), ['GHSA-aaaa-bbbb-cccc', 'GHSA-last-affected', 'GHSA-npm-requests', 'GHSA-two-ranges', 'GHSA-versions-only']);
    const lodash = byId(advisories, 'GHSA-aaaa-bbbb-cccc');
    assert.equal(lodash.ecosystem, 'npm');
    assert.equal(lodash.release, undefined);
    assert.equal(lodash.status, 'fixed');
    assert.equal(lodash.severity, 'high');
    assert.deepEqual(lodash.aliases, ['CVE-2099-3000']);
    assert.deepEqual(lodash.ranges, [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '4.17.21' }] }]);
    assert.equal(byId(advisories, 'GHSA-two-ranges').severity, 'medium'); // MODERATE
    const abandoned = byId(advisories, 'GHSA-last-affected');
    assert.equal(abandoned.status, 'unfixed');
    assert.equal(abandoned.severity, 'critical'); // CVSS 9.8 from the vector
    assert.deepEqual(byId(advisories, 'GHSA-versions-only').versions, ['3.1.0', '3.1.1']);
    assert.equal(byId(advisories, 'GHSA-versions-only').ranges, undefined);
  });

  test('PyPI: names normalised per PEP 503, CVSS-only severity, ecosystem_specific severity', async () => {
    const advisories = importOsv((await loadFixture('osv-pypi.json')) as unknown[]);
    const pysec = byId(advisories, 'PYSEC-2099-1');
    assert.equal(pysec.ecosystem, 'PyPI');
    assert.equal(pysec.package, 'django');
    assert.equal(pysec.summary, "SQL injection in Django's QuerySet.");
    assert.equal(pysec.severity, 'medium'); // CVSS:3.1 .../PR:L/.../C:L = 4.3
    assert.equal(byId(advisories, 'PYSEC-2099-2').package, 'zope-interface-extra');
    assert.equal(byId(advisories, 'PYSEC-2099-3').severity, 'low');
  });

  test('Debian OSV becomes deb advisories per release', async () => {
    const advisories = importOsv((await loadFixture('osv-debian.json')) as unknown[]);
    const bookworm = byId(advisories, 'DSA-9999-1', 'debian:bookworm');
    assert.equal(bookworm.ecosystem, 'deb');
    assert.equal(bookworm.fixedVersion, '3.0.15-1~deb12u1');
    assert.equal(bookworm.severity, 'critical'); // S:C, 10.0
    assert.equal(byId(advisories, 'DSA-9999-1', 'debian:bullseye').fixedVersion, '1.1.1w-0+deb11u2');
    const zlib = byId(advisories, 'DEBIAN-CVE-2099-5000');
    assert.equal(zlib.status, 'unfixed');
    assert.equal(zlib.severity, 'unknown');
  });

  test('refuses a non-array', () => {
    assert.throws(() => importOsv({} as unknown as unknown[]), /array of OSV records/);
  });
});

test('CVSS v3 base scores match the specification examples', () => {
  assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'), 9.8);
  assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H'), 10);
  assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N'), 4.3);
  assert.equal(cvss3BaseScore('CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N'), 5.5);
  assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:L/I:L/A:N'), 4.7);
  assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N'), 0);
  assert.equal(cvss3BaseScore('CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N'), null);
  assert.equal(cvss3BaseScore('garbage'), null);
});
