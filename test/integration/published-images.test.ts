/**
 * Operator-published base images (issue 5): the operator publishes one of its images with the
 * berth CLI; every tenant can then run, create, inspect, list and build FROM it with the plain
 * docker CLI over mutual TLS, but cannot remove, push or retag over it. A tenant's own image of
 * the same name shadows it for that tenant. Layers are shared on disk and each container writes
 * only to its own upper layer. Unpublishing refuses new containers and keeps running ones; the
 * operator cannot delete an image tenants' containers still run. Publication survives SIGKILL.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, realpath, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tenantCaller } from '../support/api-caller.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

const BASE = 'berth-base/tools:1';

describe('published base images', () => {
  let t: TenantBerth;
  let operator: NodeJS.ProcessEnv;
  let acme: NodeJS.ProcessEnv;
  let globex: NodeJS.ProcessEnv;
  let baseId: string;

  /** A directory with a Dockerfile, for docker build. */
  const context = async (dockerfile: string): Promise<string> => {
    const dir = await mkdtemp(join(t.work, 'ctx-'));
    await writeFile(join(dir, 'Dockerfile'), dockerfile);
    return dir;
  };
  const run = (env: NodeJS.ProcessEnv, image: string, ...cmd: string[]): Promise<string> => dockerOk(env, ['run', '--rm', '--pull', 'never', image, ...cmd]);
  const repoTags = async (env: NodeJS.ProcessEnv): Promise<string[]> =>
    (await dockerOk(env, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).split('\n').filter(Boolean).sort();

  before(async () => {
    t = await startTenantBerth();
    operator = t.berth.env;
    acme = await t.createTenant('acme');
    globex = await t.createTenant('globex');
    await dockerOk(operator, ['load', '-i', await busyboxImageTar()]);
    await dockerOk(operator, ['build', '-q', '-t', BASE, await context(`FROM ${BUSYBOX_IMAGE}\nRUN echo base > /etc/base-release\nLABEL org.example.base=tools\n`)]);
    baseId = (await dockerOk(operator, ['image', 'inspect', '--format', '{{.Id}}', BASE])).trim();
  });
  after(async () => {
    await t?.stop();
  });

  test('before publishing, tenants do not see the image; the admin API is the operator\'s alone', async () => {
    assert.match((await docker(acme, ['image', 'inspect', BASE])).stderr, /No such image: berth-base\/tools:1/);
    assert.match((await docker(acme, ['create', '--pull', 'never', BASE])).stderr, /No such image: berth-base\/tools:1/);
    assert.deepEqual(await repoTags(acme), []);
    const tenantTry = await (await tenantCaller('acme', t.port, join(t.work, 'acme-certs'))).call('POST', '/berth/v1/images/publish', { body: { Image: baseId } });
    assert.equal(tenantTry.status, 403);
    assert.match(tenantTry.body, /the admin API is served to the operator only/);
    // Bad operator input: a clear error, nothing published.
    assert.match((await t.berthCli(['image', 'publish', 'no/such:image'])).stderr, /No such image: no\/such:image/);
    assert.match((await t.berthCli(['image', 'unpublish', BASE])).stderr, /image berth-base\/tools:1 is not published/);
    assert.equal((await t.berthOk(['image', 'ls', '-q'])).trim(), '');
  });

  test('after publishing, every tenant can run, create, inspect, list and build FROM it', async () => {
    assert.match(await t.berthOk(['image', 'publish', BASE]), /^published: berth-base\/tools:1 \(sha256:/);
    assert.match(await t.berthOk(['image', 'publish', baseId]), /^already published/);
    assert.match(await t.berthOk(['image', 'ls']), /berth-base\/tools:1/);
    for (const env of [acme, globex]) {
      assert.equal(await run(env, BASE, 'cat', '/etc/base-release'), 'base\n');
      assert.deepEqual(await repoTags(env), [BASE]);
      assert.equal((await dockerOk(env, ['image', 'inspect', '--format', '{{.Id}} {{index .Config.Labels "org.example.base"}}', BASE])).trim(), `${baseId} tools`);
      assert.match(await dockerOk(env, ['history', '--no-trunc', BASE]), /echo base > \/etc\/base-release/);
      // By id and by short id too, as with any image.
      assert.equal(await run(env, baseId.slice(7, 19), 'cat', '/etc/base-release'), 'base\n');
    }
    await dockerOk(acme, ['build', '-q', '-t', 'acme/app:1', await context(`FROM ${BASE}\nRUN cat /etc/base-release > /copied\n`)]);
    assert.equal(await run(acme, 'acme/app:1', 'cat', '/copied'), 'base\n');
    // acme's own image is acme's alone; the base image stays the operator's.
    assert.deepEqual(await repoTags(globex), [BASE]);
    assert.deepEqual((await repoTags(operator)).filter((r) => r !== BUSYBOX_IMAGE), [BASE]);

    // system df counts what the tenant owns: its built image, not the published one.
    const df = JSON.parse(
      (await (await tenantCaller('acme', t.port, join(t.work, 'acme-certs'))).call('GET', '/system/df')).body,
    ) as { Images: { Id: string; RepoTags: string[] }[] };
    assert.deepEqual(
      df.Images.map((i) => i.RepoTags),
      [['acme/app:1']],
    );
    const globexDf = (await dockerOk(globex, ['system', 'df', '--format', '{{.Type}} {{.TotalCount}}'])).split('\n');
    assert.ok(globexDf.includes('Images 0'), globexDf.join('\n'));
  });

  test('a tenant cannot remove, push or retag over it; its own tag is its own; its own name shadows', async () => {
    for (const args of [['rmi', BASE], ['rmi', '-f', BASE], ['rmi', baseId]]) {
      const refused = await docker(acme, args);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /it is a base image published by the operator, which a tenant cannot remove/, refused.stderr);
    }
    const pushed = await docker(acme, ['push', BASE]);
    assert.notEqual(pushed.code, 0);
    assert.match(pushed.stderr, /berth-base\/tools:1 is a base image published by the operator: a tenant cannot push it/);

    // docker tag makes acme's own reference (and acme's own record of the image).
    await dockerOk(acme, ['tag', BASE, 'acme/tools:mine']);
    assert.deepEqual(await repoTags(acme), ['acme/app:1', 'acme/tools:mine', BASE].sort());
    assert.equal(await run(acme, 'acme/tools:mine', 'cat', '/etc/base-release'), 'base\n');
    assert.deepEqual(await repoTags(globex), [BASE]);
    assert.equal((await dockerOk(operator, ['image', 'inspect', '--format', '{{json .RepoTags}}', BASE])).trim(), JSON.stringify([BASE]));

    // acme's own image under the operator's name shadows it, for acme only.
    await dockerOk(acme, ['load', '-i', await busyboxImageTar()]);
    await dockerOk(acme, ['tag', BUSYBOX_IMAGE, BASE]);
    assert.notEqual((await docker(acme, ['run', '--rm', '--pull', 'never', BASE, 'cat', '/etc/base-release'])).code, 0);
    assert.notEqual((await dockerOk(acme, ['image', 'inspect', '--format', '{{.Id}}', BASE])).trim(), baseId);
    assert.equal(await run(globex, BASE, 'cat', '/etc/base-release'), 'base\n');
    // Removing acme's own tag shows the published one again.
    assert.match(await dockerOk(acme, ['rmi', BASE]), /^Untagged: berth-base\/tools:1$/m);
    assert.equal(await run(acme, BASE, 'cat', '/etc/base-release'), 'base\n');
    assert.equal((await dockerOk(operator, ['image', 'inspect', '--format', '{{.Id}} {{json .RepoTags}}', BASE])).trim(), `${baseId} ${JSON.stringify([BASE])}`);
  });

  test('layers are shared on disk; each container writes only to its own upper layer', async () => {
    const layersRoot = join(t.berth.dataRoot, 'images', 'layers');
    const layerDirs = async (): Promise<string[]> => (await readdir(layersRoot)).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
    const layersBefore = await layerDirs();
    await dockerOk(acme, ['run', '-d', '--pull', 'never', '--name', 'writer', BASE, 'sh', '-c', 'echo acme > /etc/base-release; sleep 600']);
    await dockerOk(globex, ['run', '-d', '--pull', 'never', '--name', 'reader', BASE, 'sleep', '600']);
    await waitFor(async () => (await dockerOk(acme, ['exec', 'writer', 'cat', '/etc/base-release'])) === 'acme\n');
    assert.equal(await dockerOk(globex, ['exec', 'reader', 'cat', '/etc/base-release']), 'base\n');
    assert.equal(await run(operator, BASE, 'cat', '/etc/base-release'), 'base\n');
    assert.deepEqual(await layerDirs(), layersBefore, 'running a published image unpacks no layer again');

    // Both containers stack the image's own layer directories; the write is in acme's upper.
    const image = JSON.parse(await dockerOk(operator, ['image', 'inspect', '--format', '{{json .GraphDriver.Data}}', BASE])) as { UpperDir: string; LowerDir?: string };
    const imageDirs = [image.UpperDir, ...(image.LowerDir ? image.LowerDir.split(':') : [])];
    assert.equal(await readFile(join(image.UpperDir, 'etc/base-release'), 'utf8'), 'base\n');
    for (const [env, name] of [[acme, 'writer'], [globex, 'reader']] as const) {
      const upper = (await dockerOk(env, ['inspect', '--format', '{{.GraphDriver.Data.UpperDir}}', name])).trim();
      const lowers = (await readFile(join(dirname(upper), 'lower'), 'utf8')).split('\n').filter(Boolean);
      const resolved = await Promise.all(lowers.map((l) => realpath(resolve(layersRoot, l))));
      assert.deepEqual(resolved, await Promise.all(imageDirs.map((d) => realpath(d))), `${name} stacks the published image's layers`);
      if (name === 'writer') assert.equal(await readFile(join(upper, 'etc/base-release'), 'utf8'), 'acme\n');
      else await assert.rejects(readFile(join(upper, 'etc/base-release')), /ENOENT/);
    }
    // docker commit of a container of a published image: acme's own image, on the shared layers.
    await dockerOk(acme, ['commit', 'writer', 'acme/committed:1']);
    assert.equal(await run(acme, 'acme/committed:1', 'cat', '/etc/base-release'), 'acme\n');
    assert.equal(await run(globex, BASE, 'cat', '/etc/base-release'), 'base\n');
    assert.match((await docker(globex, ['image', 'inspect', 'acme/committed:1'])).stderr, /No such image/);
  });

  test('unpublishing refuses new containers, keeps running ones; the operator cannot delete what tenants run', async () => {
    const published = await docker(operator, ['rmi', BASE]);
    assert.notEqual(published.code, 0);
    assert.match(published.stderr, /image is published to tenants \(berth image unpublish it first\)/);
    // Nor does the operator's prune take it, though no container of the operator's uses it.
    await dockerOk(operator, ['image', 'prune', '-a', '-f']);
    assert.equal((await dockerOk(operator, ['image', 'inspect', '--format', '{{.Id}}', BASE])).trim(), baseId);

    assert.match(await t.berthOk(['image', 'unpublish', BASE]), /^unpublished: berth-base\/tools:1/);
    assert.equal((await t.berthOk(['image', 'ls', '-q'])).trim(), '');
    assert.match((await docker(globex, ['create', '--pull', 'never', BASE])).stderr, /No such image: berth-base\/tools:1/);
    assert.match((await docker(globex, ['image', 'inspect', BASE])).stderr, /No such image/);
    assert.deepEqual(await repoTags(globex), []);
    // Running containers keep running, and restart: their layers are still here.
    const startedAt = (await dockerOk(globex, ['inspect', '--format', '{{.State.StartedAt}}', 'reader'])).trim();
    assert.equal((await dockerOk(globex, ['inspect', '--format', '{{.State.Running}}', 'reader'])).trim(), 'true');
    await dockerOk(globex, ['restart', '-t', '0', 'reader']);
    assert.notEqual((await dockerOk(globex, ['inspect', '--format', '{{.State.StartedAt}}', 'reader'])).trim(), startedAt);
    assert.equal(await dockerOk(globex, ['exec', 'reader', 'cat', '/etc/base-release']), 'base\n');
    // acme tagged it, so acme has its own record: still usable by acme's own name.
    assert.equal(await run(acme, 'acme/tools:mine', 'cat', '/etc/base-release'), 'base\n');

    // globex's container runs it with no record of globex's own: the operator cannot delete it.
    for (const args of [['rmi', BASE], ['rmi', '-f', baseId]]) {
      const refused = await docker(operator, args);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /image is being used by 1 container\(s\) of tenants/, refused.stderr);
    }
    assert.equal((await dockerOk(operator, ['image', 'inspect', '--format', '{{json .RepoTags}}', BASE])).trim(), JSON.stringify([BASE]));
    await dockerOk(globex, ['rm', '-f', 'reader']);
    assert.match(await dockerOk(operator, ['rmi', BASE]), /Deleted: sha256:/);
    // acme's own record keeps the layers for acme's container and its tag.
    assert.equal(await dockerOk(acme, ['exec', 'writer', 'cat', '/etc/base-release']), 'acme\n');
    assert.equal(await run(acme, 'acme/tools:mine', 'cat', '/etc/base-release'), 'base\n');
    await dockerOk(acme, ['rm', '-f', 'writer']);
  });

  test('publication survives a SIGKILL of Berth', async () => {
    // The operator's prune above took its busybox.
    await dockerOk(operator, ['load', '-i', await busyboxImageTar()]);
    await dockerOk(operator, ['build', '-q', '-t', 'berth-base/kept:1', await context(`FROM ${BUSYBOX_IMAGE}\nRUN echo kept > /etc/kept\n`)]);
    await dockerOk(operator, ['build', '-q', '-t', 'berth-base/withdrawn:1', await context(`FROM ${BUSYBOX_IMAGE}\nRUN echo withdrawn > /etc/withdrawn\n`)]);
    await t.berthOk(['image', 'publish', 'berth-base/kept:1']);
    await t.berthOk(['image', 'publish', 'berth-base/withdrawn:1']);
    await t.berthOk(['image', 'unpublish', 'berth-base/withdrawn:1']);
    await t.berth.kill();
    await t.berth.restart();
    assert.equal(await run(globex, 'berth-base/kept:1', 'cat', '/etc/kept'), 'kept\n');
    assert.match((await docker(globex, ['create', '--pull', 'never', 'berth-base/withdrawn:1'])).stderr, /No such image/);
    assert.match(await t.berthOk(['image', 'ls']), /berth-base\/kept:1/);
    assert.doesNotMatch(await t.berthOk(['image', 'ls']), /withdrawn/);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
