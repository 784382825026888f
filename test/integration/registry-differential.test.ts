/**
 * Berth and a real dockerd (20.10) pulling the same content from the same registry: the same
 * image ids, RepoDigests and CLI output; and an image Berth pushes is pulled by dockerd and
 * runs there.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { startDockerd, type DockerdInstance } from '../support/dockerd-harness.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { startRegistry, type RegistryInstance } from '../support/registry-harness.js';
import { busyboxParts, putBlob, putManifest, randomImageTar } from '../support/registry-fixtures.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

let berth: BerthInstance;
let dockerd: DockerdInstance;
let registry: RegistryInstance;
let fixtures: string;

before(async () => {
  fixtures = await mkdtemp(join(tmpdir(), 'berth-regdiff-'));
  [berth, dockerd, registry] = await Promise.all([startBerth(), startDockerd(), startRegistry()]);
  const busybox = await busyboxImageTar();
  await Promise.all([dockerOk(berth.env, ['load', '-i', busybox]), dockerOk(dockerd.env, ['load', '-i', busybox])]);
});

after(async () => {
  await Promise.all([berth?.stop(), dockerd?.stop(), registry?.stop()]);
  await rm(fixtures, { recursive: true, force: true });
});

const inspect = async (env: NodeJS.ProcessEnv, ref: string): Promise<{ Id: string; RepoDigests: string[]; RepoTags: string[]; Architecture: string }> =>
  (JSON.parse(await dockerOk(env, ['image', 'inspect', ref])) as { Id: string; RepoDigests: string[]; RepoTags: string[]; Architecture: string }[])[0]!;

/**
 * The lines of a pull's output in a stable order (layers download in parallel), without the
 * intermediate per-layer states dockerd's progress output may coalesce away under load.
 */
const sortedLines = (out: string): string[] =>
  out
    .split('\n')
    .filter((l) => l !== '' && !/: (Verifying Checksum|Download complete|Waiting)$/.test(l))
    .sort();

test('an image dockerd pushed: Berth pulls it by tag and by digest with the same id, RepoDigests and output', async () => {
  const ref = `${registry.host}/diff/app:v1`;
  const image = await randomImageTar(fixtures, 'diff', ref, [500_000, 100_000]);
  await dockerOk(dockerd.env, ['load', '-i', image.path]);
  const pushed = await dockerOk(dockerd.env, ['push', ref]);
  const digest = /^v1: digest: (sha256:[0-9a-f]{64})/m.exec(pushed)![1]!;
  await dockerOk(dockerd.env, ['rmi', ref]);

  const [fromDockerd, fromBerth] = await Promise.all([dockerOk(dockerd.env, ['pull', ref]), dockerOk(berth.env, ['pull', ref])]);
  assert.deepEqual(sortedLines(fromBerth), sortedLines(fromDockerd));
  const [d, b] = await Promise.all([inspect(dockerd.env, ref), inspect(berth.env, ref)]);
  assert.equal(b.Id, d.Id);
  assert.equal(b.Id, image.id);
  assert.deepEqual(b.RepoDigests, d.RepoDigests);
  assert.deepEqual(b.RepoDigests, [`${registry.host}/diff/app@${digest}`]);

  // Pulling again: "Image is up to date", word for word.
  const [againD, againB] = await Promise.all([dockerOk(dockerd.env, ['pull', ref]), dockerOk(berth.env, ['pull', ref])]);
  assert.equal(againB, againD);

  // Removing the tag takes the repository's digest reference and the image with it.
  const [rmiD, rmiB] = await Promise.all([dockerOk(dockerd.env, ['rmi', ref]), dockerOk(berth.env, ['rmi', ref])]);
  assert.deepEqual(sortedLines(rmiB), sortedLines(rmiD));
  const byDigest = `${registry.host}/diff/app@${digest}`;
  const [dOut, bOut] = await Promise.all([dockerOk(dockerd.env, ['pull', byDigest]), dockerOk(berth.env, ['pull', byDigest])]);
  assert.deepEqual(sortedLines(bOut), sortedLines(dOut));
  const [d2, b2] = await Promise.all([inspect(dockerd.env, byDigest), inspect(berth.env, byDigest)]);
  assert.equal(b2.Id, d2.Id);
  assert.deepEqual(b2.RepoDigests, d2.RepoDigests);
  assert.deepEqual(b2.RepoTags, d2.RepoTags);
  // By id: the digest reference goes, then the image.
  const [rmiD2, rmiB2] = await Promise.all([dockerOk(dockerd.env, ['rmi', d2.Id]), dockerOk(berth.env, ['rmi', b2.Id])]);
  assert.deepEqual(sortedLines(rmiB2), sortedLines(rmiD2));
});

test('a multi-platform index: both pick the same image for the host and for --platform linux/arm64', async () => {
  const repo = 'diff/multi';
  const { layer, config } = await busyboxParts();
  const gz = gzipSync(layer);
  const layerDigest = await putBlob(registry.url, repo, gz);
  const manifests = [];
  for (const architecture of ['amd64', 'arm64']) {
    const configBytes = Buffer.from(JSON.stringify({ ...config, architecture, comment: `for ${architecture}` }));
    const configDigest = await putBlob(registry.url, repo, configBytes);
    const m = await putManifest(registry.url, repo, `only-${architecture}`, 'application/vnd.docker.distribution.manifest.v2+json', {
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: configBytes.length, digest: configDigest },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: gz.length, digest: layerDigest }],
    });
    manifests.push({ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', size: m.size, digest: m.digest, platform: { architecture, os: 'linux' } });
  }
  await putManifest(registry.url, repo, 'v1', 'application/vnd.docker.distribution.manifest.list.v2+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifests,
  });
  const ref = `${registry.host}/${repo}:v1`;
  for (const args of [[], ['--platform', 'linux/arm64']]) {
    await Promise.all([dockerOk(dockerd.env, ['pull', ...args, ref]), dockerOk(berth.env, ['pull', ...args, ref])]);
    const [d, b] = await Promise.all([inspect(dockerd.env, ref), inspect(berth.env, ref)]);
    assert.equal(b.Id, d.Id, `ids for ${args.join(' ') || 'the host platform'}`);
    assert.equal(b.Architecture, d.Architecture);
    assert.deepEqual(b.RepoDigests, d.RepoDigests);
  }
  assert.equal((await inspect(berth.env, ref)).Architecture, 'arm64');
});

test('an image Berth pushed is pulled by dockerd with the same id and runs there', async () => {
  const ref = `${registry.host}/from-berth/busybox:v1`;
  await dockerOk(berth.env, ['tag', BUSYBOX_IMAGE, ref]);
  const pushed = await dockerOk(berth.env, ['push', ref]);
  const digest = /^v1: digest: (sha256:[0-9a-f]{64})/m.exec(pushed)![1]!;
  await dockerOk(dockerd.env, ['pull', ref]);
  const [d, b] = await Promise.all([inspect(dockerd.env, ref), inspect(berth.env, ref)]);
  assert.equal(d.Id, b.Id);
  assert.deepEqual(d.RepoDigests, [`${registry.host}/from-berth/busybox@${digest}`]);
  assert.deepEqual(b.RepoDigests, d.RepoDigests);
  const run = await docker(dockerd.env, ['run', '--rm', '--network', 'none', ref, 'echo', 'pushed by berth']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'pushed by berth\n');
});
