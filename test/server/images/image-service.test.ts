import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import tar from 'tar-stream';
import { operatorContext, type RequestContext } from '../../../src/common/context.js';
import { isKind } from '../../../src/common/errors.js';
import { sha256Digest } from '../../../src/agent/images/digest.js';
import { ImageService } from '../../../src/server/images/image-service.js';
import { SqliteStore } from '../../../src/server/store/sqlite/sqlite-store.js';
import type { DockerEvent } from '../../../src/server/events/types.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../../support/test-images.js';

async function readTar(source: Readable): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  source.pipe(extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    if (entry.header.type === 'file') files.set(entry.header.name, Buffer.concat(chunks));
  }
  return files;
}

async function writeTar(files: [string, Buffer][]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const [name, data] of files) {
    await new Promise<void>((resolve, reject) => pack.entry({ name, mtime: new Date(0) }, data, (e) => (e ? reject(e) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

interface Fixture {
  dir: string;
  store: SqliteStore;
  service: ImageService;
  events: Pick<DockerEvent, 'Type' | 'Action' | 'Actor'>[];
  using: Map<string, { id: string; running: boolean }[]>;
}

const fixtures: Fixture[] = [];
async function fixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-images-'));
  const store = new SqliteStore(join(dir, 'berth.db'));
  const events: Fixture['events'] = [];
  const using = new Map<string, { id: string; running: boolean }[]>();
  const service = new ImageService({
    store,
    dataRoot: dir,
    logger: pino({ level: 'silent' }),
    events: { publish: (_ctx, event) => events.push(event) },
    usage: { containersUsing: async (_ctx, imageId) => using.get(imageId) ?? [] },
  });
  const f = { dir, store, service, events, using };
  fixtures.push(f);
  return f;
}

let busybox: Map<string, Buffer>;
let busyboxId: string;
let busyboxConfig: Buffer;
let busyboxLayer: Buffer;
const ctx = operatorContext('test');
const other: RequestContext = { tenant: 'other', requestId: 'test' };

before(async () => {
  busybox = await readTar(createReadStream(await busyboxImageTar()));
  const manifest = JSON.parse(busybox.get('manifest.json')!.toString()) as { Config: string; Layers: string[] }[];
  busyboxConfig = busybox.get(manifest[0]!.Config)!;
  busyboxLayer = busybox.get(manifest[0]!.Layers[0]!)!;
  busyboxId = sha256Digest(busyboxConfig);
});

after(async () => {
  for (const f of fixtures) {
    await f.store.close();
    await rm(f.dir, { recursive: true, force: true });
  }
});

async function loadBusybox(f: Fixture, c: RequestContext = ctx): Promise<string[]> {
  return f.service.load(c, createReadStream(await busyboxImageTar()));
}

test('load of a Docker 25 archive keeps the config bytes: the id is their digest', async () => {
  const f = await fixture();
  assert.deepEqual(await loadBusybox(f), [`Loaded image: ${BUSYBOX_IMAGE}`]);
  const image = await f.service.inspect(ctx, BUSYBOX_IMAGE);
  assert.equal(image.id, busyboxId);
  assert.deepEqual(image.repoTags, [BUSYBOX_IMAGE]);
  assert.deepEqual(image.diffIds, [sha256Digest(busyboxLayer)]);
  assert.ok(image.size > 1_000_000);
  assert.deepEqual(image.config.config?.Cmd, ['sh']);
  // Every way of naming it resolves to it.
  for (const ref of [busyboxId, busyboxId.slice(7), busyboxId.slice(7, 19), 'berth-test/busybox', 'docker.io/berth-test/busybox:latest']) {
    assert.equal((await f.service.resolve(ctx, ref)).id, busyboxId, ref);
  }
  await assert.rejects(f.service.resolve(ctx, 'nosuch'), (e) => isKind(e, 'NotFound') && e.message === 'No such image: nosuch:latest');
  // Loading again changes nothing.
  assert.deepEqual(await loadBusybox(f), [`Loaded image: ${BUSYBOX_IMAGE}`]);
  assert.equal((await f.service.list(ctx)).length, 1);
  assert.ok(f.events.some((e) => e.Action === 'load' && e.Actor.ID === busyboxId));
  assert.ok(f.events.some((e) => e.Action === 'tag' && e.Actor.Attributes.name === BUSYBOX_IMAGE));
});

test('load of a legacy archive with a gzipped layer gives the same id; tenants are separate', async () => {
  const f = await fixture();
  const hex = busyboxId.slice(7);
  const legacy = await writeTar([
    [`${hex}.json`, busyboxConfig],
    ['abc/layer.tar', gzipSync(busyboxLayer)],
    ['manifest.json', Buffer.from(JSON.stringify([{ Config: `${hex}.json`, RepoTags: ['legacy:1'], Layers: ['abc/layer.tar'] }]))],
  ]);
  assert.deepEqual(await f.service.load(ctx, Readable.from([legacy])), ['Loaded image: legacy:1']);
  assert.equal((await f.service.resolve(ctx, 'legacy:1')).id, busyboxId);
  await assert.rejects(f.service.resolve(other, 'legacy:1'), (e) => isKind(e, 'NotFound'));
  await assert.rejects(f.service.resolve(other, busyboxId), (e) => isKind(e, 'NotFound'));
  // The other tenant loads the same image: layers are shared, records are not.
  await loadBusybox(f, other);
  assert.deepEqual((await f.service.list(other)).map((i) => i.repoTags), [[BUSYBOX_IMAGE]]);
  assert.deepEqual((await f.service.remove(ctx, 'legacy:1', { force: false, prune: true }))[0], { Untagged: 'legacy:1' });
  assert.equal((await f.service.list(ctx)).length, 0);
  // Still usable by the other tenant: its layer was kept.
  const [lower] = await f.service.layerPathsOf(busyboxId);
  assert.ok((await readdir(lower!)).includes('bin'));
});

test('a corrupt layer fails the load and leaves no record and no content', async () => {
  const f = await fixture();
  const hex = busyboxId.slice(7);
  const bad = await writeTar([
    [`${hex}.json`, busyboxConfig],
    ['abc/layer.tar', busyboxLayer.subarray(0, busyboxLayer.length - 1024)],
    ['manifest.json', Buffer.from(JSON.stringify([{ Config: `${hex}.json`, RepoTags: ['bad:1'], Layers: ['abc/layer.tar'] }]))],
  ]);
  await assert.rejects(f.service.load(ctx, Readable.from([bad])), (e) => isKind(e, 'InvalidArgument') && /digest mismatch/.test(e.message));
  assert.deepEqual(await f.service.list(ctx), []);
  assert.deepEqual(await readdir(join(f.dir, 'images/content/sha256')), []);
  assert.deepEqual(await readdir(join(f.dir, 'images/tmp')), []);
  await assert.rejects(f.service.load(ctx, Readable.from([await writeTar([['x', Buffer.from('y')]])])), /neither manifest.json nor index.json/);
});

test('tags move between images; the old one turns dangling; rmi follows dockerd rules', async () => {
  const f = await fixture();
  await loadBusybox(f);
  // A second image sharing the busybox layer.
  const config2 = JSON.parse(busyboxConfig.toString()) as { config: { Cmd: string[] } };
  config2.config.Cmd = ['echo', 'two'];
  const config2Bytes = Buffer.from(JSON.stringify(config2));
  const id2 = sha256Digest(config2Bytes);
  const hex2 = id2.slice(7);
  await f.service.load(
    ctx,
    Readable.from([
      await writeTar([
        [`${hex2}.json`, config2Bytes],
        ['l/layer.tar', busyboxLayer],
        ['manifest.json', Buffer.from(JSON.stringify([{ Config: `${hex2}.json`, RepoTags: ['two:latest'], Layers: ['l/layer.tar'] }]))],
      ]),
    ]),
  );
  await f.service.tag(ctx, 'two', 'app', 'v1');
  await f.service.tag(ctx, busyboxId, 'app', 'v1'); // moves app:v1 to busybox
  assert.deepEqual((await f.service.inspect(ctx, id2)).repoTags, ['two:latest']);
  assert.deepEqual((await f.service.inspect(ctx, busyboxId)).repoTags.sort(), ['app:v1', BUSYBOX_IMAGE]);
  await assert.rejects(f.service.tag(ctx, 'two', 'Bad'), /invalid reference format/);

  // By id with tags in two repositories: refused unless forced.
  await assert.rejects(f.service.remove(ctx, busyboxId.slice(7, 19), { force: false, prune: true }), (e) =>
    isKind(e, 'Conflict') && e.message === `conflict: unable to delete ${busyboxId.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`,
  );
  // A container uses "two": removing its only tag needs force; a running one blocks deletion.
  f.using.set(id2, [{ id: 'f'.repeat(64), running: true }]);
  await assert.rejects(f.service.remove(ctx, 'two', { force: false, prune: true }), (e) =>
    isKind(e, 'Conflict') &&
    e.message === `conflict: unable to remove repository reference "two" (must force) - container ffffffffffff is using its referenced image ${hex2.slice(0, 12)}`,
  );
  await assert.rejects(f.service.remove(ctx, id2, { force: true, prune: true }), /\(cannot be forced\) - image is being used by running container ffffffffffff/);
  assert.deepEqual(await f.service.remove(ctx, 'two', { force: true, prune: true }), [{ Untagged: 'two:latest' }]);
  assert.deepEqual((await f.service.list(ctx, { dangling: ['true'] })).map((i) => i.id), [id2]);
  // Prune skips images in use.
  assert.deepEqual((await f.service.prune(ctx, {})).ImagesDeleted, []);
  f.using.set(id2, [{ id: 'e'.repeat(64), running: false }]);
  await assert.rejects(f.service.remove(ctx, id2, { force: false, prune: true }), /\(must be forced\) - image is being used by stopped container eeeeeeeeeeee/);
  f.using.delete(id2);
  const pruned = await f.service.prune(ctx, {});
  assert.deepEqual(pruned.ImagesDeleted, [{ Deleted: id2 }], 'the shared layer stays: busybox uses it');
  const [lower] = await f.service.layerPathsOf(busyboxId);
  assert.ok((await readdir(lower!)).includes('bin'));

  const removed = await f.service.remove(ctx, busyboxId, { force: true, prune: true });
  assert.deepEqual(removed.slice(0, 2).map((i) => ('Untagged' in i ? i.Untagged : '')).sort(), ['app:v1', BUSYBOX_IMAGE]);
  assert.deepEqual(removed.slice(2), [{ Deleted: busyboxId }, { Deleted: sha256Digest(busyboxLayer) }]);
  assert.deepEqual(await readdir(join(f.dir, 'images/content/sha256')), []);
  assert.deepEqual((await readdir(join(f.dir, 'images/layers'))).filter((n) => n !== 'l'), []);
  await assert.rejects(f.service.remove(ctx, 'two', { force: false, prune: true }), /No such image: two:latest/);
});

test('save → load round trip keeps ids; import applies changes', async () => {
  const f = await fixture();
  await loadBusybox(f);
  await f.service.tag(ctx, BUSYBOX_IMAGE, 'copy', 'x');
  const archive = await f.service.save(ctx, ['berth-test/busybox', 'copy:x']);
  const chunks: Buffer[] = [];
  for await (const c of archive) chunks.push(c as Buffer);
  const saved = await readTar(Readable.from([Buffer.concat(chunks)]));
  const manifest = JSON.parse(saved.get('manifest.json')!.toString()) as { RepoTags: string[] }[];
  assert.deepEqual(manifest[0]!.RepoTags, [BUSYBOX_IMAGE, 'copy:x']);
  assert.ok(saved.has('index.json') && saved.has('oci-layout'));

  const g = await fixture();
  assert.deepEqual((await g.service.load(ctx, Readable.from([Buffer.concat(chunks)]))).sort(), ['Loaded image: berth-test/busybox:latest', 'Loaded image: copy:x']);
  assert.equal((await g.service.resolve(ctx, 'copy:x')).id, busyboxId);
  await assert.rejects(f.service.save(ctx, ['nosuch']), /No such image: nosuch:latest/);

  const rootfs = await writeTar([['hello.txt', Buffer.from('hi')]]);
  const id = await g.service.import(ctx, Readable.from([gzipSync(rootfs)]), {
    repo: 'imported',
    tag: 'v1',
    message: 'from a test',
    changes: ['CMD ["/hello"]', 'ENV A=1 B="two words"', 'WORKDIR /srv', 'EXPOSE 8080', 'LABEL team=berth', 'USER nobody', 'STOPSIGNAL SIGINT', 'VOLUME /data', 'ENTRYPOINT run me'],
  });
  const image = await g.service.inspect(ctx, 'imported:v1');
  assert.equal(image.id, id);
  assert.equal(image.config.comment, 'from a test');
  assert.deepEqual(image.diffIds, [sha256Digest(rootfs)]);
  assert.deepEqual(image.config.config, {
    Cmd: ['/hello'],
    Env: ['A=1', 'B=two words'],
    WorkingDir: '/srv',
    ExposedPorts: { '8080/tcp': {} },
    Labels: { team: 'berth' },
    User: 'nobody',
    StopSignal: 'SIGINT',
    Volumes: { '/data': {} },
    Entrypoint: ['/bin/sh', '-c', 'run me'],
  });
  assert.deepEqual((await g.service.list(ctx, { label: ['team=berth'] })).map((i) => i.id), [id]);
  assert.deepEqual((await g.service.list(ctx, { reference: ['imp*'] })).map((i) => i.id), [id]);
  await assert.rejects(g.service.list(ctx, { bogus: ['x'] }), /invalid filter 'bogus'/);
  await assert.rejects(g.service.import(ctx, Readable.from([rootfs]), { changes: ['RUN rm -rf /'] }), /run is not a valid change command/);
  const history = await g.service.history(ctx, 'imported:v1');
  assert.equal(history[0]!.Id, id);
  assert.equal(history[0]!.Comment, 'from a test');
});
