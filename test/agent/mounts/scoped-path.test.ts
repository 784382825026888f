import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveInRoot } from '../../../src/agent/mounts/scoped-path.js';

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'berth-scoped-'));
  await mkdir(join(root, 'real', 'data'), { recursive: true });
  await symlink('/real', join(root, 'abs'));
  await symlink('real/data', join(root, 'rel'));
  await symlink('../../../../etc', join(root, 'escape'));
  await symlink('loop', join(root, 'loop'));
});
after(() => rm(root, { recursive: true, force: true }));

test('resolveInRoot follows links as if the root were /', async () => {
  assert.equal(await resolveInRoot(root, '/real/data'), join(root, 'real/data'));
  assert.equal(await resolveInRoot(root, '/abs/data'), join(root, 'real/data'));
  assert.equal(await resolveInRoot(root, '/rel'), join(root, 'real/data'));
  assert.equal(await resolveInRoot(root, '/missing/x'), join(root, 'missing/x'));
});

test('resolveInRoot never leaves the root', async () => {
  assert.equal(await resolveInRoot(root, '/escape'), join(root, 'etc'));
  assert.equal(await resolveInRoot(root, '/../../etc/passwd'), join(root, 'etc/passwd'));
  await assert.rejects(resolveInRoot(root, '/loop'), /too many levels/);
});
