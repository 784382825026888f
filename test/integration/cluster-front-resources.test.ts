/**
 * The cluster front's image, volume and event routes over two real engines (berth up), driven
 * by the docker CLI (test/support/front-over-engines.ts explains the stand-in hub). What it
 * proves: images listed once across hosts, an image reaching a host that lacks it by a pull
 * by digest from the registry (counted at the registry) or, for an image built on Berth, by
 * relaying save → load; tag and rmi on every holder; volumes spread over hosts and found
 * again by name; events of both hosts in one stream.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { operatorContext } from '../../src/common/context.js';
import { ensureImageOnHost, imageIdOf } from '../../src/server/cluster/front/image-transfer.js';
import { volumeHostOf } from '../../src/server/cluster/front/volumes.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { startFrontOverEngines, type FrontOverEngines } from '../support/front-over-engines.js';
import { startRegistry, type RegistryInstance } from '../support/registry-harness.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';
import { removeTree } from '../support/cleanup.js';

let cluster: FrontOverEngines;
let registry: RegistryInstance;
let work: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-front-resources-'));
  [cluster, registry] = await Promise.all([startFrontOverEngines(2), startRegistry()]);
});

after(async () => {
  await cluster?.stop();
  await registry?.stop();
  if (work) await removeTree(work);
});

/** GET on the front's socket; the whole body once the server ends it. */
function rawGet(path: string): Promise<string> {
  const socketPath = String(cluster.env.DOCKER_HOST).replace(/^unix:\/\//, '');
  return new Promise((resolve, reject) => {
    const req = get({ socketPath, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

const engineEnv = (index: number): NodeJS.ProcessEnv => cluster.engines[index]!.env;
const imageIdOn = async (index: number, ref: string): Promise<string | undefined> => {
  const result = await docker(engineEnv(index), ['image', 'inspect', '--format', '{{.Id}}', ref]);
  return result.code === 0 ? result.stdout.trim() : undefined;
};

test('an image held by one host is listed once, tagged and removed on every holder, and pulled by digest onto a host that lacks it', async () => {
  await dockerOk(engineEnv(0), ['load', '-i', await busyboxImageTar()]);
  const id = await imageIdOn(0, BUSYBOX_IMAGE);
  assert.ok(id);
  assert.equal(await imageIdOn(1, BUSYBOX_IMAGE), undefined);

  assert.equal(await imageIdOf(cluster.deps, operatorContext('test'), BUSYBOX_IMAGE), id);
  assert.equal(await imageIdOf(cluster.deps, operatorContext('test'), 'front/nowhere:1'), undefined);

  // Through the front: listed once, inspectable, tagged on its holder.
  const listed = await dockerOk(cluster.env, ['images', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}']);
  assert.deepEqual(listed.trim().split('\n'), [`${id} ${BUSYBOX_IMAGE}`]);
  assert.equal((await dockerOk(cluster.env, ['image', 'inspect', '--format', '{{.Id}}', BUSYBOX_IMAGE])).trim(), id);
  const pushed = `${registry.host}/front/busybox:v1`;
  await dockerOk(cluster.env, ['tag', BUSYBOX_IMAGE, pushed]);
  assert.equal(await imageIdOn(0, pushed), id);
  await dockerOk(cluster.env, ['push', pushed]);

  // Host 1 lacks it; a holder's RepoDigests name it in the registry: host 1 pulls by digest.
  const blobGetsBefore = registry.blobGets();
  await ensureImageOnHost(cluster.deps, operatorContext('test'), cluster.hostIds[1]!, pushed);
  assert.equal(await imageIdOn(1, pushed), id);
  assert.ok(registry.blobGets() > blobGetsBefore, 'host 1 fetched the layers from the registry');

  // Asked by another name of the same image: the digest still names it, so host 1 pulls it
  // again and gives it the name the container asked for.
  await dockerOk(engineEnv(1), ['rmi', pushed]);
  assert.equal(await imageIdOn(1, id), undefined);
  const blobGetsBeforeSecond = registry.blobGets();
  await ensureImageOnHost(cluster.deps, operatorContext('test'), cluster.hostIds[1]!, BUSYBOX_IMAGE);
  assert.equal(await imageIdOn(1, BUSYBOX_IMAGE), id);
  assert.ok(registry.blobGets() > blobGetsBeforeSecond);
  await dockerOk(engineEnv(1), ['tag', BUSYBOX_IMAGE, pushed]);

  // Now on both hosts, still one line per image and tag.
  const merged = await dockerOk(cluster.env, ['images', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}']);
  assert.deepEqual(merged.trim().split('\n').sort(), [`${id} ${BUSYBOX_IMAGE}`, `${id} ${pushed}`].sort());

  // A tag through the front lands on every holder; rmi through the front leaves none.
  await dockerOk(cluster.env, ['tag', BUSYBOX_IMAGE, 'front/everywhere:1']);
  assert.equal(await imageIdOn(0, 'front/everywhere:1'), id);
  assert.equal(await imageIdOn(1, 'front/everywhere:1'), id);
  await dockerOk(cluster.env, ['rmi', 'front/everywhere:1']);
  assert.equal(await imageIdOn(0, 'front/everywhere:1'), undefined);
  assert.equal(await imageIdOn(1, 'front/everywhere:1'), undefined);

  // Nobody holds it: Docker's own words, so `docker run` would pull.
  const missing = await docker(cluster.env, ['image', 'inspect', 'front/nowhere:1']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /No such image: front\/nowhere:1/);
  await assert.rejects(ensureImageOnHost(cluster.deps, operatorContext('test'), cluster.hostIds[0]!, 'front/nowhere:1'), /No such image: front\/nowhere:1/);
});

test('an image built through the front lives on one host and is relayed to the other', async () => {
  const context = join(work, 'ctx');
  await mkdir(context, { recursive: true });
  await writeFile(join(context, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nRUN echo built > /built.txt\nCMD ["cat", "/built.txt"]\n`);
  const built = await docker(cluster.env, ['build', '-t', 'front/built:1', context], { timeoutMs: 120_000 });
  assert.equal(built.code, 0, `${built.stdout}\n${built.stderr}`);
  const holders = [await imageIdOn(0, 'front/built:1'), await imageIdOn(1, 'front/built:1')];
  const holder = holders.findIndex((found) => found !== undefined);
  assert.ok(holder >= 0);
  assert.equal(holders[1 - holder], undefined, 'a build runs on one host');
  // Built on Berth, so no registry knows it: relayed from the holder's save into the other's load.
  const blobGetsBefore = registry.blobGets();
  await ensureImageOnHost(cluster.deps, operatorContext('test'), cluster.hostIds[1 - holder]!, 'front/built:1');
  assert.equal(await imageIdOn(1 - holder, 'front/built:1'), holders[holder]);
  assert.equal(registry.blobGets(), blobGetsBefore, 'the relay does not touch the registry');
  const run = await dockerOk(engineEnv(1 - holder), ['run', '--rm', 'front/built:1']);
  assert.equal(run.trim(), 'built');
});

test('a build whose stages start from images of two different hosts runs on one of them, which gets the other', async () => {
  const baseOn = async (index: number, name: string, file: string): Promise<void> => {
    const dir = join(work, `base-${file}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nRUN echo ${file} > /${file}\n`);
    await dockerOk(engineEnv(index), ['build', '-t', name, dir], { timeoutMs: 120_000 });
  };
  await baseOn(0, 'front/base-a:1', 'a');
  await baseOn(1, 'front/base-b:1', 'b');
  const dir = join(work, 'multi');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), 'FROM front/base-a:1 AS first\nFROM front/base-b:1\nCOPY --from=first /a /a\nCMD ["cat", "/a", "/b"]\n');
  const built = await docker(cluster.env, ['build', '-t', 'front/multi:1', dir], { timeoutMs: 120_000 });
  assert.equal(built.code, 0, `${built.stdout}\n${built.stderr}`);
  const holder = (await imageIdOn(0, 'front/multi:1')) !== undefined ? 0 : 1;
  assert.equal(await imageIdOn(1 - holder, 'front/multi:1'), undefined, 'built on one host');
  const out = await dockerOk(engineEnv(holder), ['run', '--rm', 'front/multi:1']);
  assert.deepEqual(out.trim().split('\n'), ['a', 'b']);
});

test('volumes spread over the hosts, are found again by name, and events of both hosts come in one stream', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  await dockerOk(cluster.env, ['volume', 'create', 'front-a']);
  await dockerOk(cluster.env, ['volume', 'create', 'front-b']);
  const ctx = operatorContext('test');
  const hostA = await volumeHostOf(cluster.deps, ctx, 'front-a');
  const hostB = await volumeHostOf(cluster.deps, ctx, 'front-b');
  assert.ok(hostA && hostB);
  assert.notEqual(hostA, hostB, 'the second volume goes to the host holding none');
  const onEngine = async (index: number, name: string): Promise<boolean> => (await docker(engineEnv(index), ['volume', 'inspect', name])).code === 0;
  assert.equal(await onEngine(cluster.hostIds.indexOf(hostA), 'front-a'), true);
  assert.equal(await onEngine(cluster.hostIds.indexOf(hostA), 'front-b'), false);

  const listed = await dockerOk(cluster.env, ['volume', 'ls', '--format', '{{.Name}}']);
  assert.deepEqual(listed.trim().split('\n').filter((name) => name.startsWith('front-')).sort(), ['front-a', 'front-b']);
  assert.equal((await dockerOk(cluster.env, ['volume', 'inspect', '--format', '{{.Name}}', 'front-b'])).trim(), 'front-b');
  // Creating an existing volume again answers from its host, not a second copy elsewhere.
  await dockerOk(cluster.env, ['volume', 'create', 'front-a']);
  assert.equal(await onEngine(cluster.hostIds.indexOf(hostB), 'front-a'), false);

  // A volume an engine made by itself (no record) is still found, and recorded.
  await dockerOk(engineEnv(1), ['volume', 'create', 'front-direct']);
  assert.equal(await volumeHostOf(cluster.deps, ctx, 'front-direct'), cluster.hostIds[1]);

  const until = Math.floor(Date.now() / 1000) + 1;
  await new Promise((resolve) => setTimeout(resolve, 1100));
  // The raw API: the CLI's --format drops the `node` field the front adds.
  const events = await rawGet(`/events?since=${since}&until=${until}&filters=${encodeURIComponent(JSON.stringify({ type: ['volume'] }))}`);
  const parsed = events
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { Action: string; Actor: { ID: string }; timeNano: number; node?: { ID: string } });
  const creates = parsed.filter((event) => event.Action === 'create');
  assert.deepEqual(new Set(creates.map((event) => event.Actor.ID)), new Set(['front-a', 'front-b', 'front-direct']));
  assert.deepEqual(new Set(creates.map((event) => event.node?.ID)), new Set(cluster.hostIds), 'events of both hosts');
  const times = parsed.map((event) => event.timeNano);
  assert.deepEqual(times, [...times].sort((a, b) => a - b), 'in time order');

  await dockerOk(cluster.env, ['volume', 'rm', 'front-a', 'front-b', 'front-direct']);
  assert.equal(await volumeHostOf(cluster.deps, ctx, 'front-a'), undefined);
  const gone = await docker(cluster.env, ['volume', 'inspect', 'front-a']);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /no such volume/);
});
