/**
 * The after-suite leak check (test/support/host-leaks.ts) must see what a suite leaves
 * behind: here a bridge, a network namespace and a mount made on purpose, then removed.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import { newResources, takeHostSnapshot } from '../support/host-leaks.js';

const run = promisify(execFile);

test('the leak check reports links, network namespaces and mounts the suite added', async () => {
  const suffix = randomBytes(3).toString('hex');
  const link = `lkchk${suffix}`;
  const netns = `berth-leakcheck-${suffix}`;
  const dir = await mkdtemp(join(tmpdir(), 'berth-leakcheck-'));
  const before = await takeHostSnapshot();
  try {
    await run('ip', ['link', 'add', link, 'type', 'bridge']);
    await run('ip', ['netns', 'add', netns]);
    await run('mount', ['-t', 'tmpfs', 'tmpfs', dir]);
    const leaks = newResources(before, await takeHostSnapshot());
    assert.ok(leaks.links?.includes(link), `link ${link} not reported: ${JSON.stringify(leaks)}`);
    // What the host had before never counts.
    for (const name of leaks.links ?? []) assert.equal(before.links.includes(name), false);
    assert.ok(leaks.netns?.includes(netns), `netns ${netns} not reported: ${JSON.stringify(leaks)}`);
    assert.ok(leaks.mounts?.some((m) => m.startsWith(`${dir} `)), `mount ${dir} not reported: ${JSON.stringify(leaks)}`);
  } finally {
    await run('umount', [dir]).catch(() => undefined);
    await run('ip', ['netns', 'delete', netns]).catch(() => undefined);
    await run('ip', ['link', 'delete', link]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  const after = newResources(before, await takeHostSnapshot());
  assert.equal(after.links?.includes(link) ?? false, false);
  assert.equal(after.netns?.includes(netns) ?? false, false);
});
