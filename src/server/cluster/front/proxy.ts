import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../../common/context.js';
import { OPERATOR_TENANT } from '../../../common/context.js';
import { BerthError, unavailable, type ErrorKind } from '../../../common/errors.js';
import type { Logger } from '../../../common/logging.js';
import { TENANT_HEADER, type AgentHub, type ClusterHost } from '../agent-hub.js';
import type { ForwardOptions, HostCall, HostClient } from './deps.js';

/**
 * Passing requests from the cluster's Docker API front to one host's engine.
 *
 * Every request opens one fresh tunnel stream (`hub.openStream`) and speaks HTTP/1.1 over it
 * with `Connection: close`: the engine sees an ordinary connection, marked trusted by the
 * agent, and takes the tenant from TENANT_HEADER. Attach and exec start upgrade that
 * connection; the front then splices the client's socket and the stream both ways, half
 * closes included (the docker CLI closes its write side when stdin ends).
 *
 * Headers: the control plane owns TENANT_HEADER and every `x-berth-*` header, so the
 * client's copies are always dropped (a tenant naming another tenant must not reach an
 * engine that trusts the header). The client's Authorization (its bearer token) stays on
 * the control plane. Hop-by-hop headers are rewritten for the new connection.
 */

/** Header names (lowercase) never copied from client to host or back. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'authorization',
  'content-length',
]);

function requestHeadersFor(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name.startsWith('x-berth-')) continue;
    out[name] = value;
  }
  return out;
}

/** The engine's own headers minus hop-by-hop ones (Api-Version etc. are the front's). */
function responseHeadersFor(incoming: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name === 'server' || name === 'date') continue;
    out[name] = value;
  }
  return out;
}

const KIND_BY_STATUS: Record<number, ErrorKind> = {
  400: 'InvalidArgument',
  401: 'Unauthenticated',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  501: 'NotImplemented',
  503: 'Unavailable',
};

/** An engine's error answer as the BerthError kind of its status, with the engine's message. */
export function engineError(status: number, body: Buffer): BerthError {
  let message = body.toString('utf8').trim();
  try {
    const parsed = JSON.parse(message) as { message?: unknown };
    if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // Not JSON: keep the text.
  }
  return new BerthError(KIND_BY_STATUS[status] ?? (status === 304 ? 'NotModified' : status >= 500 ? 'Internal' : 'InvalidArgument'), message);
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

type Body = Buffer | Readable | undefined;

function encodeBody(body: unknown): Body {
  if (body === undefined || body === null) return undefined;
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof Readable) return body;
  return Buffer.from(JSON.stringify(body));
}

/**
 * The body to pass on: what fastify parsed (JSON), or the raw request stream when it has
 * bytes to come. An upgrade's body was read before routing (docker-api/server.ts), and its
 * socket now carries the client's stdin: it is never streamed as a body.
 */
