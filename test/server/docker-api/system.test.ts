import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { OPERATOR_TENANT } from '../../../src/common/context.js';
import '../../../src/server/docker-api/auth.js';
import { systemRoutes } from '../../../src/server/docker-api/system.js';
import { dockerErrorHandler } from '../../../src/server/docker-api/errors.js';
import { splitVersionPrefix } from '../../../src/server/docker-api/version.js';
import { EventService } from '../../../src/server/events/event-service.js';
import { SystemService } from '../../../src/server/system/system-service.js';
import { operatorContext } from '../../../src/common/context.js';
import type { DockerEvent } from '../../../src/server/events/types.js';
import { fakeBuild, fakeHost, fakeSources } from '../system/fakes.js';
import { docker, dockerEnv } from '../../support/docker-cli.js';

/** The system routes in a fastify app shaped like server.ts (version prefix stripped, Docker errors). */
async function buildApp(dataRoot: string): Promise<{ app: FastifyInstance; events: EventService }> {
  const events = new EventService();
  const system = new SystemService({ dataRoot, sources: fakeSources(), host: fakeHost(), build: fakeBuild, events });
  const app = Fastify({ rewriteUrl: (req) => splitVersionPrefix(req.url ?? '/').path });
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('Api-Version', '1.47');
    reply.header('Ostype', 'linux');
  });
  app.setErrorHandler(dockerErrorHandler);
  // What the auth hook does for the local socket: the operator's scope.
  app.decorateRequest('tenant', OPERATOR_TENANT);
  await app.register(systemRoutes, { services: { events, system } });
  return { app, events };
}

const ctx = operatorContext('test');
const lines = (body: string): DockerEvent[] => body.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as DockerEvent);

