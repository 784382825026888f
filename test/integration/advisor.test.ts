/**
 * The Vulnerability Advisor end to end (issue 8), with real data only: the Debian bookworm
 * test image (mmdebstrap from the base suite, no security updates) against a feed built by
 * Berth from Debian's own security archive, served on loopback by the test's mirror.
 *
 * One Berth with a TLS listener; the operator uses the berth CLI, tenants the docker CLI over
 * mutual TLS. The tests run in order and build on each other:
 *   triggers → feed → report (changelogs confirm) → SBOM → alerts on a new feed →
 *   policy → tenant scoping → live upgrade clears exactly its findings → SIGKILL.
 *
 * Network: Berth only ever reaches the loopback mirror. The test's preparation fills the
 * mirror's cache from deb.debian.org once per machine (the indexes and .debs the feed builder
 * reads, and the one fixed .deb the upgrade step installs), like the test images' cache.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile, mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { DEBIAN_IMAGE, debianImageTar } from '../support/test-images.js';
import {
  UPSTREAM,
  cachedPackages,
  cachedPoolPath,
  prepareDebianSecurityMirror,
  startDebianSecurityMirror,
  type DebianMirror,
} from '../support/debian-security-mirror.js';
import { pollFor } from '../support/cleanup.js';

const run = promisify(execFile);
const SUITE = 'bookworm-security';

interface Finding {
  advisoryId: string;
  package: string;
  advisoryPackage: string;
  installedVersion: string;
  fixedVersion: string | null;
  severity: string;
  status: string;
  remediation: string | null;
  exemption?: { id: string };
}
interface Report {
  subject: { id: string; imageId: string };
  feedVersion: number | null;
  packages: number;
  vulnerabilities: Finding[];
  compliance: { checkId: string; severity: string; exemption?: { id: string } }[];
}
interface Stats {
  inventoryReads: number;
  lastRematch: { feedVersion: number; inventories: number; ms: number } | null;
}

let tb: TenantBerth;
let mirror: DebianMirror;
let acme: NodeJS.ProcessEnv;
let other: NodeJS.ProcessEnv;
let work: string;
/** Source package → binaries of the image, from its SBOM. */
let imageSources: Map<string, { binary: string; version: string }[]>;

const json = async <T>(args: string[]): Promise<T> => JSON.parse(await tb.berthOk(args)) as T;
const stats = (): Promise<Stats> => json<Stats>(['advisor', 'stats']);
const imageReport = (tenant?: string): Promise<Report> =>
  json<Report>(['advisor', 'image', DEBIAN_IMAGE, '--json', ...(tenant ? ['--tenant', tenant] : [])]);


before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-advisor-'));
  tb = await startTenantBerth({ extraArgs: ['--advisor-scan-interval', '0'] });
  acme = await tb.createTenant('acme');
  other = await tb.createTenant('other');
});

after(async () => {
  await tb?.stop();
  await mirror?.close();
  await rm(work, { recursive: true, force: true });
});

