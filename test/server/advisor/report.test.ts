import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockingFindings, buildReport, policyRefusal } from '../../../src/server/advisor/report.js';
import { mergeAdvisories } from '../../../src/server/advisor/feed-merge.js';
import { purlOf } from '../../../src/server/advisor/sbom.js';
import type { Advisory, VulnerabilityFinding } from '../../../src/server/advisor/model.js';
import type { Exemption } from '../../../src/server/advisor/tenant-records.js';

const IMAGE = 'sha256:aa';
const finding = (id: string, pkg: string, severity: VulnerabilityFinding['severity'], aliases?: string[]): VulnerabilityFinding => ({
  advisoryId: id,
  ...(aliases ? { aliases } : {}),
  ecosystem: 'deb',
  package: pkg,
  advisoryPackage: pkg,
  installedVersion: '1.0-1',
  fixedVersion: '1.0-2',
  status: 'fixed',
  severity,
  severitySource: 'debian',
  remediation: `apt-get install --only-upgrade ${pkg}`,
});
const exemption = (findingId: string, expiresAt: string | null, imageId = IMAGE): Exemption => ({
  id: findingId,
  imageId,
  imageRef: 'x',
  findingId,
  reason: 'r',
  expiresAt,
  createdBy: 'operator',
  createdAt: '2026-01-01T00:00:00Z',
});
const report = (exemptions: Exemption[], now = new Date('2026-06-01T00:00:00Z')) =>
  buildReport({
    subject: { kind: 'image', id: IMAGE, name: 'x', imageId: IMAGE },
    feedVersion: 1,
    inventoryTakenAt: '',
    os: null,
    packages: 3,
    vulnerabilities: [finding('CVE-1', 'a', 'medium'), finding('CVE-2', 'b', 'critical'), finding('DSA-9', 'c', 'high', ['CVE-3'])],
    compliance: [{ checkId: 'BERTH-X', title: 't', severity: 'high', detail: 'd', remediation: 'r' }],
    exemptions,
    now,
  });

test('findings sort worst first and the block list honours the threshold', () => {
  const r = report([]);
  assert.deepEqual(r.vulnerabilities.map((v) => v.advisoryId), ['CVE-2', 'DSA-9', 'CVE-1']);
  assert.deepEqual(blockingFindings(r, 'high').map((f) => f.id), ['CVE-2', 'BERTH-X', 'DSA-9']);
  assert.equal(r.summary.critical, 1);
  assert.equal(r.summary.high, 2);
});

const cases: { name: string; exemptions: Exemption[]; blocking: string[] }[] = [
  { name: 'an exemption by id', exemptions: [exemption('CVE-2', null)], blocking: ['BERTH-X', 'DSA-9'] },
  { name: 'an exemption by alias', exemptions: [exemption('cve-3', null)], blocking: ['CVE-2', 'BERTH-X'] },
  { name: 'a check id', exemptions: [exemption('BERTH-X', null)], blocking: ['CVE-2', 'DSA-9'] },
  { name: 'every image', exemptions: [exemption('CVE-2', null, '*')], blocking: ['BERTH-X', 'DSA-9'] },
  { name: 'another image does not count', exemptions: [exemption('CVE-2', null, 'sha256:bb')], blocking: ['CVE-2', 'BERTH-X', 'DSA-9'] },
  { name: 'an expired one does not count', exemptions: [exemption('CVE-2', '2026-05-31T23:59:59Z')], blocking: ['CVE-2', 'BERTH-X', 'DSA-9'] },
  { name: 'one not expired yet counts', exemptions: [exemption('CVE-2', '2026-06-01T00:00:01Z')], blocking: ['BERTH-X', 'DSA-9'] },
];
for (const c of cases) {
  test(`exemptions: ${c.name}`, () => {
    assert.deepEqual(blockingFindings(report(c.exemptions), 'high').map((f) => f.id), c.blocking);
  });
}

test('the refusal names the three worst and counts the rest', () => {
  const message = policyRefusal('x:1', 'medium', blockingFindings(report([]), 'medium'));
  assert.match(message, /^image x:1 is blocked by the vulnerability policy \(findings at or above medium\): CVE-2 \(critical, b 1\.0-1, fixed in 1\.0-2\); BERTH-X \(high\); DSA-9 \(high, c 1\.0-1, fixed in 1\.0-2\) and 1 more\./);
  assert.match(message, /berth advisor image x:1/);
});

const advisory = (severity: Advisory['severity'], severitySource: string, fixedVersion: string): Advisory => ({
  id: 'CVE-1',
  ecosystem: 'deb',
  release: 'debian:bookworm',
  package: 'openssl',
  status: 'fixed',
  fixedVersion,
  severity,
  severitySource,
  source: severitySource,
});

test("merging feeds: newer facts replace older ones, but the distribution's severity wins", () => {
  const [fromOsv] = mergeAdvisories([advisory('high', 'debian', '1')], [advisory('critical', 'nvd', '2')]);
  assert.equal(fromOsv!.fixedVersion, '2');
  assert.equal(fromOsv!.severity, 'high');
  const [fromDebian] = mergeAdvisories([advisory('critical', 'nvd', '1')], [advisory('low', 'debian', '2')]);
  assert.equal(fromDebian!.severity, 'low');
  const [unknown] = mergeAdvisories([advisory('medium', 'debian', '1')], [advisory('unknown', 'debian-archive-changelog', '2')]);
  assert.equal(unknown!.severity, 'medium');
});

test('package URLs follow the purl spec per ecosystem', () => {
  const os = { id: 'debian', versionId: '12', codename: 'bookworm' };
  assert.equal(
    purlOf({ ecosystem: 'deb', name: 'libc6', version: '2.36-9+deb12u4', architecture: 'amd64', location: '' }, os),
    'pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12',
  );
  assert.equal(purlOf({ ecosystem: 'deb', name: 'perl', version: '1:5.36', location: '' }, os), 'pkg:deb/debian/perl@1%3A5.36?distro=debian-12');
  assert.equal(purlOf({ ecosystem: 'npm', name: '@babel/core', version: '7.0.0', location: '' }, os), 'pkg:npm/%40babel/core@7.0.0');
  assert.equal(purlOf({ ecosystem: 'PyPI', name: 'Django_REST', version: '1.0', location: '' }, os), 'pkg:pypi/django-rest@1.0');
});
