/**
 * docker push and pull through Berth against a real registry (Debian's docker-registry 2.8 on
 * 127.0.0.1, anonymous): round trips by tag and by digest, cross-repository mounts, a
 * multi-platform index with --platform, concurrent pulls sharing downloads, a tampered blob,
 * a zstd layer, and chunked uploads of a large layer.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { startCountingProxy, startRegistry, type RegistryInstance } from '../support/registry-harness.js';
import { busyboxParts, getManifest, putBlob, putManifest, randomImageTar } from '../support/registry-fixtures.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';
import { sha256Digest } from '../../src/agent/images/digest.js';

let berth: BerthInstance;
let registry: RegistryInstance;
let fixtures: string;

before(async () => {
  fixtures = await mkdtemp(join(tmpdir(), 'berth-registry-fixtures-'));
  [berth, registry] = await Promise.all([startBerth(), startRegistry()]);
  await dockerOk(berth.env, ['load', '-i', await busyboxImageTar()]);
});

after(async () => {
  await registry?.stop();
  await berth?.stop();
  await rm(fixtures, { recursive: true, force: true });
});

const inspect = async (ref: string, format: string): Promise<string> => (await dockerOk(berth.env, ['image', 'inspect', '--format', format, ref])).trim();

/** Files in Berth's image content store and its temp dir (nothing may be left after a failure). */
async function contentFiles(): Promise<string[]> {
  const list = async (dir: string): Promise<string[]> => readdir(dir).catch(() => []);
  const images = join(berth.dataRoot, 'images');
  return [...(await list(join(images, 'content', 'sha256'))), ...(await list(join(images, 'content', 'ingest'))).map((f) => `ingest/${f}`), ...(await list(join(images, 'tmp'))).map((f) => `tmp/${f}`)];
}

test('push, rmi, pull back by tag and by digest: same image id, RepoDigests, runs', async () => {
  const ref = `${registry.host}/roundtrip/busybox:v1`;
  const id = await inspect(BUSYBOX_IMAGE, '{{.Id}}');
  await dockerOk(berth.env, ['tag', BUSYBOX_IMAGE, ref]);
  const pushed = await dockerOk(berth.env, ['push', ref]);
  assert.match(pushed, /^The push refers to repository \[127\.0\.0\.1:\d+\/roundtrip\/busybox\]$/m);
  assert.match(pushed, /^[0-9a-f]{12}: Pushed$/m);
  const digest = /^v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)$/m.exec(pushed);
  assert.ok(digest, pushed);
  // The digest the CLI printed is the registry's manifest.
  const manifest = await getManifest(registry.url, 'roundtrip/busybox', 'v1');
  assert.equal(manifest.digest, digest[1]);
  assert.equal(manifest.size, Number(digest[2]));
  assert.deepEqual(JSON.parse(await inspect(ref, '{{json .RepoDigests}}')), [`${registry.host}/roundtrip/busybox@${digest[1]}`]);

  // Pushing again finds the layer there.
  assert.match(await dockerOk(berth.env, ['push', ref]), /: Layer already exists$/m);

  // Gone entirely (both tags), so the pull must download it.
  await dockerOk(berth.env, ['rmi', ref, BUSYBOX_IMAGE]);
  assert.equal((await docker(berth.env, ['image', 'inspect', id])).code, 1);
  const pulled = await dockerOk(berth.env, ['pull', ref]);
  assert.match(pulled, /^v1: Pulling from roundtrip\/busybox$/m);
  assert.match(pulled, /^[0-9a-f]{12}: Pulling fs layer$/m);
  assert.match(pulled, /^[0-9a-f]{12}: Verifying Checksum$/m);
  assert.match(pulled, /^[0-9a-f]{12}: Download complete$/m);
  assert.match(pulled, /^[0-9a-f]{12}: Pull complete$/m);
  assert.match(pulled, new RegExp(`^Digest: ${digest[1]}$`, 'm'));
  assert.match(pulled, new RegExp(`^Status: Downloaded newer image for ${ref.replace(/[.]/g, '\\.')}$`, 'm'));
  await dockerOk(berth.env, ['tag', ref, BUSYBOX_IMAGE]);
  assert.equal(await inspect(ref, '{{.Id}}'), id);
  assert.deepEqual(JSON.parse(await inspect(ref, '{{json .RepoDigests}}')), [`${registry.host}/roundtrip/busybox@${digest[1]}`]);
  assert.equal(await dockerOk(berth.env, ['run', '--rm', ref, 'echo', 'pulled']), 'pulled\n');

  // A second pull of an image we have is a no-op.
  const again = await dockerOk(berth.env, ['pull', ref]);
  assert.match(again, /^Status: Image is up to date for /m);
  assert.doesNotMatch(again, /Pull complete|Already exists/);

  // By digest: no tag, the digest reference resolves.
  const byDigest = `${registry.host}/roundtrip/busybox@${digest[1]}`;
  await dockerOk(berth.env, ['rmi', ref]);
  const out = await dockerOk(berth.env, ['pull', byDigest]);
  assert.match(out, new RegExp(`^${byDigest.replace(/[.]/g, '\\.')}: Pulling from roundtrip/busybox$`, 'm'));
  assert.equal(await inspect(byDigest, '{{.Id}}'), id);
  assert.deepEqual(JSON.parse(await inspect(byDigest, '{{json .RepoTags}}')), [BUSYBOX_IMAGE]);
  await dockerOk(berth.env, ['rmi', byDigest]);
});

