import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { pino } from 'pino';
import { createDockerApp } from '../../../../src/server/docker-api/server.js';
import { HostProxy } from '../../../../src/server/cluster/front/proxy.js';
import { TENANT_HEADER, type AgentHub, type ClusterHost } from '../../../../src/server/cluster/agent-hub.js';
import { unavailable } from '../../../../src/common/errors.js';

/**
 * The proxy against a stand-in engine (a plain HTTP server on loopback reached through a fake
 * hub): headers the control plane owns, streaming answers, engine errors passed through,
 * upgrades spliced both ways with half-close, and a down host.
 */

const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];

function engine(): Server {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() });
      if (req.url!.includes('/missing')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'No such container: x' }));
      } else if (req.url!.includes('/logs')) {
        // A slow stream: three chunks, 50 ms apart.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        let n = 0;
        const timer = setInterval(() => {
          res.write(`line ${++n}\n`);
          if (n === 3) {
            clearInterval(timer);
            res.end();
          }
        }, 50);
      } else {
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ Id: 'abc', Warnings: [] }));
      }
    });
  });
  // Attach: echoes what it reads, upper-cased, until the client half-closes, then says bye and ends.
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: '' });
    socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(d.toString().toUpperCase()));
    socket.on('end', () => socket.end('bye'));
  });
  return server;
}

class FakeHub extends EventEmitter implements AgentHub {
  constructor(
    private readonly port: number,
    readonly list: ClusterHost[],
  ) {
    super();
  }
  hosts(): ClusterHost[] {
    return this.list;
  }
  host(ref: string): ClusterHost | undefined {
    return this.list.find((h) => h.id === ref || h.name === ref);
  }
  async openStream(hostId: string): Promise<Duplex> {
    if (this.host(hostId)?.state !== 'up') throw unavailable('not connected');
    const socket = connect({ port: this.port, host: '127.0.0.1', allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return socket;
  }
}

function host(id: string, state: 'up' | 'down'): ClusterHost {
  return {
    id,
    name: `name-${id}`,
    address: '100.64.0.2',
    labels: {},
    capacity: { cpus: 1, memoryBytes: 1, diskBytes: 1, devices: [] },
    state,
    cordoned: false,
    lastSeen: 0,
    imageIds: [],
    engineVersion: 'test',
  };
}

describe('cluster front proxy', () => {
  let upstream: Server;
  let front: Awaited<ReturnType<typeof createDockerApp>>;
  let frontPort = 0;

  before(async () => {
    upstream = engine();
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const hub = new FakeHub((upstream.address() as AddressInfo).port, [host('h1', 'up'), host('h2', 'down')]);
    const logger = pino({ level: 'silent' });
    const proxy = new HostProxy(hub, logger);
    front = createDockerApp(logger);
    front.decorateRequest('tenant', '');
    front.addHook('onRequest', async (request) => {
      request.tenant = String(request.headers['x-test-tenant'] ?? 'default');
    });
    front.all('/*', async (request, reply) => {
      const target = String(request.headers['x-test-host'] ?? 'h1');
      await proxy.forward(request, reply, target);
      return reply;
    });
    await front.listen({ port: 0, host: '127.0.0.1' });
    frontPort = (front.server.address() as AddressInfo).port;
  });

  after(async () => {
    await front.close();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  const call = (method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string; headers: IncomingMessage['headers'] }> =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: frontPort, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      });
      req.on('error', reject);
      req.end(body);
    });

  it('names the tenant itself and drops the client\'s own control-plane headers and credentials', async () => {
    seen.length = 0;
    const res = await call('POST', '/v1.45/containers/create?name=web', {
      'content-type': 'application/json',
      'x-test-tenant': 'acme',
      [TENANT_HEADER]: 'someone-else',
      'x-berth-container-id': 'f'.repeat(64),
      authorization: 'Bearer secret',
    }, JSON.stringify({ Image: 'busybox' }));
    assert.equal(res.status, 201);
    assert.deepEqual(JSON.parse(res.body), { Id: 'abc', Warnings: [] });
    const got = seen[0]!;
    assert.equal(got.url, '/v1.45/containers/create?name=web', 'the version prefix and query go as sent');
    assert.equal(got.headers[TENANT_HEADER], 'acme');
    assert.equal(got.headers['x-berth-container-id'], undefined);
    assert.equal(got.headers.authorization, undefined);
    assert.deepEqual(JSON.parse(got.body), { Image: 'busybox' });
  });

  it('sends no tenant header for the operator, even when the client sends one', async () => {
    seen.length = 0;
    await call('POST', '/containers/create', { 'content-type': 'application/json', [TENANT_HEADER]: 'acme' }, '{}');
    assert.equal(seen[0]!.headers[TENANT_HEADER], undefined);
  });

  it('passes an engine error through in Docker\'s shape and status', async () => {
    const res = await call('GET', '/containers/missing/json', {});
    assert.equal(res.status, 404);
    assert.deepEqual(JSON.parse(res.body), { message: 'No such container: x' });
  });

  it('streams a long answer chunk by chunk', async () => {
    const started = Date.now();
    const arrivals: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: frontPort, path: '/containers/x/logs?follow=1' }, (res) => {
        res.on('data', () => arrivals.push(Date.now() - started));
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(arrivals.length >= 2, true, `answer arrived in ${arrivals.length} piece(s): not streamed`);
    assert.ok(arrivals[arrivals.length - 1]! - arrivals[0]! >= 60, `chunks arrived together: ${arrivals.join(',')}`);
  });

  it('splices an upgraded attach both ways and passes the half-close on', async () => {
    const socket = connect({ port: frontPort, host: '127.0.0.1', allowHalfOpen: true });
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    const body = JSON.stringify({});
    socket.write(
      `POST /v1.45/containers/x/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nX-Test-Tenant: acme\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    let received = '';
    socket.on('data', (d: Buffer) => {
      received += d.toString();
    });
    await new Promise((r) => setTimeout(r, 200));
    assert.match(received, /^HTTP\/1\.1 101 /);
    socket.write('hello');
    await new Promise((r) => setTimeout(r, 200));
    assert.match(received, /HELLO/);
    socket.end();
    await new Promise<void>((resolve) => socket.once('end', resolve));
    assert.match(received, /HELLO(.|\n)*bye$/);
    const attach = seen.find((s) => s.url.includes('/attach'))!;
    assert.equal(attach.headers[TENANT_HEADER], 'acme');
    assert.equal(attach.headers.upgrade, 'tcp');
    socket.destroy();
  });

  it('answers 503 naming the host when the host is down', async () => {
    const res = await call('GET', '/containers/x/json', { 'x-test-host': 'h2' });
    assert.equal(res.status, 503);
    assert.match(JSON.parse(res.body).message as string, /host name-h2 is unreachable/);
  });
});
