/**
 * The isolation matrix (issue 5): two tenants, A and B, and the operator. Each owner makes one
 * of everything (a running container with an exec session, a stopped container, an image of
 * its own, a volume, a user network the running container is on, a build cache entry). Then
 * every other caller sends every Docker API endpoint that takes an object, naming the owner's
 * objects by full id, short id and name, and the answer must be EXACTLY the answer for an
 * object that never existed: same status, same body once the name is substituted. Afterwards
 * nothing of the owner's changed (inspect of everything, the container still running since the
 * same StartedAt), and the prober's lists (ps -a, images, volumes, networks, events, df) hold
 * nothing of the owner's.
 *
 * Raw HTTPS (and the operator's raw socket) rather than the docker CLI, so endpoints the CLI
 * never sends, or only sends after checks of its own, are covered too.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { socketCaller, tenantCaller, type ApiAnswer, type ApiCaller } from '../support/api-caller.js';
import { dockerOk } from '../support/docker-cli.js';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';
import { tarOf } from '../support/tar-files.js';

/** How a probe names an object: every row is sent once per kind. */
type RefKind = 'id' | 'short' | 'name';
const KINDS: RefKind[] = ['id', 'short', 'name'];

/** One caller's objects, named in one way. */
interface Refs {
  /** the running container (with the exec session, on the network, using the volume) */
  c: string;
  /** the stopped container */
  s: string;
  /** the caller's own image (unique: committed from the stopped container) */
  i: string;
  /** the image's repository alone and its tag (for push) */
  repo: string;
  v: string;
  n: string;
  /** the exec session (ids only: exec sessions have no names) */
  e: string;
  /** the label value every object of the owner carries */
  l: string;
}

interface World {
  caller: ApiCaller;
  env: NodeJS.ProcessEnv;
  prefix: string;
  running: { id: string; name: string };
  stopped: { id: string; name: string };
  image: { id: string; repo: string; tag: string };
  volume: string;
  network: { id: string; name: string };
  exec: string;
  buildCacheIds: string[];
}

interface Prober {
  caller: ApiCaller;
  env: NodeJS.ProcessEnv;
  /** A network and a created container of the prober's own, for probes that need one. */
  network: string;
  container: string;
}

interface Row {
  what: string;
  method: string;
  path: (r: Refs) => string;
  body?: (r: Refs, p: Prober) => unknown;
  contentType?: string;
  timeoutMs?: number;
  /** Kinds this row is sent with (default all three). */
  kinds?: RefKind[];
  /** Changes the object it names (so the control run, on the owner's own objects, skips it). */
  mutates?: boolean;
  /** Answers the same whatever it names (a refused option): the control run skips it. */
  noControl?: boolean;
  /** Kinds whose form does not name the object even for its owner (the control run skips them). */
  notAReference?: RefKind[];
  /** Changes the prober's own state, so two calls cannot answer alike: sent once, not compared. */
  sendOnce?: boolean;
  /** For a create: start the created container too; the start's answer is what is compared. */
  thenStart?: boolean;
  /** Removes what the row made in the prober's own scope, so the next call starts alike. */
  cleanup?: (r: Refs, p: Prober) => Promise<unknown>;
}

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const q = (value: unknown): string => encodeURIComponent(typeof value === 'string' ? value : JSON.stringify(value));
const nowSeconds = (): number => Math.floor(Date.now() / 1000) + 1;