test('tag + push to another repository of the same registry mounts the layer', async () => {
  const first = `${registry.host}/mount/a:v1`;
  const second = `${registry.host}/mount/b:v1`;
  await dockerOk(berth.env, ['tag', BUSYBOX_IMAGE, first]);
  await dockerOk(berth.env, ['push', first]);
  await dockerOk(berth.env, ['tag', BUSYBOX_IMAGE, second]);
  const out = await dockerOk(berth.env, ['push', second]);
  assert.match(out, /^[0-9a-f]{12}: Mounted from mount\/a$/m);
  const a = await getManifest(registry.url, 'mount/a', 'v1');
  const b = await getManifest(registry.url, 'mount/b', 'v1');
  assert.equal(a.digest, b.digest);

  // --all-tags pushes every tag of the repository.
  await dockerOk(berth.env, ['tag', BUSYBOX_IMAGE, `${registry.host}/mount/a:v2`]);
  const all = await dockerOk(berth.env, ['push', '--all-tags', `${registry.host}/mount/a`]);
  assert.match(all, /^v1: digest: sha256:[0-9a-f]{64} size: \d+$/m);
  assert.match(all, /^v2: digest: sha256:[0-9a-f]{64} size: \d+$/m);
  assert.equal((await getManifest(registry.url, 'mount/a', 'v2')).digest, a.digest);
  // docker images --digests shows the digest next to each pushed tag.
  const digests = await dockerOk(berth.env, ['images', '--digests', '--format', '{{.Repository}}:{{.Tag}} {{.Digest}}']);
  const mine = digests.trim().split('\n').filter((l) => l.startsWith(`${registry.host}/mount/a:`));
  assert.deepEqual(mine.sort(), [`${registry.host}/mount/a:v1 ${a.digest}`, `${registry.host}/mount/a:v2 ${a.digest}`]);
  await dockerOk(berth.env, ['rmi', first, second, `${registry.host}/mount/a:v2`]);
});

test('unknown tag, untagged push, wrong platform: Docker\'s messages, nothing stored', async () => {
  const before = await contentFiles();
  const result = await docker(berth.env, ['pull', `${registry.host}/roundtrip/busybox:nope`]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, new RegExp(`Error response from daemon: manifest for ${registry.host.replace(/[.]/g, '\\.')}/roundtrip/busybox:nope not found: manifest unknown: manifest unknown`));
  assert.deepEqual(await contentFiles(), before);
  const push = await docker(berth.env, ['push', `${registry.host}/never/tagged:v1`]);
  assert.equal(push.code, 1);
  assert.match(push.stderr, new RegExp(`^An image does not exist locally with the tag: ${registry.host.replace(/[.]/g, '\\.')}/never/tagged$`, 'm'));
  const platform = await docker(berth.env, ['pull', '--platform', 'linux/arm64', `${registry.host}/mount/a:v1`]);
  assert.equal(platform.code, 1);
  assert.match(platform.stderr, /was found but does not match the specified platform: wanted linux\/arm64, actual: linux\/amd64/);
  assert.deepEqual(await contentFiles(), before);
});

