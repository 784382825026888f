/**
 * The Advisor's periodic scan of running containers (`berth up --advisor-scan-interval`): drift
 * inside a live container that makes it non-compliant raises an alert and a Docker event for
 * its tenant, while the settings chosen at create and the image's own findings do not.
 * No feed is needed: the finding is a compliance check's (a second UID 0 account).
 * Also: an image made by `docker build` is inventoried without anybody asking, and feed
 * versions from tracker/OSV files through the berth CLI.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { REPO_ROOT } from '../support/berth-harness.js';
import { dockerOk } from '../support/docker-cli.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';
import { pollFor } from '../support/cleanup.js';

let tb: TenantBerth;
let acme: NodeJS.ProcessEnv;

before(async () => {
  tb = await startTenantBerth({ extraArgs: ['--advisor-scan-interval', '0.5'] });
  acme = await tb.createTenant('acme');
  await dockerOk(acme, ['load', '-i', await busyboxImageTar()]);
});
after(() => tb?.stop());


test('drift found by the periodic scan alerts the owning tenant; what the container started with does not', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  await dockerOk(acme, ['run', '-d', '--name', 'adv-drift', BUSYBOX_IMAGE, 'sleep', '600']);
  const events = async (): Promise<string> =>
    dockerOk(acme, ['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'type=container', '--filter', 'container=adv-drift', '--format', '{{.Action}} {{.Actor.Attributes.cause}} {{.Actor.Attributes.findings}}']);
  // Several periodic scans pass with the container as it started: no advisor event.
  await pollFor('a periodic scan of the container', async () => {
    const stats = JSON.parse(await tb.berthOk(['advisor', 'stats'])) as { inventoryReads: number };
    return stats.inventoryReads >= 4 ? true : undefined;
  });
  assert.doesNotMatch(await events(), /advisor:/);

  await dockerOk(acme, ['exec', 'adv-drift', 'sh', '-c', 'echo "toor:x:0:0:backdoor:/root:/bin/sh" >> /etc/passwd']);
  const seen = await pollFor('the advisor:noncompliant event', async () => {
    const text = await events();
    return /advisor:noncompliant/.test(text) ? text : undefined;
  });
  assert.match(seen, /^advisor:noncompliant periodic-scan BERTH-UID0-NON-ROOT$/m);
  const alerts = await tb.berthOk(['advisor', 'alerts', '--tenant', 'acme']);
  assert.match(alerts, /adv-drift\s+advisor:noncompliant\s+periodic-scan\s+BERTH-UID0-NON-ROOT/);
  // Raised once: later scans see the same finding as known.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await events()).split('\n').filter((l) => l.startsWith('advisor:')).length, 1);
  await dockerOk(acme, ['rm', '-f', 'adv-drift']);
});

test('an image made by docker build is inventoried off the request path, with its compliance findings', async () => {
  const context = await mkdtemp(join(tmpdir(), 'berth-advisor-build-'));
  try {
    await writeFile(join(context, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nRUN echo "toor:x:0:0:backdoor:/root:/bin/sh" >> /etc/passwd\n`);
    await dockerOk(acme, ['build', '-t', 'adv/built:1', context]);
    const id = (await dockerOk(acme, ['image', 'inspect', '--format', '{{.Id}}', 'adv/built:1'])).trim();
    // Nobody asks for a report before the advisor has taken this image's inventory itself.
    await pollFor('the built image inventoried', async () => {
      const stats = JSON.parse(await tb.berthOk(['advisor', 'stats'])) as { lastImageInventory: { imageId: string } | null };
      return stats.lastImageInventory?.imageId === id ? true : undefined;
    });
    const report = JSON.parse(await tb.berthOk(['advisor', 'image', 'adv/built:1', '--tenant', 'acme', '--json'])) as { compliance: { checkId: string }[] };
    assert.ok(report.compliance.some((c) => c.checkId === 'BERTH-UID0-NON-ROOT'));
    // The operator's own scope has no such image.
    assert.match((await tb.berthCli(['advisor', 'image', 'adv/built:1'])).stderr, /No such image/);
  } finally {
    await rm(context, { recursive: true, force: true });
  }
});

test('feed import: tracker and OSV files make a version, the next import builds on it, --replace starts over', async () => {
  // The importers' own fixture files (hand-made, in the real shapes): this checks the service path.
  const fixtures = join(REPO_ROOT, 'test/fixtures/advisor');
  const first = await tb.berthOk(['advisor', 'feed', 'import', '--debian-tracker', join(fixtures, 'debian-tracker.json'), '--osv', join(fixtures, 'osv-debian.json')]);
  const [, v1, n1] = /^feed version (\d+): (\d+) advisories/.exec(first)!;
  const second = await tb.berthOk(['advisor', 'feed', 'import', '--osv', join(fixtures, 'osv-npm.json'), join(fixtures, 'osv-pypi.json')]);
  const [, v2, n2] = /^feed version (\d+): (\d+) advisories/.exec(second)!;
  assert.equal(Number(v2), Number(v1) + 1);
  assert.ok(Number(n2) > Number(n1), 'the second version keeps the first one\'s advisories');
  const replaced = await tb.berthOk(['advisor', 'feed', 'import', '--osv', join(fixtures, 'osv-npm.json'), '--replace']);
  const [, , n3] = /^feed version (\d+): (\d+) advisories/.exec(replaced)!;
  assert.ok(Number(n3) < Number(n2));
  const ls = await tb.berthOk(['advisor', 'feed', 'ls']);
  assert.match(ls, /debian-tracker:debian-tracker\.json, osv:osv-debian\.json/);
});