describe('system routes', () => {
  let dataRoot: string;
  let app: FastifyInstance;
  let events: EventService;
  before(async () => {
    dataRoot = mkdtempSync(join(tmpdir(), 'berth-sysroutes-'));
    ({ app, events } = await buildApp(dataRoot));
  });
  after(async () => {
    events.close();
    await app.close();
    rmSync(dataRoot, { recursive: true, force: true });
  });

  it('SystemPing GET answers OK with the negotiation headers', async () => {
    const res = await app.inject({ method: 'GET', url: '/_ping' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, 'OK');
    assert.equal(res.headers['api-version'], '1.47');
    assert.equal(res.headers['builder-version'], '1');
    assert.equal(res.headers['ostype'], 'linux');
    assert.equal(res.headers['pragma'], 'no-cache');
    assert.match(String(res.headers['cache-control']), /no-cache/);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
  });

  it('SystemPing HEAD answers with headers and no body', async () => {
    const res = await app.inject({ method: 'HEAD', url: '/v1.47/_ping' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, '');
    assert.equal(res.headers['builder-version'], '1');
  });

  it('SystemVersion', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1.47/version' });
    assert.equal(res.statusCode, 200);
    const body = res.json() as { Version: string; ApiVersion: string; MinAPIVersion: string; Components: { Name: string }[] };
    assert.deepEqual([body.Version, body.ApiVersion, body.MinAPIVersion], ['0.1.0', '1.47', '1.24']);
    assert.deepEqual(body.Components.map((c) => c.Name), ['Engine', 'runc', 'tini']);
  });

  it('SystemInfo', async () => {
    const res = await app.inject({ method: 'GET', url: '/info' });
    assert.equal(res.statusCode, 200);
    const body = res.json() as { Containers: number; OSType: string; DockerRootDir: string };
    assert.deepEqual([body.Containers, body.OSType, body.DockerRootDir], [3, 'linux', dataRoot]);
  });

  const dfCases: { name: string; url: string; nulls: string[] }[] = [
    { name: 'everything', url: '/system/df', nulls: [] },
    { name: 'one type', url: '/system/df?type=volume', nulls: ['Images', 'Containers', 'BuildCache'] },
    { name: 'repeated type', url: '/system/df?type=image&type=container', nulls: ['Volumes', 'BuildCache'] },
  ];
  for (const c of dfCases) {
    it(`SystemDataUsage: ${c.name}`, async () => {
      const res = await app.inject({ method: 'GET', url: c.url });
      assert.equal(res.statusCode, 200);
      const body = res.json() as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).filter((k) => body[k] === null).sort(), [...c.nulls].sort());
    });
  }

  it('SystemDataUsage rejects an unknown type with a Docker error body', async () => {
    const res = await app.inject({ method: 'GET', url: '/system/df?type=widget' });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), { message: 'unknown object type: widget' });
  });

  it('SystemEvents replays history in a window with a filter', async () => {
    const since = (Date.now() / 1000).toFixed(9);
    events.publish(ctx, { Type: 'container', Action: 'create', Actor: { ID: 'c1', Attributes: { name: 'web', image: 'busybox' } } });
    events.publish(ctx, { Type: 'container', Action: 'create', Actor: { ID: 'c2', Attributes: { name: 'db', image: 'busybox' } } });
    events.publish(ctx, { Type: 'image', Action: 'tag', Actor: { ID: 'i1', Attributes: { name: 'busybox:x' } } });
    // Date.now() truncates to the millisecond the events may sit in; the next one is after them.
    const until = ((Date.now() + 1) / 1000).toFixed(3);
    const filters = encodeURIComponent(JSON.stringify({ type: { container: true }, container: { web: true } }));
    const res = await app.inject({ method: 'GET', url: `/v1.47/events?since=${since}&until=${until}&filters=${filters}` });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.headers['api-version'], '1.47');
    const got = lines(res.body);
    assert.deepEqual(got.map((e) => [e.Type, e.Action, e.Actor.ID, e.status, e.id, e.from]), [['container', 'create', 'c1', 'create', 'c1', 'busybox']]);
  });

  it('SystemEvents streams live events until `until`', async () => {
    const until = ((Date.now() + 300) / 1000).toFixed(3);
    setTimeout(() => events.publish(ctx, { Type: 'volume', Action: 'create', Actor: { ID: 'v1', Attributes: {} } }), 50);
    const res = await app.inject({ method: 'GET', url: `/events?until=${until}&filters=${encodeURIComponent('{"type":["volume"]}')}` });
    assert.deepEqual(lines(res.body).map((e) => e.Actor.ID), ['v1']);
    assert.equal(events.listenerCount(), 0);
  });

  const badEvents: { name: string; query: string; message: string }[] = [
    { name: 'bad filter JSON', query: 'filters=%7B', message: 'invalid filter' },
    { name: 'unknown filter key', query: `filters=${encodeURIComponent('{"colour":{"red":true}}')}`, message: "invalid filter 'colour'" },
    { name: 'since after until', query: 'since=20&until=10', message: '`since` time (20) cannot be after `until` time (10)' },
    { name: 'bad since', query: 'since=later', message: 'failed to parse value as time or duration: "later"' },
  ];
  for (const c of badEvents) {
    it(`SystemEvents rejects ${c.name} before streaming`, async () => {
      const res = await app.inject({ method: 'GET', url: `/events?${c.query}` });
      assert.equal(res.statusCode, 400);
      assert.deepEqual(res.json(), { message: c.message });
    });
  }
});

describe('SystemEvents over a real socket', () => {
  it('sends headers before any event, flushes each event, and unsubscribes on hangup', async () => {
    const dataRoot = mkdtempSync(join(tmpdir(), 'berth-sysroutes-'));
    const { app, events } = await buildApp(dataRoot);
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as AddressInfo;
      const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) =>
        get({ host: '127.0.0.1', port, path: '/v1.47/events' }, resolve).on('error', reject),
      );
      assert.equal(res.statusCode, 200);
      assert.equal(events.listenerCount(), 1);
      res.setEncoding('utf8');
      const first = new Promise<string>((resolve) => res.once('data', (chunk: string) => resolve(chunk)));
      events.publish(ctx, { Type: 'network', Action: 'create', Actor: { ID: 'n1', Attributes: { name: 'front' } } });
      const event = JSON.parse((await first).trim()) as DockerEvent;
      assert.equal(event.Actor.ID, 'n1');
      res.destroy();
      for (let i = 0; i < 50 && events.listenerCount() > 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(events.listenerCount(), 0);
    } finally {
      events.close();
      await app.close();
      rmSync(dataRoot, { recursive: true, force: true });
    }
  });

  it('closing the server ends open streams instead of waiting on them', async () => {
    const dataRoot = mkdtempSync(join(tmpdir(), 'berth-sysroutes-'));
    const { app, events } = await buildApp(dataRoot);
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as AddressInfo;
      const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) =>
        get({ host: '127.0.0.1', port, path: '/events' }, resolve).on('error', reject),
      );
      const ended = new Promise<void>((resolve) => res.on('end', resolve).on('close', resolve).resume());
      await app.close();
      await ended;
      assert.equal(events.listenerCount(), 0);
    } finally {
      events.close();
      await app.close();
      rmSync(dataRoot, { recursive: true, force: true });
    }
  });
});

