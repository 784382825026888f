import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKind } from '../../../src/common/errors.js';
import { MEDIA, parseManifest, parsePlatform, selectPlatform, type Descriptor } from '../../../src/server/registry/manifest.js';

const digest = (c: string): string => `sha256:${c.repeat(64)}`;
const bytes = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

test('parseManifest reads Docker schema 2, OCI manifests and indexes', () => {
  const cases = [
    {
      name: 'docker schema 2',
      body: { schemaVersion: 2, mediaType: MEDIA.dockerManifest, config: { mediaType: MEDIA.dockerConfig, size: 10, digest: digest('a') }, layers: [{ mediaType: MEDIA.dockerLayerGzip, size: 5, digest: digest('b') }] },
      contentType: MEDIA.dockerManifest,
      kind: 'image',
    },
    {
      name: 'OCI manifest without mediaType in the body',
      body: { schemaVersion: 2, config: { mediaType: MEDIA.ociConfig, size: 10, digest: digest('a') }, layers: [] },
      contentType: MEDIA.ociManifest,
      kind: 'image',
    },
    {
      name: 'OCI index',
      body: { schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: [{ mediaType: MEDIA.ociManifest, size: 3, digest: digest('c'), platform: { os: 'linux', architecture: 'arm64' } }] },
      contentType: MEDIA.ociIndex,
      kind: 'index',
    },
    {
      name: 'Docker manifest list',
      body: { schemaVersion: 2, mediaType: MEDIA.dockerList, manifests: [] },
      contentType: 'application/json',
      kind: 'index',
    },
  ];
  for (const c of cases) assert.equal(parseManifest(bytes(c.body), c.contentType).kind, c.kind, c.name);
});

test('parseManifest refuses schema 1, bad JSON and malformed descriptors', () => {
  const refusals = [
    { name: 'schema 1', body: Buffer.from('{"schemaVersion":1,"fsLayers":[]}'), kind: 'NotImplemented' },
    { name: 'not JSON', body: Buffer.from('<html>'), kind: 'InvalidArgument' },
    { name: 'bad digest', body: bytes({ schemaVersion: 2, mediaType: MEDIA.dockerManifest, config: { size: 1, digest: 'md5:x' }, layers: [] }), kind: 'InvalidArgument' },
    { name: 'negative size', body: bytes({ schemaVersion: 2, mediaType: MEDIA.dockerManifest, config: { size: -1, digest: digest('a') }, layers: [] }), kind: 'InvalidArgument' },
  ] as const;
  for (const r of refusals) {
    assert.throws(() => parseManifest(r.body, MEDIA.dockerManifest), (err: unknown) => isKind(err, r.kind), r.name);
  }
});

test('parsePlatform normalizes what --platform accepts', () => {
  assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('linux/aarch64'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.throws(() => parsePlatform('linux'), (err: unknown) => isKind(err, 'InvalidArgument'));
  assert.throws(() => parsePlatform('linux//v7'), (err: unknown) => isKind(err, 'InvalidArgument'));
});

test('selectPlatform picks the matching entry, arm64 with or without variant', () => {
  const entries: Descriptor[] = [
    { mediaType: MEDIA.ociManifest, size: 1, digest: digest('1'), platform: { os: 'linux', architecture: 'amd64' } },
    { mediaType: MEDIA.ociManifest, size: 1, digest: digest('2'), platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { mediaType: MEDIA.ociManifest, size: 1, digest: digest('3'), platform: { os: 'linux', architecture: 'arm64' } },
    { mediaType: MEDIA.ociManifest, size: 1, digest: digest('4'), platform: { os: 'windows', architecture: 'amd64' } },
  ];
  assert.equal(selectPlatform(entries, parsePlatform('linux/amd64')).digest, digest('1'));
  assert.equal(selectPlatform(entries, parsePlatform('linux/arm64')).digest, digest('3'));
  assert.equal(selectPlatform(entries, parsePlatform('linux/arm64/v8')).digest, digest('3'));
  assert.equal(selectPlatform(entries, parsePlatform('linux/arm/v7')).digest, digest('2'));
  assert.throws(() => selectPlatform(entries, parsePlatform('linux/arm/v6')), /no matching manifest for linux\/arm\/v6 in the manifest list entries/);
});