const ROWS: Row[] = [
  // ---- reads ------------------------------------------------------------------------------
  { what: 'container inspect', method: 'GET', path: (r) => `/containers/${r.c}/json` },
  { what: 'container inspect (stopped)', method: 'GET', path: (r) => `/containers/${r.s}/json?size=1` },
  { what: 'logs', method: 'GET', path: (r) => `/containers/${r.c}/logs?stdout=1&stderr=1&timestamps=1` },
  { what: 'top', method: 'GET', path: (r) => `/containers/${r.c}/top` },
  { what: 'stats', method: 'GET', path: (r) => `/containers/${r.c}/stats?stream=0` },
  { what: 'stats one-shot', method: 'GET', path: (r) => `/containers/${r.c}/stats?stream=0&one-shot=1` },
  { what: 'changes', method: 'GET', path: (r) => `/containers/${r.s}/changes` },
  { what: 'export', method: 'GET', path: (r) => `/containers/${r.s}/export` },
  { what: 'archive GET', method: 'GET', path: (r) => `/containers/${r.c}/archive?path=/etc/hostname` },
  { what: 'archive HEAD', method: 'HEAD', path: (r) => `/containers/${r.c}/archive?path=/etc/hostname` },
  { what: 'attach (logs only)', method: 'POST', path: (r) => `/containers/${r.s}/attach?stream=0&logs=1&stdout=1&stderr=1` },
  { what: 'attach websocket', method: 'GET', path: (r) => `/containers/${r.c}/attach/ws?stream=1`, noControl: true },
  { what: 'wait', method: 'POST', path: (r) => `/containers/${r.c}/wait?condition=not-running`, timeoutMs: 3000 },
  { what: 'wait next-exit', method: 'POST', path: (r) => `/containers/${r.s}/wait?condition=next-exit`, timeoutMs: 3000 },
  { what: 'image inspect', method: 'GET', path: (r) => `/images/${r.i}/json` },
  { what: 'image history', method: 'GET', path: (r) => `/images/${r.i}/history` },
  { what: 'image get', method: 'GET', path: (r) => `/images/${r.i}/get` },
  { what: 'image get (names=)', method: 'GET', path: (r) => `/images/get?names=${q(r.i)}` },
  { what: 'exec inspect', method: 'GET', path: (r) => `/exec/${r.e}/json`, notAReference: ['short'] },
  { what: 'volume inspect', method: 'GET', path: (r) => `/volumes/${r.v}` },
  { what: 'network inspect', method: 'GET', path: (r) => `/networks/${r.n}` },
  { what: 'network inspect verbose', method: 'GET', path: (r) => `/networks/${r.n}?verbose=true&scope=local` },
  // ---- events and lists filtered by the owner's objects -----------------------------------
  { what: 'events by container', method: 'GET', path: (r) => `/events?since=0&until=${nowSeconds()}&filters=${q({ container: [r.c] })}` },
  { what: 'events by image', method: 'GET', path: (r) => `/events?since=0&until=${nowSeconds()}&filters=${q({ image: [r.i] })}`, notAReference: ['short'] },
  { what: 'events by volume', method: 'GET', path: (r) => `/events?since=0&until=${nowSeconds()}&filters=${q({ volume: [r.v] })}` },
  { what: 'events by network', method: 'GET', path: (r) => `/events?since=0&until=${nowSeconds()}&filters=${q({ network: [r.n] })}` },
  { what: 'events by label', method: 'GET', path: (r) => `/events?since=0&until=${nowSeconds()}&filters=${q({ label: [`matrix.owner=${r.l}`] })}`, kinds: ['name'] },
  { what: 'ps by id', method: 'GET', path: (r) => `/containers/json?all=1&filters=${q({ id: [r.c] })}`, notAReference: ['name'] },
  { what: 'ps by name', method: 'GET', path: (r) => `/containers/json?all=1&filters=${q({ name: [r.c] })}`, notAReference: ['id', 'short'] },
  { what: 'ps by ancestor', method: 'GET', path: (r) => `/containers/json?all=1&filters=${q({ ancestor: [r.i] })}` },
  { what: 'ps by volume', method: 'GET', path: (r) => `/containers/json?all=1&filters=${q({ volume: [r.v] })}` },
  { what: 'ps by network', method: 'GET', path: (r) => `/containers/json?all=1&filters=${q({ network: [r.n] })}` },
  { what: 'ps before', method: 'GET', path: (r) => `/containers/json?all=1&filters=${q({ before: [r.c] })}` },
  { what: 'ps since', method: 'GET', path: (r) => `/containers/json?all=1&filters=${q({ since: [r.c] })}` },
  { what: 'ps by label', method: 'GET', path: (r) => `/containers/json?all=1&filters=${q({ label: [`matrix.owner=${r.l}`] })}`, kinds: ['name'] },
  { what: 'images by reference', method: 'GET', path: (r) => `/images/json?filters=${q({ reference: [r.i] })}`, notAReference: ['id', 'short'] },
  { what: 'images before', method: 'GET', path: (r) => `/images/json?filters=${q({ before: [r.i] })}` },
  { what: 'images since', method: 'GET', path: (r) => `/images/json?filters=${q({ since: [r.i] })}` },
  { what: 'volumes by name', method: 'GET', path: (r) => `/volumes?filters=${q({ name: [r.v] })}` },
  { what: 'networks by id', method: 'GET', path: (r) => `/networks?filters=${q({ id: [r.n] })}`, notAReference: ['name'] },
  { what: 'networks by name', method: 'GET', path: (r) => `/networks?filters=${q({ name: [r.n] })}`, notAReference: ['id', 'short'] },
  // ---- creates that name the owner's objects ------------------------------------------------
  { what: 'create from image', method: 'POST', path: () => '/containers/create', body: (r) => ({ Image: r.i, Cmd: ['true'] }) },
  { what: 'create --volumes-from', method: 'POST', path: () => '/containers/create', body: (r) => ({ Image: BUSYBOX_IMAGE, HostConfig: { VolumesFrom: [r.c] } }) },
  { what: 'create --network', method: 'POST', path: () => '/containers/create', body: (r) => ({ Image: BUSYBOX_IMAGE, HostConfig: { NetworkMode: r.n } }) },
  {
    what: 'create with endpoint config',
    method: 'POST',
    path: () => '/containers/create',
    body: (r) => ({ Image: BUSYBOX_IMAGE, NetworkingConfig: { EndpointsConfig: { [r.n]: {} } } }),
  },
  { what: 'create --network container:', method: 'POST', path: () => '/containers/create', body: (r) => ({ Image: BUSYBOX_IMAGE, HostConfig: { NetworkMode: `container:${r.c}` } }), thenStart: true },
  { what: 'create --ipc container:', method: 'POST', path: () => '/containers/create', body: (r) => ({ Image: BUSYBOX_IMAGE, HostConfig: { IpcMode: `container:${r.c}` } }), noControl: true },
  { what: 'create --pid container:', method: 'POST', path: () => '/containers/create', body: (r) => ({ Image: BUSYBOX_IMAGE, HostConfig: { PidMode: `container:${r.c}` } }), noControl: true },
  // A name is unique per tenant only: taking the owner's names must work, and say nothing.
  {
    what: "create a container under the owner's name",
    method: 'POST',
    path: (r) => `/containers/create?name=${r.c}`,
    body: () => ({ Image: BUSYBOX_IMAGE, Cmd: ['true'] }),
    kinds: ['name'],
  },
  {
    what: "create a volume under the owner's name",
    method: 'POST',
    path: () => '/volumes/create',
    body: (r) => ({ Name: r.v }),
    kinds: ['name'],
    cleanup: (r, p) => p.caller.call('DELETE', `/volumes/${r.v}`),
  },
  {
    what: "create a network under the owner's name",
    method: 'POST',
    path: () => '/networks/create',
    body: (r) => ({ Name: r.n }),
    kinds: ['name'],
    cleanup: (r, p) => p.caller.call('DELETE', `/networks/${r.n}`),
  },
  { what: 'tag under the owner\'s image name', method: 'POST', path: (r) => `/images/${BUSYBOX_IMAGE}/tag?repo=${r.repo}&tag=v1`, kinds: ['name'], cleanup: (r, p) => p.caller.call('DELETE', `/images/${r.repo}:v1`), noControl: true },
  { what: 'commit', method: 'POST', path: (r) => `/commit?container=${q(r.s)}&repo=matrix-stolen&tag=x` },
  {
    what: 'build FROM',
    method: 'POST',
    path: () => '/build?t=matrix-stolen-build',
    body: async (r) => tarOf({ Dockerfile: `FROM ${r.i}\nRUN true\n` }),
    contentType: 'application/x-tar',
    timeoutMs: 20_000,
  },
  {
    // The owner's own build steps: a cache hit would hand over the owner's layer (and tell the
    // prober that the owner ran the step).
    what: "build of the owner's exact steps (build cache)",
    method: 'POST',
    path: () => '/build?t=matrix-stolen-cache',
    body: async (r) => tarOf({ Dockerfile: `FROM ${BUSYBOX_IMAGE}\nRUN echo ${r.l} > /built\n` }),
    contentType: 'application/x-tar',
    timeoutMs: 30_000,
    kinds: ['name'],
  },
  { what: 'network connect (prober container to owner network)', method: 'POST', path: (r) => `/networks/${r.n}/connect`, body: (_r, p) => ({ Container: p.container }) },
  { what: 'network connect (owner container to prober network)', method: 'POST', path: (_r) => '/networks/PROBER_NET/connect', body: (r) => ({ Container: r.c }) },
  { what: 'network disconnect (prober network)', method: 'POST', path: (_r) => '/networks/PROBER_NET/disconnect', body: (r) => ({ Container: r.c, Force: true }) },
  // ---- changes --------------------------------------------------------------------------
  { what: 'resize', method: 'POST', path: (r) => `/containers/${r.c}/resize?h=10&w=10`, mutates: true },
  { what: 'update', method: 'POST', path: (r) => `/containers/${r.c}/update`, body: () => ({ CpuShares: 512 }), mutates: true },
  { what: 'rename', method: 'POST', path: (r) => `/containers/${r.c}/rename?name=matrix-stolen`, mutates: true },
  { what: 'pause', method: 'POST', path: (r) => `/containers/${r.c}/pause`, mutates: true },
  { what: 'unpause', method: 'POST', path: (r) => `/containers/${r.c}/unpause`, mutates: true },
  { what: 'kill', method: 'POST', path: (r) => `/containers/${r.c}/kill?signal=SIGKILL`, mutates: true },
  { what: 'stop', method: 'POST', path: (r) => `/containers/${r.c}/stop?t=0`, mutates: true },
  { what: 'restart', method: 'POST', path: (r) => `/containers/${r.c}/restart?t=0`, mutates: true },
  { what: 'start (stopped)', method: 'POST', path: (r) => `/containers/${r.s}/start`, mutates: true },
  { what: 'start (running)', method: 'POST', path: (r) => `/containers/${r.c}/start`, mutates: true },
  {
    what: 'archive PUT',
    method: 'PUT',
    path: (r) => `/containers/${r.c}/archive?path=/tmp`,
    body: async () => tarOf({ 'planted.txt': 'from another caller\n' }),
    contentType: 'application/x-tar',
    mutates: true,
  },
  { what: 'exec create', method: 'POST', path: (r) => `/containers/${r.c}/exec`, body: () => ({ Cmd: ['true'], AttachStdout: true }), mutates: true },
  { what: 'exec start', method: 'POST', path: (r) => `/exec/${r.e}/start`, body: () => ({ Detach: true, Tty: false }), mutates: true },
  { what: 'exec resize', method: 'POST', path: (r) => `/exec/${r.e}/resize?h=10&w=10`, mutates: true },
  { what: 'image tag', method: 'POST', path: (r) => `/images/${r.i}/tag?repo=matrix-stolen&tag=x`, mutates: true },
  { what: 'image push', method: 'POST', path: (r) => `/images/${r.repo}/push?tag=v1`, kinds: ['name'], timeoutMs: 20_000, mutates: true },
  { what: 'image push (by id)', method: 'POST', path: (r) => `/images/${r.i}/push`, kinds: ['id', 'short'], timeoutMs: 20_000, mutates: true },
  { what: 'network connect', method: 'POST', path: (r) => `/networks/${r.n}/connect`, body: (r) => ({ Container: r.c }), mutates: true },
  { what: 'network disconnect', method: 'POST', path: (r) => `/networks/${r.n}/disconnect`, body: (r) => ({ Container: r.c, Force: true }), mutates: true },
  { what: 'container prune by label', method: 'POST', path: (r) => `/containers/prune?filters=${q({ label: [`matrix.owner=${r.l}`] })}`, kinds: ['name'], mutates: true },
  { what: 'image prune by label', method: 'POST', path: (r) => `/images/prune?filters=${q({ dangling: ['false'], label: [`matrix.owner=${r.l}`] })}`, kinds: ['name'], mutates: true },
  { what: 'volume prune by label', method: 'POST', path: (r) => `/volumes/prune?filters=${q({ all: ['true'], label: [`matrix.owner=${r.l}`] })}`, kinds: ['name'], mutates: true },
  { what: 'network prune by label', method: 'POST', path: (r) => `/networks/prune?filters=${q({ label: [`matrix.owner=${r.l}`] })}`, kinds: ['name'], mutates: true },
  { what: 'build prune (all of the prober\'s)', method: 'POST', path: () => '/build/prune?all=1', kinds: ['name'], sendOnce: true },
  // ---- deletes last ---------------------------------------------------------------------
  { what: 'image delete', method: 'DELETE', path: (r) => `/images/${r.i}?force=1`, mutates: true },
  { what: 'image delete (no force)', method: 'DELETE', path: (r) => `/images/${r.i}`, mutates: true },
  { what: 'volume delete', method: 'DELETE', path: (r) => `/volumes/${r.v}?force=1`, mutates: true },
  { what: 'network delete', method: 'DELETE', path: (r) => `/networks/${r.n}`, mutates: true },
  { what: 'container delete (stopped)', method: 'DELETE', path: (r) => `/containers/${r.s}`, mutates: true },
  { what: 'container delete', method: 'DELETE', path: (r) => `/containers/${r.c}?force=1&v=1`, mutates: true },
];