test('a multi-platform index: the host platform by default, --platform picks another, a missing one is refused', async () => {
  const repo = 'multi/busybox';
  const { layer, config } = await busyboxParts();
  const { gzipSync } = await import('node:zlib');
  const gz = gzipSync(layer);
  const layerDigest = await putBlob(registry.url, repo, gz);
  const entries = [];
  const ids: Record<string, string> = {};
  for (const architecture of ['amd64', 'arm64']) {
    const configBytes = Buffer.from(JSON.stringify({ ...config, architecture, ...(architecture === 'arm64' ? { variant: 'v8' } : {}) }));
    const configDigest = await putBlob(registry.url, repo, configBytes);
    ids[architecture] = configDigest;
    const m = await putManifest(registry.url, repo, configDigest.replace('sha256:', 'cfg-').slice(0, 40), 'application/vnd.oci.image.manifest.v1+json', {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: configBytes.length, digest: configDigest },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: gz.length, digest: layerDigest }],
    });
    entries.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: m.size,
      digest: m.digest,
      platform: { os: 'linux', architecture, ...(architecture === 'arm64' ? { variant: 'v8' } : {}) },
    });
  }
  const index = await putManifest(registry.url, repo, 'v1', 'application/vnd.oci.image.index.v1+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: entries,
  });
  const ref = `${registry.host}/${repo}:v1`;

  const out = await dockerOk(berth.env, ['pull', ref]);
  assert.match(out, new RegExp(`^Digest: ${index.digest}$`, 'm'));
  assert.equal(await inspect(ref, '{{.Id}}'), ids.amd64);
  assert.equal(await inspect(ref, '{{.Architecture}}'), 'amd64');
  assert.ok((JSON.parse(await inspect(ref, '{{json .RepoDigests}}')) as string[]).includes(`${registry.host}/${repo}@${index.digest}`));

  await dockerOk(berth.env, ['pull', '--platform', 'linux/arm64', ref]);
  assert.equal(await inspect(ref, '{{.Id}}'), ids.arm64);
  assert.equal(await inspect(ref, '{{.Architecture}}'), 'arm64');
  assert.equal(await inspect(ref, '{{.Variant}}'), 'v8');

  const missing = await docker(berth.env, ['pull', '--platform', 'linux/s390x', ref]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no matching manifest for linux\/s390x in the manifest list entries/);
  // The tag (and the index's digest reference) moved to the arm64 image; busybox keeps its tag.
  await dockerOk(berth.env, ['rmi', ref]);
  assert.equal((await docker(berth.env, ['image', 'inspect', ids.arm64])).code, 1);
  assert.equal(await inspect(BUSYBOX_IMAGE, '{{.Id}}'), await inspect(ids.amd64, '{{.Id}}'));
});

test('two concurrent pulls of one image download each blob once', async () => {
  const tag = `${registry.host}/concurrent/app:v1`;
  const image = await randomImageTar(fixtures, 'concurrent', tag, [3_000_000, 2_000_000, 1_000_000]);
  await dockerOk(berth.env, ['load', '-i', image.path]);
  await dockerOk(berth.env, ['push', tag]);
  await dockerOk(berth.env, ['rmi', tag]);
  assert.equal((await docker(berth.env, ['image', 'inspect', image.id])).code, 1, 'the image is gone before the pulls');

  // Through a proxy that holds each blob back for 1 s, so the pulls overlap for certain.
  const proxy = await startCountingProxy(registry, 1000);
  try {
    const ref = `${proxy.host}/concurrent/app:v1`;
    const [a, b] = await Promise.all([docker(berth.env, ['pull', ref]), docker(berth.env, ['pull', ref])]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const manifest = await getManifest(registry.url, 'concurrent/app', 'v1');
    const layers = (manifest.json.layers as { digest: string }[]).map((l) => l.digest);
    assert.equal(layers.length, 4);
    assert.equal(proxy.blobGets(layers[0]), 0, 'the busybox layer is not fetched at all');
    for (const digest of layers.slice(1)) assert.equal(proxy.blobGets(digest), 1, `blob ${digest} fetched once`);
    // Both pulls saw every new layer arrive (neither found it already there); the busybox
    // layer (the first) is in Berth already.
    for (const out of [a.stdout, b.stdout]) {
      assert.match(out, new RegExp(`^${layers[0]!.slice(7, 19)}: Already exists$`, 'm'), out);
      for (const digest of layers.slice(1)) assert.match(out, new RegExp(`^${digest.slice(7, 19)}: Pull complete$`, 'm'), out);
      assert.match(out, /^Status: Downloaded newer image for /m, out);
    }
    assert.equal(await inspect(ref, '{{.Id}}'), image.id);
    await dockerOk(berth.env, ['rmi', ref]);
  } finally {
    await proxy.stop();
  }
});

test('a tampered blob is refused with a digest error and leaves nothing behind', async () => {
  const tag = `${registry.host}/tampered/app:v1`;
  const image = await randomImageTar(fixtures, 'tampered', tag, [200_000]);
  await dockerOk(berth.env, ['load', '-i', image.path]);
  await dockerOk(berth.env, ['push', tag]);
  await dockerOk(berth.env, ['rmi', tag]);
  const before = await contentFiles();

  const manifest = await getManifest(registry.url, 'tampered/app', 'v1');
  const top = (manifest.json.layers as { digest: string }[])[1]!.digest;
  const file = await open(registry.blobDataPath(top), 'r+');
  try {
    const byte = Buffer.alloc(1);
    await file.read(byte, 0, 1, 1000);
    byte[0] = byte[0]! ^ 0xff;
    await file.write(byte, 0, 1, 1000);
  } finally {
    await file.close();
  }

  const result = await docker(berth.env, ['pull', tag]);
  assert.equal(result.code, 1);
  assert.match(result.stderr + result.stdout, new RegExp(`filesystem layer verification failed for digest ${top}`));
  assert.equal((await docker(berth.env, ['image', 'inspect', tag])).code, 1);
  assert.deepEqual(await contentFiles(), before, 'no blob, ingest or temp file left');
});

test('a zstd layer is refused with a clear error', async () => {
  const repo = 'zstd/app';
  const { config } = await busyboxParts();
  const fakeLayer = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
  const layerDigest = await putBlob(registry.url, repo, fakeLayer);
  const configBytes = Buffer.from(JSON.stringify({ ...config, rootfs: { type: 'layers', diff_ids: [sha256Digest('zstd-test')] } }));
  const configDigest = await putBlob(registry.url, repo, configBytes);
  await putManifest(registry.url, repo, 'v1', 'application/vnd.oci.image.manifest.v1+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: configBytes.length, digest: configDigest },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', size: fakeLayer.length, digest: layerDigest }],
  });
  const result = await docker(berth.env, ['pull', `${registry.host}/${repo}:v1`]);
  assert.equal(result.code, 1);
  assert.match(result.stderr + result.stdout, /unsupported layer compression: zstd/);
});