test('an image is inventoried when loaded, off the request path, and its SBOM lists every dpkg package with a purl', async () => {
  const before = await stats();
  await dockerOk(tb.berth.env, ['load', '-i', await debianImageTar()]);
  // Nobody asked for a report: the load itself queued the inventory.
  await pollFor('the inventory of the loaded image', async () => ((await stats()).inventoryReads > before.inventoryReads ? true : undefined), 60_000);

  const cdx = await json<{ bomFormat: string; specVersion: string; serialNumber: string; metadata: { component: { name: string } }; components: { type: string; name: string; version?: string; purl?: string; 'bom-ref': string; properties?: { name: string; value: string }[] }[] }>(
    ['advisor', 'sbom', DEBIAN_IMAGE, '--format', 'cyclonedx'],
  );
  assert.equal(cdx.bomFormat, 'CycloneDX');
  assert.equal(cdx.specVersion, '1.5');
  assert.match(cdx.serialNumber, /^urn:uuid:[0-9a-f-]{36}$/);
  assert.equal(cdx.metadata.component.name, DEBIAN_IMAGE);
  const libraries = cdx.components.filter((c) => c.type === 'library');
  assert.equal(new Set(cdx.components.map((c) => c['bom-ref'])).size, cdx.components.length, 'bom-refs are unique');
  for (const c of libraries) assert.match(c.purl!, /^pkg:deb\/debian\/[A-Za-z0-9.%-]+@[A-Za-z0-9.%~-]+\?arch=(amd64|all)&distro=debian-12$/, String(c.purl));
  assert.ok(cdx.components.some((c) => c.type === 'operating-system' && c.name === 'debian'));

  // The same packages dpkg itself lists inside a container of the image.
  const listed = await dockerOk(tb.berth.env, ['run', '--rm', DEBIAN_IMAGE, 'dpkg-query', '-W', '-f', '${Package} ${Version}\\n']);
  const dpkg = listed.trim().split('\n').sort();
  assert.deepEqual(libraries.map((c) => `${c.name} ${c.version}`).sort(), dpkg);

  imageSources = new Map();
  for (const c of libraries) {
    const source = c.properties?.find((p) => p.name === 'berth:source-package')?.value.split(' ')[0] ?? c.name;
    imageSources.set(source, [...(imageSources.get(source) ?? []), { binary: c.name, version: c.version! }]);
  }

  const spdx = await json<{ spdxVersion: string; dataLicense: string; SPDXID: string; documentNamespace: string; creationInfo: { created: string; creators: string[] }; packages: { SPDXID: string; name: string; versionInfo: string; externalRefs?: { referenceType: string; referenceLocator: string }[] }[]; relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[] }>(
    ['advisor', 'sbom', DEBIAN_IMAGE, '--format', 'spdx'],
  );
  assert.equal(spdx.spdxVersion, 'SPDX-2.3');
  assert.equal(spdx.dataLicense, 'CC0-1.0');
  assert.equal(spdx.SPDXID, 'SPDXRef-DOCUMENT');
  assert.match(spdx.creationInfo.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(spdx.creationInfo.creators.every((c) => /^(Tool|Organization|Person): /.test(c)));
  const ids = new Set(spdx.packages.map((p) => p.SPDXID));
  assert.equal(ids.size, spdx.packages.length, 'SPDXIDs are unique');
  for (const id of ids) assert.match(id, /^SPDXRef-[A-Za-z0-9.-]+$/);
  for (const r of spdx.relationships) {
    assert.ok(r.spdxElementId === 'SPDXRef-DOCUMENT' || ids.has(r.spdxElementId));
    assert.ok(ids.has(r.relatedSpdxElement));
  }
  assert.ok(spdx.relationships.some((r) => r.relationshipType === 'DESCRIBES'));
  assert.equal(spdx.packages.filter((p) => p.externalRefs?.some((e) => e.referenceType === 'purl')).length, dpkg.length);
});

test('a feed built from the security archive finds CVEs in the image that the archive changelogs confirm', async () => {
  // The archive's indexes and the .debs with the changelogs, fetched once into the cache; then
  // served on loopback, which is all Berth ever talks to.
  await prepareDebianSecurityMirror({ sourcePackages: [...imageSources.keys()] });
  mirror = await startDebianSecurityMirror();
  // Feed 1 covers half the image's source packages; feed 2 (the next test) all of them.
  const sources = [...imageSources.keys()].sort();
  const firstHalf = sources.filter((_, i) => i % 2 === 0);
  const out = await tb.berthOk(['advisor', 'feed', 'build', '--mirror', mirror.securityUrl, '--suite', SUITE, '--source', ...firstHalf]);
  assert.match(out, /^feed version 1: \d+ advisories/);
  const full = await tb.berthOk(['advisor', 'feed', 'build', '--mirror', mirror.securityUrl, '--suite', SUITE, '--source', ...sources, '--replace']);
  assert.match(full, /^feed version 2: \d+ advisories/);
  const ls = await tb.berthOk(['advisor', 'feed', 'ls']);
  assert.match(ls, /^VERSION\s+CREATED\s+ADVISORIES\s+SOURCES/);

  const report = await imageReport();
  assert.equal(report.feedVersion, 2);
  assert.ok(report.vulnerabilities.length > 0, 'a bookworm base image without security updates has findings');
  // Check every finding's fixed version against the fixed package's own changelog.
  const checked = new Set<string>();
  for (const f of report.vulnerabilities) {
    assert.ok(f.fixedVersion, `${f.advisoryId} has a fixed version`);
    assert.match(f.remediation ?? '', new RegExp(`apt-get install --only-upgrade .*\\b${f.package.replace(/[.+]/g, '\\$&')}\\b`));
    assert.ok(await dpkgOlder(f.installedVersion, f.fixedVersion!), `${f.package} ${f.installedVersion} is older than ${f.fixedVersion}`);
    const key = `${f.advisoryPackage} ${f.fixedVersion}`;
    if (checked.has(key)) continue;
    checked.add(key);
    const changelog = await changelogOf(f.advisoryPackage, f.fixedVersion!);
    const cves = report.vulnerabilities.filter((v) => v.advisoryPackage === f.advisoryPackage && v.fixedVersion === f.fixedVersion && /^CVE-/.test(v.advisoryId));
    for (const v of cves) assert.ok(changelog.includes(v.advisoryId), `${v.advisoryId} is named in ${f.advisoryPackage} ${f.fixedVersion}'s changelog entry`);
  }
  // The readable table says the same.
  const table = await tb.berthOk(['advisor', 'image', DEBIAN_IMAGE]);
  assert.match(table, /SEVERITY\s+ID\s+PACKAGE\s+INSTALLED\s+FIXED\s+STATUS\s+REMEDIATION/);
  assert.ok(table.includes(report.vulnerabilities[0]!.advisoryId));
});

test('a new feed re-matches stored inventories without reading a filesystem, and alerts the owning tenant of its running container', async () => {
  // Back to the half feed (as version 3), with acme's container running, then the full feed again.
  const sources = [...imageSources.keys()].sort();
  await tb.berthOk(['advisor', 'feed', 'build', '--mirror', mirror.securityUrl, '--suite', SUITE, '--source', ...sources.filter((_, i) => i % 2 === 0), '--replace']);
  await dockerOk(acme, ['load', '-i', await debianImageTar()]);
  await dockerOk(acme, ['run', '-d', '--name', 'adv-watch', DEBIAN_IMAGE, 'sleep', '600']);
  await tb.berthOk(['advisor', 'scan', 'adv-watch', '--tenant', 'acme']);
  const since = Math.floor(Date.now() / 1000) - 1;
  const reads = (await stats()).inventoryReads;

  await tb.berthOk(['advisor', 'feed', 'build', '--mirror', mirror.securityUrl, '--suite', SUITE, '--source', ...sources, '--replace']);
  const after = await stats();
  assert.equal(after.inventoryReads, reads, 'no inventory was taken again for the new feed');
  assert.ok(after.lastRematch && after.lastRematch.inventories >= 1);

  const events = await dockerOk(acme, ['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'type=container', '--format', '{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.cause}}']);
  assert.match(events, /^advisor:vulnerable adv-watch feed:4$/m);
  const otherEvents = await dockerOk(other, ['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'type=container']);
  assert.equal(otherEvents.trim(), '', 'another tenant sees nothing of it');

  const table = await tb.berthOk(['advisor', 'alerts', '--tenant', 'acme']);
  assert.match(table, /adv-watch\s+advisor:vulnerable\s+feed:4/);
  assert.doesNotMatch(await tb.berthOk(['advisor', 'alerts', '--tenant', 'other']), /adv-watch/);
});

test('policy: a blocked image cannot run, the error names the worst findings; exemptions let it run until they expire', async () => {
  // Block at the worst severity the real data gives this image (the archive's changelogs carry
  // urgencies, not the tracker's ratings), so the test holds whatever the archive says today.
  const report = await imageReport('acme');
  const order = ['critical', 'high', 'medium', 'low', 'negligible', 'unknown'];
  const all = [...report.vulnerabilities, ...report.compliance.map((c) => ({ ...c, advisoryId: c.checkId }))];
  const threshold = order.find((s) => all.some((f) => f.severity === s))!;
  const blocking = all.filter((f) => f.severity === threshold);
  assert.ok(blocking.length > 0);
  await tb.berthOk(['advisor', 'policy', 'acme', '--block-severity', threshold]);

  const refused = await docker(acme, ['run', '--rm', DEBIAN_IMAGE, 'true']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, new RegExp(`blocked by the vulnerability policy \\(findings at or above ${threshold}\\)`));
  // Equal severities are named in id order.
  const first = [...blocking].sort((a, b) => a.advisoryId.localeCompare(b.advisoryId))[0]!.advisoryId;
  assert.ok(refused.stderr.includes(`${first} (${threshold}`), `names the worst finding ${first}: ${refused.stderr}`);
  assert.match(refused.stderr, /berth advisor image berth-test\/debian:bookworm|\/berth\/v1\/advisor\/images\//);
  // The other tenant has no policy.
  await dockerOk(other, ['load', '-i', await debianImageTar()]);
  await dockerOk(other, ['run', '--rm', DEBIAN_IMAGE, 'true']);

  // Exempt every blocking finding; the first one only for a few seconds.
  const ids = [...new Set(blocking.map((f) => f.advisoryId))];
  for (const [i, id] of ids.entries()) {
    await tb.berthOk(['advisor', 'exempt', 'add', 'acme', DEBIAN_IMAGE, id, '--reason', 'accepted for the test', ...(i === 0 ? ['--expires', '4s'] : [])]);
  }
  assert.equal(await dockerOk(acme, ['run', '--rm', DEBIAN_IMAGE, 'echo', 'ran']), 'ran\n');
  const listed = await tb.berthOk(['advisor', 'exempt', 'ls', '--tenant', 'acme']);
  assert.ok(listed.includes(ids[0]!));

  await new Promise((r) => setTimeout(r, 4500));
  const again = await docker(acme, ['run', '--rm', DEBIAN_IMAGE, 'true']);
  assert.notEqual(again.code, 0, 'the expired exemption no longer covers its finding');
  assert.ok(again.stderr.includes(ids[0]!), again.stderr);
  assert.ok(!ids.slice(1).some((id) => again.stderr.includes(`${id} (`)), 'only the expired one blocks');
  if (ids.length > 1) {
    const row = (await tb.berthOk(['advisor', 'exempt', 'ls', '--tenant', 'acme'])).split('\n').find((l) => l.includes(` ${ids[1]} `))!;
    const exemptionId = row.split(/\s+/)[0]!;
    await tb.berthOk(['advisor', 'exempt', 'rm', exemptionId, '--tenant', 'acme']);
    assert.ok(!(await tb.berthOk(['advisor', 'exempt', 'ls', '--tenant', 'acme'])).includes(` ${ids[1]} `));
    const gone = await tb.berthCli(['advisor', 'exempt', 'rm', exemptionId, '--tenant', 'acme']);
    assert.match(gone.stderr, /No such exemption/);
  }
  await tb.berthOk(['advisor', 'policy', 'acme', '--block-severity', 'none']);
  await dockerOk(acme, ['run', '--rm', DEBIAN_IMAGE, 'true']);
});

test('tenant scoping: a tenant reads its own reports over mutual TLS, never another tenant\'s, and cannot change feeds or policy', async () => {
  const certs = (name: string): string => join(tb.work, `${name}-certs`);
  const path = `/berth/v1/advisor/images/${encodeURIComponent(DEBIAN_IMAGE)}/report`;
  const mine = await tb.request(certs('acme'), 'GET', path);
  assert.equal(mine.status, 200, mine.body);
  assert.ok((JSON.parse(mine.body) as Report).vulnerabilities.length > 0);

  await dockerOk(other, ['rmi', DEBIAN_IMAGE]);
  const theirs = await tb.request(certs('other'), 'GET', path);
  assert.equal(theirs.status, 404, 'acme holds the image, other no longer does');
  assert.match(JSON.parse(theirs.body).message as string, /No such image/);

  const container = await tb.request(certs('other'), 'GET', '/berth/v1/advisor/containers/adv-watch/report');
  assert.equal(container.status, 404);
  const scan = await tb.request(certs('other'), 'POST', '/berth/v1/advisor/containers/adv-watch/scan');
  assert.equal(scan.status, 404);
  const peek = await tb.request(certs('other'), 'GET', `${path}?tenant=acme`);
  assert.equal(peek.status, 403);
  const feed = await tb.request(certs('acme'), 'POST', '/berth/v1/advisor/feeds', { Sources: [] });
  assert.equal(feed.status, 403);
  const policy = await tb.request(certs('acme'), 'PUT', '/berth/v1/advisor/policies/acme', { BlockSeverity: 'none' });
  assert.equal(policy.status, 403);
  const alerts = await tb.request(certs('acme'), 'GET', '/berth/v1/advisor/alerts');
  assert.equal(alerts.status, 200);
  assert.ok((JSON.parse(alerts.body) as { containerName: string }[]).some((a) => a.containerName === 'adv-watch'));
  const otherAlerts = await tb.request(certs('other'), 'GET', '/berth/v1/advisor/alerts');
  assert.deepEqual(JSON.parse(otherAlerts.body), []);
});

test('bad input gets Docker-shaped errors and changes nothing', async () => {
  const feedsBefore = await tb.berthOk(['advisor', 'feed', 'ls']);
  const bad = await tb.berthCli(['advisor', 'feed', 'build', '--mirror', 'not a url', '--suite', SUITE]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /mirror must be a URL/);
  const severity = await tb.berthCli(['advisor', 'policy', 'acme', '--block-severity', 'dreadful']);
  assert.match(severity.stderr, /BlockSeverity must be one of/);
  const expiry = await tb.berthCli(['advisor', 'exempt', 'add', 'acme', DEBIAN_IMAGE, 'CVE-2024-0001', '--reason', 'x', '--expires', 'soon']);
  assert.match(expiry.stderr, /invalid expiry/);
  const image = await tb.berthCli(['advisor', 'image', 'no/such:image']);
  assert.match(image.stderr, /No such image/);
  const tenant = await tb.berthCli(['advisor', 'policy', 'nobody', '--block-severity', 'high']);
  assert.match(tenant.stderr, /No such tenant|not found/i);
  const notOsv = join(work, 'not-osv.json');
  await writeFile(notOsv, JSON.stringify({ hello: 'world' }));
  const garbage = await tb.berthCli(['advisor', 'feed', 'import', '--osv', notOsv]);
  assert.match(garbage.stderr, /not-osv\.json: no osv advisories for a supported ecosystem in it/);
  const notTracker = await tb.berthCli(['advisor', 'feed', 'import', '--debian-tracker', notOsv, '--osv', notOsv]);
  assert.equal(notTracker.code, 1);
  const empty = await tb.berthCli(['advisor', 'feed', 'import']);
  assert.match(empty.stderr, /--debian-tracker FILE and\/or --osv FILE/);
  assert.equal(await tb.berthOk(['advisor', 'feed', 'ls']), feedsBefore);
});

test('upgrading a package inside a live container clears exactly its findings on the next scan', async () => {
  const report = await imageReport();
  // A package whose fixed .deb installs on its own (dpkg -i; the container has no network).
  const candidates = [...new Set(report.vulnerabilities.map((f) => `${f.package} ${f.fixedVersion}`))];
  let upgraded: { pkg: string; container: string } | undefined;
  for (const [i, candidate] of candidates.entries()) {
    const [pkg, fixed] = candidate.split(' ') as [string, string];
    const deb = await fixedDeb(pkg, fixed).catch(() => undefined);
    if (!deb) continue;
    const name = `adv-upgrade-${i}`;
    await dockerOk(tb.berth.env, ['run', '-d', '--name', name, DEBIAN_IMAGE, 'sleep', '600']);
    await dockerOk(tb.berth.env, ['cp', deb, `${name}:/tmp/fix.deb`]);
    const installed = await docker(tb.berth.env, ['exec', name, 'dpkg', '-i', '/tmp/fix.deb']);
    if (installed.code === 0) {
      upgraded = { pkg, container: name };
      break;
    }
    await dockerOk(tb.berth.env, ['rm', '-f', name]);
  }
  assert.ok(upgraded, `one of ${candidates.length} fixed packages installs on its own`);
  const scanned = await json<Report>(['advisor', 'scan', upgraded.container, '--json']);
  const remaining = (r: Report): string[] => r.vulnerabilities.map((f) => `${f.advisoryId} ${f.package}`).sort();
  const expected = remaining(report).filter((k) => !k.endsWith(` ${upgraded!.pkg}`));
  assert.ok(expected.length < report.vulnerabilities.length);
  assert.deepEqual(remaining(scanned), expected);
  // The container report shows the runtime side too.
  const table = await tb.berthOk(['advisor', 'container', upgraded.container]);
  assert.match(table, /processes: \d+/);
  assert.match(table, /drift from the image: \d+ added, [1-9]\d* changed/);

  // docker commit records an image, which is inventoried in turn: its report has the fix too.
  await dockerOk(tb.berth.env, ['commit', upgraded.container, 'adv/upgraded:1']);
  const committed = await pollFor('the committed image report', async () => {
    const r = await tb.berthCli(['advisor', 'image', 'adv/upgraded:1', '--json']);
    return r.code === 0 ? (JSON.parse(r.stdout) as Report) : undefined;
  }, 60_000);
  assert.deepEqual(remaining(committed), expected);
  await dockerOk(tb.berth.env, ['rm', '-f', upgraded.container]);
});

test('feeds, inventories, exemptions, policy and alerts survive a SIGKILL of Berth', async () => {
  await tb.berthOk(['advisor', 'policy', 'acme', '--block-severity', 'critical']);
  const feeds = await tb.berthOk(['advisor', 'feed', 'ls']);
  const report = await imageReport('acme');
  const exemptions = await tb.berthOk(['advisor', 'exempt', 'ls', '--tenant', 'acme']);
  const alerts = await tb.berthOk(['advisor', 'alerts', '--tenant', 'acme']);
  // A commit queues an inventory; the kill may land in the middle of it.
  await dockerOk(acme, ['commit', 'adv-watch', 'adv/killed:1']);
  await tb.berth.kill();
  await tb.berth.restart();
  const killed = await pollFor('the committed image inventoried after the restart', async () => {
    const r = await tb.berthCli(['advisor', 'image', 'adv/killed:1', '--tenant', 'acme', '--json']);
    return r.code === 0 ? (JSON.parse(r.stdout) as Report) : undefined;
  }, 60_000);
  assert.equal(killed.packages, report.packages);
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  assert.ok(!mounts.includes(join(tb.berth.dataRoot, 'advisor', 'mnt')), 'no read-only image mount is left behind');
  assert.equal(await tb.berthOk(['advisor', 'feed', 'ls']), feeds);
  const after = await imageReport('acme');
  assert.deepEqual(after.vulnerabilities, report.vulnerabilities);
  assert.equal(await tb.berthOk(['advisor', 'exempt', 'ls', '--tenant', 'acme']), exemptions);
  assert.equal(await tb.berthOk(['advisor', 'alerts', '--tenant', 'acme']), alerts);
  assert.match(await tb.berthOk(['advisor', 'policy', 'acme']), /at or above critical/);
  await dockerOk(acme, ['rm', '-f', 'adv-watch']);
});

/**
 * The changelog.Debian entry of `source` at `version`, read with dpkg-deb from the security
 * suite's .debs of that source in the mirror's cache (the suite's newest upload carries the
 * entries of every version since the release, the one that fixed a CVE among them).
 */
async function changelogOf(source: string, version: string): Promise<string> {
  const binaries = (await cachedPackages('debian-security')).filter((b) => b.source === source);
  for (const binary of binaries) {
    const path = cachedPoolPath(binary.filename);
    if (!(await stat(path).then(() => true, () => false))) continue;
    const { stdout } = await run('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xO --wildcards "./usr/share/doc/*/changelog.Debian.gz" "./usr/share/doc/*/changelog.gz" 2>/dev/null | gunzip -c', 'sh', path], {
      maxBuffer: 64 * 1024 * 1024,
    }).catch(() => ({ stdout: '' }));
    const lines = stdout.split('\n');
    // (A native package such as apt has changelog.gz only.) Only the entry of that version:
    // from its header line to the next header.
    const start = lines.findIndex((l) => l.startsWith(`${source} (${version})`));
    if (start < 0) continue;
    const end = lines.findIndex((l, k) => k > start && /^\S+ \(/.test(l));
    return lines.slice(start, end < 0 ? undefined : end).join('\n');
  }
  assert.fail(`no cached .deb of ${source} ${version} has its changelog entry`);
}

/**
 * The fixed .deb of binary `pkg` (source version `fixed`): from the mirror's cache, or fetched
 * once into it from the archive (checked against the index's SHA256), as the mirror does.
 */
async function fixedDeb(pkg: string, fixed: string): Promise<string> {
  const binary = (await cachedPackages('debian-security')).find((b) => b.package === pkg && b.sourceVersion === fixed && b.architecture !== 'source');
  if (!binary) throw new Error(`${pkg} ${fixed} is not in the security index`);
  const path = cachedPoolPath(binary.filename);
  if (await stat(path).then(() => true, () => false)) return path;
  const response = await fetch(`${UPSTREAM}/debian-security/${binary.filename}`);
  if (!response.ok) throw new Error(`${binary.filename}: HTTP ${response.status}`);
  const data = Buffer.from(await response.arrayBuffer());
  if (createHash('sha256').update(data).digest('hex') !== binary.sha256) throw new Error(`${binary.filename}: SHA256 mismatch`);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp-${process.pid}`, data);
  await rename(`${path}.tmp-${process.pid}`, path);
  return path;
}

/** dpkg's own comparison: whether `a` is older than `b`. */
async function dpkgOlder(a: string, b: string): Promise<boolean> {
  try {
    await run('dpkg', ['--compare-versions', a, 'lt', b]);
    return true;
  } catch {
    return false;
  }
}