function refsOf(world: World, kind: RefKind): Refs {
  const imageHex = world.image.id.replace(/^sha256:/, '');
  const pick = (id: string, name: string): string => (kind === 'id' ? id : kind === 'short' ? id.slice(0, 12) : name);
  return {
    c: pick(world.running.id, world.running.name),
    s: pick(world.stopped.id, world.stopped.name),
    i: kind === 'id' ? world.image.id : kind === 'short' ? imageHex.slice(0, 12) : `${world.image.repo}:${world.image.tag}`,
    repo: world.image.repo,
    v: world.volume,
    n: pick(world.network.id, world.network.name),
    e: kind === 'short' ? world.exec.slice(0, 12) : world.exec,
    l: world.prefix,
  };
}

/** Names of the same shape as the owner's, for objects that never existed. */
function ghostRefs(kind: RefKind): Refs {
  const tag = hex(3);
  const pick = (name: string): string => (kind === 'id' ? hex(32) : kind === 'short' ? hex(6) : name);
  return {
    c: pick(`ghost-${tag}-run`),
    s: pick(`ghost-${tag}-stopped`),
    i: kind === 'id' ? `sha256:${hex(32)}` : kind === 'short' ? hex(6) : `ghost-${tag}-img:v1`,
    repo: `ghost-${tag}-img`,
    v: `ghost-${tag}-vol`,
    n: pick(`ghost-${tag}-net`),
    e: kind === 'short' ? hex(6) : hex(32),
    l: `ghost-${tag}`,
  };
}