function clientBody(request: FastifyRequest, upgrade: boolean): unknown {
  const body = request.body;
  if (body !== request.raw) return body;
  if (upgrade) return undefined;
  const length = request.headers['content-length'];
  if (request.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return undefined;
  return body;
}

/**
 * Sends the request to one host and forwards answers. One instance per control plane; it
 * holds no per-request state.
 */
export class HostProxy implements HostClient {
  constructor(
    private readonly hub: AgentHub,
    private readonly logger: Logger,
  ) {}

  up(): ClusterHost[] {
    return this.hub
      .hosts()
      .filter((h) => h.state === 'up')
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private hostName(hostId: string): string {
    return this.hub.host(hostId)?.name ?? hostId;
  }

  /** A tunnel stream, or a clear Unavailable naming the host (never anything of a tenant's). */
  private async open(hostId: string): Promise<Duplex> {
    try {
      return await this.hub.openStream(hostId);
    } catch (err) {
      throw unavailable(`host ${this.hostName(hostId)} is unreachable: the request could not be delivered (try again later)`, err);
    }
  }

  /**
   * Starts one HTTP/1.1 exchange on a fresh stream. Resolves with the response, or with the
   * upgraded socket when the engine switched protocols.
   */
  private async exchange(
    tenant: string,
    hostId: string,
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    body: Body,
  ): Promise<{ response: IncomingMessage; upgraded?: { socket: Duplex; head: Buffer } }> {
    const stream = await this.open(hostId);
    const outgoing: OutgoingHttpHeaders = { ...headers };
    if (tenant !== OPERATOR_TENANT) outgoing[TENANT_HEADER] = tenant;
    else delete outgoing[TENANT_HEADER];
    if (Buffer.isBuffer(body)) outgoing['content-length'] = String(body.length);
    return new Promise((resolve, reject) => {
      const req = httpRequest({
        method,
        path,
        headers: { connection: 'close', ...outgoing },
        // No agent: with one, node would ignore createConnection and dial on its own.
        createConnection: () => stream as never,
      });
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        stream.destroy();
        reject(unavailable(`host ${this.hostName(hostId)} stopped answering: the request may or may not have taken effect`, err));
      };
      req.once('error', fail);
      req.once('response', (response) => {
        settled = true;
        resolve({ response });
      });
      req.once('upgrade', (response, socket, head) => {
        settled = true;
        resolve({ response, upgraded: { socket, head } });
      });
      if (body instanceof Readable) {
        body.once('error', (err) => req.destroy(err));
        body.pipe(req);
      } else req.end(body);
    });
  }

  async request(ctx: RequestContext, hostId: string, call: HostCall): Promise<IncomingMessage> {
    const headers: OutgoingHttpHeaders = { ...(call.headers ?? {}) };
    const body = encodeBody(call.body);
    if (body && !headers['content-type'] && !Buffer.isBuffer(call.body) && typeof call.body === 'object' && !(call.body instanceof Readable)) {
      headers['content-type'] = 'application/json';
    }
    const { response, upgraded } = await this.exchange(ctx.tenant, hostId, call.method, call.path, headers, body);
    upgraded?.socket.destroy();
    return response;
  }

  async json<T>(ctx: RequestContext, hostId: string, call: HostCall): Promise<T> {
    const response = await this.request(ctx, hostId, call);
    const body = await readAll(response);
    const status = response.statusCode ?? 500;
    if (status >= 400) throw engineError(status, body);
    if (body.length === 0) return undefined as T;
    return JSON.parse(body.toString('utf8')) as T;
  }

  /**
   * The tenant's request, as it came, to one host; the answer back. Upgrades (attach, exec
   * start) hijack the client connection and splice it to the host's stream.
   */
  async forward(request: FastifyRequest, reply: FastifyReply, hostId: string, options: ForwardOptions = {}): Promise<void> {
    const headers = requestHeadersFor(request.headers);
    Object.assign(headers, options.headers ?? {});
    const wantsUpgrade = /\bupgrade\b/i.test(String(request.headers.connection ?? '')) && request.headers.upgrade !== undefined;
    if (wantsUpgrade) {
      headers.connection = 'Upgrade';
      headers.upgrade = String(request.headers.upgrade);
    }
    const body = encodeBody(options.body !== undefined ? options.body : clientBody(request, wantsUpgrade));
    if (body && !headers['content-type']) headers['content-type'] = 'application/json';
    const path = options.path ?? request.originalUrl;
    const { response, upgraded } = await this.exchange(request.tenant, hostId, request.method, path, headers, body);
    if (upgraded) {
      this.splice(request, reply, response, upgraded.socket, upgraded.head);
      return;
    }
    const status = response.statusCode ?? 502;
    if (options.rewrite) {
      const buffered = await readAll(response);
      const replaced = options.rewrite(status, buffered);
      if (replaced !== undefined) {
        await reply.code(status).header('content-type', 'application/json').send(Buffer.from(JSON.stringify(replaced)));
        return;
      }
      await reply.code(status).headers(responseHeadersFor(response.headers)).send(buffered);
      return;
    }
    this.stream(request, reply, response, status);
  }

  /**
   * Pipes the host's answer to the client as it comes. The headers go out at once: a client
   * may wait for them before it goes on (`docker run` waits for the headers of /wait before it
   * starts the container, and the body comes only when the container exits).
   */
  private stream(request: FastifyRequest, reply: FastifyReply, response: IncomingMessage, status: number): void {
    void reply.hijack();
    const res = reply.raw;
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) res.setHeader(name, typeof value === 'number' ? String(value) : value);
    }
    for (const [name, value] of Object.entries(responseHeadersFor(response.headers))) res.setHeader(name, value);
    const length = response.headers['content-length'];
    if (length !== undefined) res.setHeader('content-length', length);
    res.writeHead(status);
    if (status === 204 || status === 304 || request.method === 'HEAD') {
      response.resume();
      res.end();
      return;
    }
    res.flushHeaders();
    // A client that goes away (docker logs -f interrupted) ends the host's side too, and the
    // other way round.
    res.once('close', () => {
      if (!response.complete) response.destroy();
    });
    response.once('error', (err) => {
      request.log.debug({ err }, 'host answer ended with an error');
      res.destroy();
    });
    response.once('aborted', () => res.destroy());
    response.pipe(res);
  }

  /** Writes the host's 101 answer to the client, then copies bytes both ways until both end. */
  private splice(request: FastifyRequest, reply: FastifyReply, response: IncomingMessage, upstream: Duplex, head: Buffer): void {
    void reply.hijack();
    const client = request.raw.socket as Duplex;
    const lines = [`HTTP/1.1 ${response.statusCode ?? 101} ${response.statusMessage ?? 'UPGRADED'}`];
    for (const [name, value] of Object.entries(response.headers)) {
      if (value === undefined) continue;
      for (const one of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${one}`);
    }
    client.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) client.write(head);
    const destroyBoth = (err?: Error): void => {
      if (err) this.logger.debug({ err, reqId: request.id }, 'upgraded stream ended with an error');
      upstream.destroy();
      client.destroy();
    };
    upstream.once('error', destroyBoth);
    client.once('error', destroyBoth);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => {
      // The engine closed: let what is buffered reach the client, then close.
      if (!client.destroyed) client.end();
    });
    upstream.pipe(client);
    client.pipe(upstream);
    client.resume();
  }
}
