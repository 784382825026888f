/** Matching rules, table by table, on the fixture feeds and small inventories. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { importDebianTracker, importOsv } from '../../../src/server/advisor/feeds/index.js';
import { FeedIndex, matchInventory, releaseOf } from '../../../src/server/advisor/matching/index.js';
import type { Advisory, InstalledPackage, Inventory, OsRelease, VulnerabilityFinding } from '../../../src/server/advisor/model.js';
import { loadFixture } from './fixtures.js';

const BOOKWORM: OsRelease = { id: 'debian', versionId: '12', codename: 'bookworm' };

function deb(name: string, version: string, source?: string, sourceVersion?: string): InstalledPackage {
  return { ecosystem: 'deb', name, version, sourceName: source ?? name, sourceVersion: sourceVersion ?? version, location: '/var/lib/dpkg/status' };
}

function lang(ecosystem: 'npm' | 'PyPI', name: string, version: string, location = `/app/${name}`): InstalledPackage {
  return { ecosystem, name, version, location };
}

function inventory(os: OsRelease | null, packages: InstalledPackage[]): Inventory {
  return { schema: 1, os, packages, takenAt: '2026-01-01T00:00:00Z' };
}

function summary(findings: VulnerabilityFinding[]): string[] {
  return findings.map((f) => `${f.advisoryId} ${f.package} ${f.status} ${f.fixedVersion ?? '-'}`).sort();
}

async function trackerIndex(extra: Advisory[] = []): Promise<FeedIndex> {
  return new FeedIndex([...importDebianTracker(await loadFixture('debian-tracker.json')), ...extra]);
}

describe('deb matching', () => {
  test('honours every tracker state, by source package and source version', async () => {
    const index = await trackerIndex();
    const image = inventory(BOOKWORM, [deb('openssl', '3.0.11-1~deb12u2'), deb('libssl3', '3.0.11-1~deb12u2', 'openssl')]);
    const findings = matchInventory(image, index);
    assert.deepEqual(summary(findings.filter((f) => f.package === 'openssl')), [
      'CVE-2099-0001 openssl fixed 3.0.15-1~deb12u1',
      'CVE-2099-0002 openssl unfixed -',
      'CVE-2099-0003 openssl postponed -',
      'CVE-2099-0004 openssl ignored -',
      'CVE-2099-0005 openssl undetermined -',
      'CVE-2099-0007 openssl unfixed -',
      'TEMP-0000000-ABCDEF openssl unfixed -',
    ]);
    assert.equal(findings.filter((f) => f.package === 'libssl3').length, 7, 'each installed binary of the source');
    const fixed = findings.find((f) => f.advisoryId === 'CVE-2099-0001' && f.package === 'libssl3')!;
    assert.equal(fixed.advisoryPackage, 'openssl');
    assert.equal(fixed.installedVersion, '3.0.11-1~deb12u2');
    assert.equal(fixed.severity, 'medium');
    assert.equal(fixed.severitySource, 'debian');
    assert.equal(fixed.remediation, 'apt-get install --only-upgrade libssl3 openssl');
    assert.ok(findings.filter((f) => f.status !== 'fixed').every((f) => f.remediation === null && f.fixedVersion === null));
  });

  test('installed at or above the fixed version, or a binNMU of it: no finding', async () => {
    const index = await trackerIndex();
    const at = matchInventory(inventory(BOOKWORM, [deb('openssl', '3.0.15-1~deb12u1')]), index);
    assert.ok(!at.some((f) => f.advisoryId === 'CVE-2099-0001'));
    const binNmu = matchInventory(inventory(BOOKWORM, [deb('libssl3', '3.0.15-1~deb12u1+b1', 'openssl', '3.0.15-1~deb12u1')]), index);
    assert.ok(!binNmu.some((f) => f.advisoryId === 'CVE-2099-0001'));
    // Tilde: 3.0.15-1~deb12u1 is older than 3.0.15-1, so the upstream version alone is not enough.
    const older = matchInventory(inventory(BOOKWORM, [deb('openssl', '3.0.15-1~deb12t9')]), index);
    assert.ok(older.some((f) => f.advisoryId === 'CVE-2099-0001'));
  });

  test('only the inventory release: VERSION_ID maps to the codename, other releases and distributions never match', async () => {
    const index = await trackerIndex();
    const pkgs = [deb('openssl', '3.0.11-1~deb12u2')];
    assert.equal(matchInventory(inventory({ id: 'debian', versionId: '12' }, pkgs), index).length, 7);
    assert.deepEqual(summary(matchInventory(inventory({ id: 'debian', versionId: '13', codename: 'trixie' }, [deb('openssl', '3.1.0-1')]), index)), ['CVE-2099-0001 openssl fixed 3.2.0-1']);
    assert.equal(matchInventory(inventory({ id: 'ubuntu', versionId: '24.04', codename: 'noble' }, pkgs), index).length, 0);
    assert.equal(matchInventory(inventory({ id: 'debian', versionId: '11', codename: 'bullseye' }, pkgs), index).length, 0);
    assert.equal(matchInventory(inventory(null, pkgs), index).length, 0);
    assert.equal(releaseOf({ id: 'debian' }), undefined, 'sid without a codename: no guess');
  });

  test('kernel packages are skipped; pam, linux-base and friends are not kernels', async () => {
    const index = await trackerIndex();
    const findings = matchInventory(
      inventory(BOOKWORM, [
        deb('linux-image-6.1.0-18-amd64', '6.1.76-1', 'linux', '6.1.76-1'),
        deb('linux-libc-dev', '6.1.76-1', 'linux', '6.1.76-1'),
        deb('libpam-modules', '1.5.2-6+deb12u1', 'pam'),
      ]),
      index,
    );
    assert.deepEqual(summary(findings), ['CVE-2099-2000 libpam-modules fixed 1.5.2-6+deb12u2']);
    assert.equal(findings[0]!.severity, 'high');
  });

  test('feeds merge: state from the tracker, severity from the distribution; alias pairs give one finding', async () => {
    const archive: Advisory = {
      id: 'CVE-2099-0001',
      ecosystem: 'deb',
      release: 'debian:bookworm',
      package: 'openssl',
      status: 'fixed',
      fixedVersion: '3.0.14-1~deb12u1',
      severity: 'unknown',
      severitySource: 'none',
      summary: 'from the changelog',
      source: 'debian-archive-changelog',
    };
    const osv = importOsv((await loadFixture('osv-debian.json')) as unknown[]);
    const index = await trackerIndex([archive, ...osv]);
    const findings = matchInventory(inventory(BOOKWORM, [deb('openssl', '3.0.11-1~deb12u2')]), index);
    const cve = findings.filter((f) => f.advisoryId === 'CVE-2099-0001');
    assert.equal(cve.length, 1);
    assert.equal(cve[0]!.fixedVersion, '3.0.15-1~deb12u1', "the tracker's fixed version wins over the changelog's");
    assert.equal(cve[0]!.severity, 'medium', 'the distribution rated it medium; OSV said critical');
    assert.ok(!findings.some((f) => f.advisoryId === 'DSA-9999-1'), 'DSA-9999-1 is an alias of the CVE already reported');
    // Without the tracker: the changelog's CVE and OSV's DSA naming it are one flaw, one
    // finding; the rated statement is kept. The OSV-only zlib advisory matches zlib's binary.
    const archiveOnly = matchInventory(inventory(BOOKWORM, [deb('openssl', '3.0.11-1~deb12u2'), deb('zlib1g', '1:1.2.13.dfsg-1', 'zlib')]), new FeedIndex([archive, ...osv]));
    assert.deepEqual(summary(archiveOnly), ['DEBIAN-CVE-2099-5000 zlib1g unfixed -', 'DSA-9999-1 openssl fixed 3.0.15-1~deb12u1']);
    assert.equal(archiveOnly.find((f) => f.advisoryId === 'DSA-9999-1')!.severity, 'critical');
    assert.deepEqual(archiveOnly.find((f) => f.advisoryId === 'DSA-9999-1')!.aliases, ['CVE-2099-0001']);
  });
});

describe('npm and PyPI matching', () => {
  test('npm ranges, last_affected, versions lists, remediation', async () => {
    const index = new FeedIndex(importOsv((await loadFixture('osv-npm.json')) as unknown[]));
    const findings = matchInventory(
      inventory(null, [
        lang('npm', 'lodash', '4.17.20'),
        lang('npm', 'lodash', '4.17.20', '/app/node_modules/x/node_modules/lodash'),
        lang('npm', 'twolines', '1.2.2'),
        lang('npm', 'twolines', '2.0.4'),
        lang('npm', 'twolines', '1.5.0'),
        lang('npm', 'twolines', '2.0.5'),
        lang('npm', 'abandoned', '0.9.0'),
        lang('npm', 'hijacked', '3.1.1'),
        lang('npm', 'hijacked', '3.1.2'),
        lang('npm', 'gitonly', '0.0.1'),
        lang('npm', 'lodash-not', 'not-a-version'),
      ]),
      index,
    );
    assert.deepEqual(summary(findings), [
      'GHSA-aaaa-bbbb-cccc lodash fixed 4.17.21',
      'GHSA-last-affected abandoned unfixed -',
      'GHSA-two-ranges twolines fixed 1.2.3',
      'GHSA-two-ranges twolines fixed 2.0.5',
      'GHSA-versions-only hijacked unfixed -',
    ]);
    assert.equal(findings.find((f) => f.package === 'lodash')!.remediation, 'npm install lodash@4.17.21');
    assert.equal(findings.find((f) => f.package === 'abandoned')!.remediation, null);
    // The same advisory for an unparsable installed version: no match, no throw.
    assert.deepEqual(matchInventory(inventory(null, [lang('npm', 'lodash', 'garbage')]), index), []);
  });

  test('PyPI: PEP 503 names, PEP 440 order, alias dedupe, pip remediation', async () => {
    const index = new FeedIndex(importOsv((await loadFixture('osv-pypi.json')) as unknown[]));
    const findings = matchInventory(
      inventory(BOOKWORM, [
        lang('PyPI', 'Django', '4.2.7'),
        lang('PyPI', 'zope.interface-extra', '1.0.0rc1'),
        lang('PyPI', 'Zope_Interface.Extra', '0.9'),
        lang('PyPI', 'epochal', '2.0'),
        lang('PyPI', 'django-other', '4.2.7'),
      ]),
      index,
    );
    assert.deepEqual(summary(findings), [
      'GHSA-dddd-eeee-ffff Django fixed 4.2.8',
      'PYSEC-2099-2 Zope_Interface.Extra fixed 1.0.0',
      'PYSEC-2099-2 zope.interface-extra fixed 1.0.0',
      'PYSEC-2099-3 epochal fixed 1!1.0',
    ]);
    const django = findings.find((f) => f.package === 'Django')!;
    assert.equal(django.severity, 'high', 'the GHSA half of the alias pair is rated higher');
    assert.equal(django.remediation, "pip install 'Django>=4.2.8'");
    assert.equal(matchInventory(inventory(null, [lang('PyPI', 'Django', '4.2.8')]), index).length, 0);
    assert.equal(matchInventory(inventory(null, [lang('PyPI', 'Django', '5.0rc1')]), index)[0]?.fixedVersion, '5.0.1');
  });

  test('never across ecosystems', async () => {
    const index = new FeedIndex([...importOsv((await loadFixture('osv-npm.json')) as unknown[]), ...importDebianTracker(await loadFixture('debian-tracker.json'))]);
    assert.deepEqual(matchInventory(inventory(BOOKWORM, [lang('PyPI', 'requests', '1.0.0'), lang('PyPI', 'openssl', '1.0.0'), lang('npm', 'openssl', '1.0.0')]), index), []);
    assert.equal(matchInventory(inventory(BOOKWORM, [lang('npm', 'requests', '1.0.0')]), index).length, 1);
  });
});
