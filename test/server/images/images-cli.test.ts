/**
 * The image routes driven by the real docker CLI. The app here is the images plugin alone
 * behind the same error handler and body parsing as the Docker API server, plus a minimal
 * /_ping for the CLI's version negotiation, so this proves the image API without depending
 * on the rest of `berth up`. (images-berth.test.ts runs the same commands against `berth up`.)
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import Fastify, { type FastifyInstance } from 'fastify';
import { OPERATOR_TENANT } from '../../../src/common/context.js';
import '../../../src/server/docker-api/auth.js';
import { pino } from 'pino';
import { ImageService } from '../../../src/server/images/image-service.js';
import { imageRoutes } from '../../../src/server/docker-api/images.js';
import { dockerErrorHandler } from '../../../src/server/docker-api/errors.js';
import { API_VERSION_MAX, splitVersionPrefix } from '../../../src/server/docker-api/version.js';
import { SqliteStore } from '../../../src/server/store/sqlite/sqlite-store.js';
import { docker, dockerEnv, dockerOk } from '../../support/docker-cli.js';
import { BUSYBOX_IMAGE, DEBIAN_IMAGE, busyboxImageTar, debianImageTar } from '../../support/test-images.js';
import { startDockerd } from '../../support/dockerd-harness.js';

const run = promisify(execFile);

let dir: string;
let app: FastifyInstance;
let store: SqliteStore;
let env: NodeJS.ProcessEnv;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-imgcli-'));
  store = new SqliteStore(join(dir, 'berth.db'));
  const images = new ImageService({
    store,
    dataRoot: join(dir, 'data'),
    logger: pino({ level: 'silent' }),
    events: { publish: () => undefined },
    usage: { containersUsing: async () => [] },
  });
  app = Fastify({ rewriteUrl: (req) => splitVersionPrefix(req.url ?? '/').path, routerOptions: { maxParamLength: 1024 } });
  app.decorateRequest('apiVersion', API_VERSION_MAX);
  // What the auth hook does for the local socket: the operator's scope.
  app.decorateRequest('tenant', OPERATOR_TENANT);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('Api-Version', API_VERSION_MAX);
    const { version } = splitVersionPrefix(request.originalUrl);
    if (version !== undefined) request.apiVersion = version;
  });
  app.removeContentTypeParser('application/json');
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
  app.setErrorHandler(dockerErrorHandler);
  app.get('/_ping', async (_req, reply) => reply.type('text/plain').send('OK'));
  await app.register(imageRoutes, { services: { images } });
  const socket = join(dir, 's.sock');
  await app.listen({ path: socket });
  await writeFile(join(dir, 'config.json'), '{}');
  env = dockerEnv(`unix://${socket}`, dir);
});

after(async () => {
  await app?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

test('docker load, images, inspect, tag, history, save, rmi, import, prune', async () => {
  const archive = await busyboxImageTar();
  assert.equal((await dockerOk(env, ['load', '-i', archive])).trim(), `Loaded image: ${BUSYBOX_IMAGE}`);
  assert.equal((await dockerOk(env, ['load'], { input: await readFile(archive) })).trim(), `Loaded image: ${BUSYBOX_IMAGE}`);
  const id = (await dockerOk(env, ['image', 'inspect', '--format', '{{.Id}}', BUSYBOX_IMAGE])).trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);

  await dockerOk(env, ['tag', BUSYBOX_IMAGE, 'localhost:5000/team/app:v1']);
  const listed = await dockerOk(env, ['images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}']);
  assert.deepEqual(listed.trim().split('\n').sort(), [`${id.slice(7, 19)} ${BUSYBOX_IMAGE}`, `${id.slice(7, 19)} localhost:5000/team/app:v1`]);
  assert.equal((await dockerOk(env, ['image', 'inspect', '--format', '{{json .Config.Cmd}} {{.Os}}', 'localhost:5000/team/app:v1'])).trim(), '["sh"] linux');
  assert.match(await dockerOk(env, ['history', BUSYBOX_IMAGE]), /berth test image: busybox-static/);

  const missing = await docker(env, ['image', 'inspect', 'nosuch']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /No such image: nosuch/);
  const badRmi = await docker(env, ['rmi', 'nosuch']);
  assert.match(badRmi.stderr, /No such image: nosuch:latest/);

  // save → load into the same daemon after removing: identical id.
  const saved = join(dir, 'saved.tar');
  await dockerOk(env, ['save', '-o', saved, BUSYBOX_IMAGE]);
  const { stdout: members } = await run('tar', ['-tf', saved]);
  assert.ok(members.includes('manifest.json') && members.includes('index.json'));
  const rmi = await dockerOk(env, ['rmi', '-f', id.slice(7, 19)]);
  assert.match(rmi, /Untagged: localhost:5000\/team\/app:v1/);
  assert.match(rmi, new RegExp(`Deleted: ${id}`));
  assert.equal((await dockerOk(env, ['images', '-q'])).trim(), '');
  await dockerOk(env, ['load', '-i', saved]);
  assert.equal((await dockerOk(env, ['image', 'inspect', '--format', '{{.Id}}', BUSYBOX_IMAGE])).trim(), id);

  // import with --change and -m, from stdin
  const rootfsDir = join(dir, 'rootfs');
  await run('mkdir', ['-p', join(rootfsDir, 'etc')]);
  await writeFile(join(rootfsDir, 'etc', 'hello'), 'hi\n');
  const rootfsTar = join(dir, 'rootfs.tar');
  await run('tar', ['-C', rootfsDir, '-cf', rootfsTar, '.']);
  const importedId = (
    await dockerOk(env, ['import', '-c', 'CMD ["/bin/sh"]', '-c', 'ENV A=b', '-c', 'WORKDIR /etc', '-c', 'EXPOSE 80/udp', '-m', 'imported in a test', '-', 'imported:v2'], {
      input: await readFile(rootfsTar),
    })
  ).trim();
  assert.match(importedId, /^sha256:[0-9a-f]{64}$/);
  const fmt = '{{json .Config.Cmd}} {{json .Config.Env}} {{.Config.WorkingDir}} {{json .Config.ExposedPorts}} {{.Comment}}';
  assert.equal((await dockerOk(env, ['image', 'inspect', '--format', fmt, 'imported:v2'])).trim(), '["/bin/sh"] ["A=b"] /etc {"80/udp":{}} imported in a test');

  // A tag moved away leaves a dangling image; prune removes only that.
  await dockerOk(env, ['tag', BUSYBOX_IMAGE, 'imported:v2']);
  assert.equal((await dockerOk(env, ['images', '--filter', 'dangling=true', '-q', '--no-trunc'])).trim(), importedId);
  const pruned = await dockerOk(env, ['image', 'prune', '-f']);
  assert.match(pruned, new RegExp(`deleted: ${importedId}`));
  assert.deepEqual((await dockerOk(env, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).trim().split('\n').sort(), [BUSYBOX_IMAGE, 'imported:v2']);
  const pullish = await docker(env, ['pull', 'alpine']);
  assert.notEqual(pullish.code, 0);
});

test('the same archives give the same ids and listings on Berth and on dockerd 20.10, both ways', async () => {
  const dockerd = await startDockerd();
  try {
    const format = ['images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'];
    for (const archive of [await busyboxImageTar(), await debianImageTar()]) {
      await dockerOk(env, ['load', '-i', archive]);
      await dockerOk(dockerd.env, ['load', '-i', archive]);
    }
    const listing = async (e: NodeJS.ProcessEnv): Promise<string[]> => (await dockerOk(e, format)).trim().split('\n').sort();
    const ours = await listing(env);
    assert.deepEqual(ours.filter((l) => /berth-test/.test(l)), (await listing(dockerd.env)).filter((l) => /berth-test/.test(l)));
    const inspect = ['image', 'inspect', '--format', '{{.Id}} {{json .RootFS.Layers}} {{json .Config}}'];
    for (const image of [BUSYBOX_IMAGE, DEBIAN_IMAGE]) {
      assert.equal(await dockerOk(env, [...inspect, image]), await dockerOk(dockerd.env, [...inspect, image]).then((s) => s), image);
    }

    // dockerd's own `docker save` (legacy format) loads into Berth with the same id ...
    const fromDockerd = join(dir, 'from-dockerd.tar');
    await dockerOk(dockerd.env, ['tag', BUSYBOX_IMAGE, 'roundtrip:dockerd']);
    await dockerOk(dockerd.env, ['save', '-o', fromDockerd, 'roundtrip:dockerd']);
    await dockerOk(env, ['load', '-i', fromDockerd]);
    // ... and Berth's save loads into dockerd with the same id.
    const fromBerth = join(dir, 'from-berth.tar');
    await dockerOk(env, ['tag', DEBIAN_IMAGE, 'roundtrip:berth']);
    await dockerOk(env, ['save', '-o', fromBerth, 'roundtrip:berth']);
    await dockerOk(dockerd.env, ['load', '-i', fromBerth]);
    const ids = async (e: NodeJS.ProcessEnv, ref: string): Promise<string> => (await dockerOk(e, ['image', 'inspect', '--format', '{{.Id}}', ref])).trim();
    assert.equal(await ids(env, 'roundtrip:dockerd'), await ids(dockerd.env, BUSYBOX_IMAGE));
    assert.equal(await ids(dockerd.env, 'roundtrip:berth'), await ids(env, DEBIAN_IMAGE));
    // The debian image runs on dockerd after the trip through Berth.
    assert.equal((await dockerOk(dockerd.env, ['run', '--rm', '--network', 'none', 'roundtrip:berth', 'cat', '/etc/debian_version'])).trim().split('.')[0], '12');
  } finally {
    await dockerd.stop();
  }
});