/** The answer with every name the probe used replaced by its role, longest names first. */
function normalise(answer: ApiAnswer, refs: Refs): string {
  let body = answer.body;
  const pairs = Object.entries(refs).sort((a, b) => b[1].length - a[1].length);
  for (const [role, value] of pairs) body = body.split(value).join(`<${role}>`);
  // Ids the server mints (a created container, a build step) and times differ between any two calls.
  body = body.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>');
  body = body.replace(/\b[0-9a-f]{64}\b/g, '<minted>').replace(/\b[0-9a-f]{12}\b/g, '<minted12>');
  return `${answer.status} ${body}`;
}

async function makeWorld(caller: ApiCaller, env: NodeJS.ProcessEnv, prefix: string): Promise<World> {
  const label = ['--label', `matrix.owner=${prefix}`];
  await dockerOk(env, ['load', '-i', await busyboxImageTar()]);
  await dockerOk(env, ['volume', 'create', ...label, `${prefix}-vol`]);
  const networkId = (await dockerOk(env, ['network', 'create', ...label, `${prefix}-net`])).trim();
  const stoppedId = (await dockerOk(env, ['create', ...label, '--name', `${prefix}-stopped`, BUSYBOX_IMAGE, 'sh', '-c', 'echo x > /marker'])).trim();
  await dockerOk(env, ['start', '-a', stoppedId]);
  const imageId = (await dockerOk(env, ['commit', '-c', `LABEL matrix.owner=${prefix}`, stoppedId, `${prefix}-img:v1`])).trim();
  // The running container uses the owner's own image (so `ancestor=` and rmi conflicts apply).
  const runningId = (
    await dockerOk(env, [
      'run', '-d', ...label, '--name', `${prefix}-run`, '-v', `${prefix}-vol:/data`, '--network', `${prefix}-net`, `${prefix}-img:v1`,
      'sh', '-c', `echo ${prefix}-secret > /data/secret && exec sleep 3600`,
    ])
  ).trim();
  await dockerOk(env, ['tag', BUSYBOX_IMAGE, `${prefix}-busybox:mine`]);
  const created = await caller.call('POST', `/containers/${runningId}/exec`, { body: { Cmd: ['true'] } });
  assert.equal(created.status, 201, created.body);
  const exec = (JSON.parse(created.body) as { Id: string }).Id;
  const started = await caller.call('POST', `/exec/${exec}/start`, { body: { Detach: true } });
  assert.equal(started.status, 200, started.body);
  for (let i = 0; i < 50; i++) {
    const state = JSON.parse((await caller.call('GET', `/exec/${exec}/json`)).body) as { Running: boolean };
    if (!state.Running) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const context = await tarOf({ Dockerfile: `FROM ${BUSYBOX_IMAGE}\nRUN echo ${prefix} > /built\n` });
  const built = await caller.call('POST', `/build?t=${prefix}-built`, { body: context, timeoutMs: 60_000 });
  assert.equal(built.status, 200, built.body);
  assert.doesNotMatch(built.body, /errorDetail/, built.body);
  const df = JSON.parse((await caller.call('GET', '/system/df')).body) as { BuildCache: { ID: string }[] | null };
  const buildCacheIds = (df.BuildCache ?? []).map((b) => b.ID);
  assert.ok(buildCacheIds.length > 0, 'the owner has a build cache entry');
  return {
    caller,
    env,
    prefix,
    running: { id: runningId, name: `${prefix}-run` },
    stopped: { id: stoppedId, name: `${prefix}-stopped` },
    image: { id: imageId, repo: `${prefix}-img`, tag: 'v1' },
    volume: `${prefix}-vol`,
    network: { id: networkId, name: `${prefix}-net` },
    exec,
    buildCacheIds,
  };
}

async function makeProber(caller: ApiCaller, env: NodeJS.ProcessEnv, prefix: string): Promise<Prober> {
  await dockerOk(env, ['load', '-i', await busyboxImageTar()]);
  await dockerOk(env, ['network', 'create', `${prefix}-probe-net`]);
  const container = (await dockerOk(env, ['create', '--name', `${prefix}-probe`, '--network', `${prefix}-probe-net`, BUSYBOX_IMAGE, 'sleep', '60'])).trim();
  return { caller, env, network: `${prefix}-probe-net`, container };
}

/** Everything of the owner's a probe could change, as the owner sees it. */
async function snapshot(world: World): Promise<Record<string, unknown>> {
  const get = async (path: string): Promise<unknown> => {
    const answer = await world.caller.call('GET', path);
    assert.equal(answer.status, 200, `${world.caller.who} GET ${path}: ${answer.body}`);
    return JSON.parse(answer.body) as unknown;
  };
  const label = q({ label: [`matrix.owner=${world.prefix}`] });
  const volume = await get(`/volumes/${world.volume}`);
  return {
    running: await get(`/containers/${world.running.id}/json`),
    stopped: await get(`/containers/${world.stopped.id}/json`),
    image: await get(`/images/${world.image.id}/json`),
    volume,
    network: await get(`/networks/${world.network.id}`),
    exec: await get(`/exec/${world.exec}/json`),
    // Status is a human duration ("Up 3 seconds") that moves on by itself.
    ps: ((await get(`/containers/json?all=1&filters=${label}`)) as Record<string, unknown>[]).map(({ Status: _status, ...rest }) => rest),
    images: await get('/images/json'),
    volumes: await get(`/volumes?filters=${label}`),
    networks: await get(`/networks?filters=${label}`),
    buildCache: ((await get('/system/df')) as { BuildCache: unknown }).BuildCache,
    marker: (await world.caller.call('GET', `/containers/${world.running.id}/archive?path=/tmp`)).body.includes('planted.txt'),
    // The volume's data, not only its record (read on the host: a same-named volume of the
    // prober must be another directory, and removing it must leave this one).
    volumeData: await readFile(join((volume as { Mountpoint: string }).Mountpoint, 'secret'), 'utf8').then(
      (text) => text === `${world.prefix}-secret\n`,
      () => false,
    ),
  };
}

/**
 * Sends every row as the prober, against the owner's objects and against ghosts; returns the
 * differences. With `control`, the prober is the owner itself: rows that do not change what
 * they name are sent once per kind, and each must tell the object from a ghost — so no row
 * passes because it never reached an object (a misspelt route, a body refused first).
 */
async function probe(owner: World, prober: Prober, control = false): Promise<string[]> {
  const differences: string[] = [];
  for (const row of ROWS) {
    if (control && (row.mutates || row.noControl || row.sendOnce)) continue;
    for (const kind of row.kinds ?? KINDS) {
      if (control && row.notAReference?.includes(kind)) continue;
      const send = async (refs: Refs): Promise<string> => {
        const path = row.path(refs).replace('PROBER_NET', prober.network);
        const body = row.body ? await row.body(refs, prober) : undefined;
        const answer = await prober.caller.call(row.method, path, {
          ...(body !== undefined ? { body } : {}),
          ...(row.contentType ? { contentType: row.contentType } : {}),
          timeoutMs: row.timeoutMs ?? 5000,
        });
        // A create that succeeded (for the ghost as much as the owner's object) leaves the
        // prober a container: remove it so the next row starts from the same state.
        if (row.method === 'POST' && path.startsWith('/containers/create') && answer.status === 201) {
          const id = (JSON.parse(answer.body) as { Id: string }).Id;
          const started = row.thenStart ? await prober.caller.call('POST', `/containers/${id}/start`) : undefined;
          await prober.caller.call('DELETE', `/containers/${id}?force=1`);
          if (started) return normalise(started, refs).replaceAll(id, '<created>');
        }
        if (row.cleanup) await row.cleanup(refs, prober);
        return normalise(answer, refs);
      };
      if (row.sendOnce) {
        await send(refsOf(owner, kind));
        continue;
      }
      const ghost = await send(ghostRefs(kind));
      assert.doesNotMatch(ghost, /^404 \{"message":"page not found"\}/, `${row.what}: no such route`);
      const real = await send(refsOf(owner, kind));
      if (control) {
        if (real === ghost) differences.push(`${owner.caller.who}'s own ${row.what} by ${kind} answers as for a ghost: ${real.slice(0, 400)}`);
      } else if (real !== ghost) differences.push(`${prober.caller.who} → ${owner.caller.who}'s ${row.what} by ${kind}:\n  owner's: ${real.slice(0, 400)}\n  ghost's: ${ghost.slice(0, 400)}`);
    }
  }
  return differences;
}

/** The prober's own lists hold none of the owner's ids or names. */
async function assertListsClean(owner: World, prober: Prober): Promise<void> {
  const ids = [owner.running.id, owner.stopped.id, owner.image.id, owner.network.id, owner.exec, ...owner.buildCacheIds];
  const names = [owner.running.name, owner.stopped.name, owner.image.repo, owner.volume, owner.network.name, `${owner.prefix}-busybox`, `${owner.prefix}-built`];
  for (const path of ['/containers/json?all=1&size=1', '/images/json?all=1', '/volumes', '/networks', `/events?since=0&until=${nowSeconds()}`, '/system/df', '/info']) {
    const answer = await prober.caller.call('GET', path);
    assert.equal(answer.status, 200, `${prober.caller.who} GET ${path}: ${answer.body}`);
    // The prober itself made (and removed) objects under the owner's names: its own events
    // name them, so events are checked by id only.
    const secrets = path.startsWith('/events') ? ids : [...ids, ...names];
    for (const secret of secrets) assert.ok(!answer.body.includes(secret), `${prober.caller.who} GET ${path} shows ${owner.caller.who}'s ${secret}`);
  }
  const info = JSON.parse((await prober.caller.call('GET', '/info')).body) as { Containers: number; Images: number };
  const ps = JSON.parse((await prober.caller.call('GET', '/containers/json?all=1')).body) as unknown[];
  assert.equal(info.Containers, ps.length, `${prober.caller.who}'s docker info counts only its own containers`);
}

describe('isolation matrix: tenants A and B and the operator', () => {
  let t: TenantBerth;
  let a: World;
  let operatorWorld: World;
  let bProber: Prober;
  let operatorProber: Prober;
  let aProber: Prober;
  let b: ApiCaller;

  before(async () => {
    t = await startTenantBerth();
    const aEnv = await t.createTenant('tenant-a');
    const bEnv = await t.createTenant('tenant-b');
    const aCaller = await tenantCaller('tenant-a', t.port, join(t.work, 'tenant-a-certs'));
    b = await tenantCaller('tenant-b', t.port, join(t.work, 'tenant-b-certs'));
    const operator = socketCaller('operator', t.berth.socket);
    a = await makeWorld(aCaller, aEnv, 'mx-a');
    operatorWorld = await makeWorld(operator, t.berth.env, 'mx-op');
    bProber = await makeProber(b, bEnv, 'mx-b');
    operatorProber = await makeProber(operator, t.berth.env, 'mx-op');
    aProber = await makeProber(aCaller, aEnv, 'mx-a');
  });
  after(async () => {
    await t?.stop();
  });

  for (const [label, ownerOf, proberOf] of [
    ["tenant B on tenant A's objects", () => a, () => bProber],
    ["the operator on tenant A's objects", () => a, () => operatorProber],
    ["tenant A on the operator's objects", () => operatorWorld, () => aProber],
  ] as const) {
    test(`${label}: every endpoint answers as for an object that never existed, and nothing changes`, async () => {
      const owner = ownerOf();
      const prober = proberOf();
      const before = await snapshot(owner);
      assert.equal(before.volumeData, true, "the owner's volume holds its data");
      const differences = await probe(owner, prober);
      assert.deepEqual(differences, [], `${differences.length} endpoints tell the owner's objects apart:\n${differences.join('\n')}`);
      const afterwards = await snapshot(owner);
      assert.deepEqual(afterwards, before);
      const state = (afterwards.running as { State: { Running: boolean; StartedAt: string } }).State;
      assert.equal(state.Running, true);
      assert.equal(state.StartedAt, (before.running as { State: { StartedAt: string } }).State.StartedAt);
      assert.equal(afterwards.marker, false, 'nothing was planted in the container');
      await assertListsClean(owner, prober);
    });
  }

  test("a live event stream of B carries nothing of what A does meanwhile", async () => {
    const since = Math.floor(Date.now() / 1000);
    const stream = b.call('GET', `/events?since=${since}`, { timeoutMs: 6000 });
    await new Promise((r) => setTimeout(r, 500));
    const id = (await dockerOk(a.env, ['run', '-d', '--name', 'mx-a-live', '--network', 'mx-a-net', '-v', 'mx-a-live-vol:/v', BUSYBOX_IMAGE, 'sleep', '60'])).trim();
    await dockerOk(a.env, ['exec', id, 'true']);
    await dockerOk(a.env, ['rm', '-f', '-v', id]);
    await dockerOk(a.env, ['volume', 'rm', 'mx-a-live-vol']);
    await dockerOk(a.env, ['tag', BUSYBOX_IMAGE, 'mx-a-live:1']);
    await dockerOk(a.env, ['rmi', 'mx-a-live:1']);
    const answer = await stream;
    // The stream never ends by itself: the caller gives up after its timeout.
    assert.match(answer.body, /^timed out after 6000 ms \(status 200, 0 bytes so far\)$/, answer.body);
    // A's own stream of the same span did see it all, so B's silence means something.
    const own = await a.caller.call('GET', `/events?since=${since}&until=${nowSeconds()}`);
    for (const action of ['create', 'start', 'exec_create', 'destroy', 'tag', 'untag']) assert.match(own.body, new RegExp(`"Action":"${action}`), action);
  });

  test('control: the owner itself reaches its objects through every row that does not change them', async () => {
    // A, probing the operator, pruned its own build cache (a row of the matrix): build it again.
    const rebuilt = await a.caller.call('POST', `/build?t=${a.prefix}-built`, { body: await tarOf({ Dockerfile: `FROM ${BUSYBOX_IMAGE}\nRUN echo ${a.prefix} > /built\n` }), timeoutMs: 60_000 });
    assert.equal(rebuilt.status, 200, rebuilt.body);
    const differences = await probe(a, aProber, true);
    assert.deepEqual(differences, [], differences.join('\n'));
  });

  test("B's volume under A's volume name is B's own, empty one, and removing it leaves A's data", async () => {
    const ls = await dockerOk(bProber.env, ['run', '--rm', '-v', `${a.volume}:/data`, BUSYBOX_IMAGE, 'ls', '-A', '/data']);
    assert.equal(ls, '');
    await dockerOk(bProber.env, ['volume', 'rm', a.volume]);
    assert.equal(await dockerOk(a.env, ['exec', a.running.id, 'cat', '/data/secret']), `${a.prefix}-secret\n`);
  });

  test("tenant B's lists show none of A's or the operator's objects", async () => {
    await assertListsClean(a, bProber);
    await assertListsClean(operatorWorld, bProber);
  });
});