test('a layer larger than one chunk goes up in chunks and comes back intact', async () => {
  const tag = `${registry.host}/chunked/app:v1`;
  const image = await randomImageTar(fixtures, 'chunked', tag, [20_000_000]);
  await dockerOk(berth.env, ['load', '-i', image.path]);
  const before = registry.logs().length;
  await dockerOk(berth.env, ['push', tag], { timeoutMs: 120_000 });
  const patches = [...registry.logs().slice(before).matchAll(/"PATCH \/v2\/chunked\/app\/blobs\/uploads\/\S+ HTTP\/1\.1" 202/g)].length;
  assert.ok(patches >= 3, `expected at least 3 PATCH chunks, saw ${patches}`);
  await dockerOk(berth.env, ['rmi', tag]);
  await dockerOk(berth.env, ['pull', tag], { timeoutMs: 120_000 });
  assert.equal(await inspect(tag, '{{.Id}}'), image.id);
  await dockerOk(berth.env, ['rmi', tag]);
});

test('Berth killed mid-pull: on restart the half-pulled layers and temp files are gone', async () => {
  const tag = `${registry.host}/crash/app:v1`;
  const image = await randomImageTar(fixtures, 'crash', tag, [300_000, 300_000]);
  await dockerOk(berth.env, ['load', '-i', image.path]);
  await dockerOk(berth.env, ['push', tag]);
  await dockerOk(berth.env, ['rmi', tag]);
  const before = await contentFiles();
  const manifest = await getManifest(registry.url, 'crash/app', 'v1');
  const layers = (manifest.json.layers as { digest: string }[]).map((l) => l.digest);
  // The last layer hangs for a minute; the others arrive at once.
  const proxy = await startCountingProxy(registry, (digest) => (digest === layers[2] ? 60_000 : 0));
  try {
    const pull = docker(berth.env, ['pull', `${proxy.host}/crash/app:v1`], { timeoutMs: 30_000 });
    const deadline = Date.now() + 20_000;
    while (proxy.blobGets(layers[2]) === 0 || (await contentFiles()).length < before.length + 1) {
      assert.ok(Date.now() < deadline, 'the pull did not get halfway');
      await new Promise((r) => setTimeout(r, 50));
    }
    await berth.kill();
    await pull;
    assert.ok((await contentFiles()).length > before.length, 'the killed pull left content to repair');
    await berth.restart();
    assert.deepEqual(await contentFiles(), before);
    assert.equal((await docker(berth.env, ['image', 'inspect', tag])).code, 1);
  } finally {
    await proxy.stop();
  }
});
