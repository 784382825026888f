/**
 * The Advisor's periodic scan of running containers (`berth up --advisor-scan-interval`): drift
 * inside a live container that makes it non-compliant raises an alert and a Docker event for
 * its tenant, while the settings chosen at create and the image's own findings do not.
 * No feed is needed: the finding is a compliance check's (a second UID 0 account).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { dockerOk } from '../support/docker-cli.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

let tb: TenantBerth;
let acme: NodeJS.ProcessEnv;

before(async () => {
  tb = await startTenantBerth({ extraArgs: ['--advisor-scan-interval', '0.5'] });
  acme = await tb.createTenant('acme');
  await dockerOk(acme, ['load', '-i', await busyboxImageTar()]);
});
after(() => tb?.stop());

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('drift found by the periodic scan alerts the owning tenant; what the container started with does not', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  await dockerOk(acme, ['run', '-d', '--name', 'adv-drift', BUSYBOX_IMAGE, 'sleep', '600']);
  const events = async (): Promise<string> =>
    dockerOk(acme, ['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'type=container', '--filter', 'container=adv-drift', '--format', '{{.Action}} {{.Actor.Attributes.cause}} {{.Actor.Attributes.findings}}']);
  // Several periodic scans pass with the container as it started: no advisor event.
  await until('a periodic scan of the container', async () => {
    const stats = JSON.parse(await tb.berthOk(['advisor', 'stats'])) as { inventoryReads: number };
    return stats.inventoryReads >= 4 ? true : undefined;
  });
  assert.doesNotMatch(await events(), /advisor:/);

  await dockerOk(acme, ['exec', 'adv-drift', 'sh', '-c', 'echo "toor:x:0:0:backdoor:/root:/bin/sh" >> /etc/passwd']);
  const seen = await until('the advisor:noncompliant event', async () => {
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
