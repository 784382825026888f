/**
 * User-namespace ID ranges (issue 5, "Isolation on the host"), through tenants' docker CLIs
 * over mutual TLS: root in a tenant's container is the first uid of the tenant's range on the
 * host, different for every tenant; the operator's containers stay host root. Files a
 * tenant's root makes in volumes are the shifted uid's on the host, while what leaves the
 * container as an image (commit, build) or an archive (cp) carries the ids the image sees.
 */
import assert from 'node:assert/strict';
import { chmod, chown, lstat, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tar from 'tar-stream';
import { createReadStream } from 'node:fs';
import { docker, dockerOk } from '../support/docker-cli.js';
import { freePort, startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

/** Uid, gid lines of /proc/PID/status: [real, effective, saved, fs]. */
async function hostIds(pid: number): Promise<{ uid: number[]; gid: number[] }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number[] => (new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)?.[1] ?? '').trim().split(/\s+/).map(Number);
  return { uid: field('Uid'), gid: field('Gid') };
}

/** Every member of every layer of a `docker save` tarball: name, uid, gid, by layer. */
async function layerMembers(saveTar: string): Promise<{ name: string; uid: number; gid: number }[][]> {
  const layers: { name: string; uid: number; gid: number }[][] = [];
  const outer = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    outer.on('entry', (header, stream, next) => {
      if (header.type !== 'file' || !/(layer\.tar|blobs\/sha256\/[0-9a-f]{64})$/.test(header.name)) {
        stream.resume();
        stream.on('end', next);
        return;
      }
      const inner = tar.extract();
      const members: { name: string; uid: number; gid: number }[] = [];
      inner.on('entry', (h, s, n) => {
        members.push({ name: h.name, uid: h.uid ?? -1, gid: h.gid ?? -1 });
        s.resume();
        s.on('end', n);
      });
      inner.on('finish', () => {
        layers.push(members);
        next();
      });
      // A blob that is not a tar (config, manifest) ends the inner parser with an error: skip it.
      inner.on('error', () => next());
      stream.pipe(inner);
    });
    outer.on('finish', resolve);
    outer.on('error', reject);
  });
  createReadStream(saveTar).pipe(outer);
  await done;
  return layers;
}

describe('user-namespace ID ranges of tenants', () => {
  let t: TenantBerth;
  let acme: NodeJS.ProcessEnv;
  let umbrella: NodeJS.ProcessEnv;
  let acmeBase: number;
  let umbrellaBase: number;
  let work: string;

  const rangeOf = async (name: string): Promise<{ Base: number; Size: number }> =>
    (JSON.parse(await t.berthOk(['tenant', 'inspect', name])) as { UsernsRange: { Base: number; Size: number } }).UsernsRange;

  before(async () => {
    t = await startTenantBerth();
    work = await mkdtemp(join(tmpdir(), 'berth-userns-'));
    acme = await t.createTenant('acme');
    umbrella = await t.createTenant('umbrella');
    const image = await busyboxImageTar();
    for (const env of [acme, umbrella, t.berth.env]) await dockerOk(env, ['load', '-i', image]);
    acmeBase = (await rangeOf('acme')).Base;
    umbrellaBase = (await rangeOf('umbrella')).Base;
  });
  after(async () => {
    await t?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('tenants get disjoint ranges of 65536 ids above the base', async () => {
    const a = await rangeOf('acme');
    const u = await rangeOf('umbrella');
    assert.equal(a.Size, 65536);
    assert.equal(u.Size, 65536);
    assert.ok(a.Base >= 2 ** 20, `acme's base ${a.Base} is above 2^20`);
    assert.ok(a.Base + a.Size <= u.Base || u.Base + u.Size <= a.Base, 'ranges do not overlap');
  });

  test('root in a tenant container is 0 inside and the tenant base uid on the host', async () => {
    const pids: Record<string, number> = {};
    for (const [who, env] of [['acme', acme], ['umbrella', umbrella], ['operator', t.berth.env]] as const) {
      const id = (await dockerOk(env, ['run', '-d', BUSYBOX_IMAGE, 'sleep', '60'])).trim();
      assert.equal(await dockerOk(env, ['exec', id, 'id', '-u']), '0\n', `${who}: id -u inside`);
      pids[who] = Number((await dockerOk(env, ['inspect', '-f', '{{.State.Pid}}', id])).trim());
      // An exec'd process is shifted as well.
      const execPid = Number((await dockerOk(env, ['exec', id, 'sh', '-c', 'echo $$; cat /proc/self/uid_map >&2'])).trim());
      assert.ok(execPid > 0);
    }
    const acmeIds = await hostIds(pids.acme!);
    const umbrellaIds = await hostIds(pids.umbrella!);
    const operatorIds = await hostIds(pids.operator!);
    assert.deepEqual(acmeIds.uid, [acmeBase, acmeBase, acmeBase, acmeBase]);
    assert.deepEqual(acmeIds.gid, [acmeBase, acmeBase, acmeBase, acmeBase]);
    assert.deepEqual(umbrellaIds.uid, [umbrellaBase, umbrellaBase, umbrellaBase, umbrellaBase]);
    assert.notEqual(acmeBase, umbrellaBase);
    // The operator's containers run as dockerd's do without --userns-remap.
    assert.deepEqual(operatorIds.uid, [0, 0, 0, 0]);
    for (const env of [acme, umbrella, t.berth.env]) {
      const ids = (await dockerOk(env, ['ps', '-q'])).trim().split('\n').filter(Boolean);
      await dockerOk(env, ['rm', '-f', ...ids]);
    }
  });
});
