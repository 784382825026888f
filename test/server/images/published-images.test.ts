/**
 * PublishedImages over a real SQLite store: what a tenant sees of the operator's published
 * images (shadowing by its own references), and which tenant containers pin an image.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { operatorContext, type RequestContext } from '../../../src/common/context.js';
import { IMAGE_KIND, type ImageRecord } from '../../../src/server/images/image-record.js';
import { PublishedImages } from '../../../src/server/images/published-images.js';
import { SqliteStore } from '../../../src/server/store/sqlite/sqlite-store.js';

let dir: string;
let store: SqliteStore;
let published: PublishedImages;
const acme: RequestContext = { tenant: 'acme', requestId: 't' };
const globex: RequestContext = { tenant: 'globex', requestId: 't' };
const hexOf = (n: number): string => n.toString(16).padStart(64, '0');

function image(n: number, repoTags: string[], repoDigests: string[] = []): ImageRecord {
  return { id: `sha256:${hexOf(n)}`, repoTags, repoDigests, diffIds: [], chainIds: [], layerSizes: [], config: { rootfs: { type: 'layers', diff_ids: [] } }, created: '2026-01-01T00:00:00Z' };
}

async function put(ctx: RequestContext, record: ImageRecord): Promise<void> {
  await store.create(ctx, IMAGE_KIND, { id: record.id.slice(7), value: record });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-published-'));
  store = new SqliteStore(join(dir, 'state.db'));
  published = new PublishedImages(store);
  await put(operatorContext(), image(1, ['base/debian:12', 'base/debian:latest'], ['base/debian@sha256:' + 'a'.repeat(64)]));
  await put(operatorContext(), image(2, ['base/secret:1']));
  await put(operatorContext(), image(3, ['base/alpine:3']));
});
after(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

test('only published images are visible, to tenants only, and publishing is idempotent', async () => {
  assert.equal(await published.add(`sha256:${hexOf(1)}`), true);
  assert.equal(await published.add(`sha256:${hexOf(1)}`), false);
  assert.equal(await published.add(`sha256:${hexOf(3)}`), true);
  const seen = await published.visibleTo(acme, []);
  assert.deepEqual(seen.map((v) => v.stored.value.repoTags).sort(), [['base/alpine:3'], ['base/debian:12', 'base/debian:latest']]);
  assert.ok(seen.every((v) => v.listed));
  assert.deepEqual(await published.visibleTo(operatorContext(), []), []);
  assert.equal(await published.isPublished(`sha256:${hexOf(2)}`), false);
});

test("a tenant's own references shadow the published ones; a fully shadowed image is not listed", async () => {
  const own = [{ id: hexOf(9), name: null, revision: 1, value: image(9, ['base/debian:latest', 'base/alpine:3']) }];
  const seen = await published.visibleTo(acme, own);
  const debian = seen.find((v) => v.stored.value.id === `sha256:${hexOf(1)}`)!;
  assert.deepEqual(debian.stored.value.repoTags, ['base/debian:12']);
  assert.deepEqual(debian.stored.value.repoDigests, ['base/debian@sha256:' + 'a'.repeat(64)]);
  assert.equal(debian.listed, true);
  const alpine = seen.find((v) => v.stored.value.id === `sha256:${hexOf(3)}`)!;
  assert.deepEqual(alpine.stored.value.repoTags, []);
  assert.equal(alpine.listed, false);
  // Another tenant is not affected by acme's names.
  assert.ok((await published.visibleTo(globex, [])).every((v) => v.listed));
});

test('unpublishing withdraws; an operator image gone since is skipped', async () => {
  assert.equal(await published.remove(`sha256:${hexOf(3)}`), true);
  assert.equal(await published.remove(`sha256:${hexOf(3)}`), false);
  await published.add(`sha256:${hexOf(2)}`);
  await store.delete(operatorContext(), IMAGE_KIND, hexOf(2));
  assert.deepEqual((await published.all()).map((p) => p.image.id), [`sha256:${hexOf(1)}`]);
});

test("tenant containers pin an image unless the tenant holds its own record of it", async () => {
  const container = (n: number, imageN: number) => ({ id: hexOf(100 + n), value: { imageId: `sha256:${hexOf(imageN)}` } });
  await store.create(acme, 'container', container(1, 1));
  await store.create(globex, 'container', container(2, 1));
  await store.create(operatorContext(), 'container', container(3, 1));
  await store.create(globex, 'container', container(4, 3));
  assert.deepEqual((await published.tenantContainersUsing(`sha256:${hexOf(1)}`)).map((c) => c.tenant).sort(), ['acme', 'globex']);
  // acme tags it: acme's own record now holds the layers for acme's container.
  await put(acme, image(1, ['acme/debian:mine']));
  assert.deepEqual((await published.tenantContainersUsing(`sha256:${hexOf(1)}`)).map((c) => c.tenant), ['globex']);
});