describe('the real docker CLI reads these answers', () => {
  let dir: string;
  let app: FastifyInstance;
  let events: EventService;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-syscli-'));
    ({ app, events } = await buildApp(join(dir, 'data')));
    await app.listen({ path: join(dir, 'api.sock') });
    env = dockerEnv(`unix://${join(dir, 'api.sock')}`, dir);
  });
  after(async () => {
    events.close();
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('docker version', async () => {
    const r = await docker(env, ['version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Server: Berth$/m);
    assert.match(r.stdout, /API version:\s+1\.47 \(minimum version 1\.24\)/);
    assert.match(r.stdout, /Built:\s+Fri Jan\s+2 03:04:05 2026/); // the CLI reformats our RFC 3339 time
    assert.match(r.stdout, /^ runc:\n  Version:\s+1\.1\.5\+ds1\n  GitCommit:\s+1\.1\.5\+ds1-1\+deb12u1$/m);
  });

  it('docker info prints without errors', async () => {
    const r = await docker(env, ['info']);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /ERROR/);
    for (const line of [' Containers: 3', '  Paused: 1', ' Images: 2', ' Server Version: 0.1.0', ' Storage Driver: overlayfs',
      ' Logging Driver: k8s-file', ' Cgroup Version: 1', ' Swarm: inactive', ' Runtimes: runc', ' Init Binary: tini',
      ' runc version: 1.1.5+ds1-1+deb12u1', ' Kernel Version: 6.1.0-test', ' Name: node-1', ' Total Memory: 24GiB', ' CPUs: 2',
      ' Live Restore Enabled: true']) {
      assert.ok(r.stdout.split('\n').includes(line), `missing ${JSON.stringify(line)} in\n${r.stdout}`);
    }
  });

  it('docker system df', async () => {
    const r = await docker(env, ['system', 'df']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Images\s+1\s+1\s+4MB\s+2MB \(50%\)$/m);
    assert.match(r.stdout, /^Containers\s+1\s+1\s+12B\s+0B \(0%\)$/m);
    assert.match(r.stdout, /^Local Volumes\s+1\s+1\s+100B\s+0B \(0%\)$/m);
    assert.match(r.stdout, /^Build Cache\s+0\s+0\s+0B\s+0B$/m);
  });

  it('docker events with since, until and filters', async () => {
    const since = (Date.now() / 1000).toFixed(3);
    events.publish(ctx, { Type: 'container', Action: 'create', Actor: { ID: 'c'.repeat(64), Attributes: { name: 'web', image: 'busybox' } } });
    events.publish(ctx, { Type: 'container', Action: 'start', Actor: { ID: 'c'.repeat(64), Attributes: { name: 'web', image: 'busybox' } } });
    events.publish(ctx, { Type: 'container', Action: 'create', Actor: { ID: 'd'.repeat(64), Attributes: { name: 'db', image: 'busybox' } } });
    // The CLI turns durations such as `0s` into whole seconds, so name the end exactly.
    const until = ((Date.now() + 1) / 1000).toFixed(3);
    const r = await docker(env, ['events', '--since', since, '--until', until, '--filter', 'container=web', '--filter', 'event=create', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'container create web\n');
    const plain = await docker(env, ['events', '--since', since, '--until', until, '--filter', 'container=db']);
    assert.match(plain.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z? container create d{64} \(image=busybox, name=db\)$/m);
  });
});
