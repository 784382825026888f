import { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditIntent, AuditLog, AuditResult } from '../audit/audit-log.js';
import { peerSerial } from './auth.js';
import { normaliseSerial } from '../tenancy/pki.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The audit entry of a mutating call, once its intent is written (0 before). */
    auditSeq: number;
    auditDone: boolean;
    /** The error a streamed answer (pull, push, build) ended with after its 200 went out. */
    streamError?: string;
  }
}

const READ_ONLY = new Set(['GET', 'HEAD', 'OPTIONS']);
const MAX_PARSED_ANSWER = 64 * 1024;

/**
 * Records every mutating call (any method but GET, HEAD and OPTIONS) of the Docker API and
 * the admin API in the audit log. Install right after authentication: the intent is written
 * once the caller is known and before any handler acts; the result is written in onSend,
 * before the answer leaves. Replies a handler hijacks (attach, exec start, the pull, push and
 * build streams) skip onSend: theirs is written when the response closes, with the status
 * that went out and the error a stream ended with (`request.streamError`). A call refused before the intent (bad credential, API version) is written
 * whole when its refusal is sent.
 */
export function installAudit(app: FastifyInstance, audit: AuditLog): void {
  app.decorateRequest('auditSeq', 0);
  app.decorateRequest('auditDone', false);

  app.addHook('onRequest', async (request, reply) => {
    if (READ_ONLY.has(request.method)) return;
    request.auditSeq = await audit.begin(intentOf(request, true));
    reply.raw.once('close', () => {
      if (request.auditDone) return;
      request.auditDone = true;
      const error = request.streamError;
      audit.finish(request.auditSeq, { time: new Date(), status: reply.raw.statusCode, ...(error !== undefined ? { error } : {}) }).catch((err: unknown) => request.log.error({ err }, 'audit result not written'));
    });
  });

  app.addHook('onSend', async (request, reply, payload) => {
    if (READ_ONLY.has(request.method) || request.auditDone) return payload;
    request.auditDone = true;
    const result = resultOf(reply.statusCode, payload);
    if (request.auditSeq > 0) await audit.finish(request.auditSeq, result);
    else await audit.record(intentOf(request, false), result);
    return payload;
  });
}

function intentOf(request: FastifyRequest, authenticated: boolean): AuditIntent {
  const socket = request.raw.socket;
  const overTls = socket instanceof TLSSocket;
  const object = objectOf(request);
  return {
    time: new Date(),
    tenant: overTls && !authenticated ? '' : request.tenant,
    credential: overTls ? credentialOf(socket, request) : 'local-socket',
    method: request.method,
    path: request.originalUrl,
    ...(object !== undefined ? { object } : {}),
    requestId: request.id,
  };
}

/** Which credential spoke: a token when one was sent (its public id), else the certificate (its id as `berth tenant inspect` shows it). */
function credentialOf(socket: TLSSocket, request: FastifyRequest): string {
  const token = /^Bearer\s+berth_([0-9a-f]{16})_/i.exec(request.headers.authorization ?? '');
  if (token) return `token:${token[1]}`;
  const serial = socket.authorized ? peerSerial(socket) : undefined;
  return serial ? `certificate:${normaliseSerial(serial)}` : 'none';
}

/** The object a path or query names: a container or network id, a volume or tenant name, an image. */
function objectOf(request: FastifyRequest): string | undefined {
  const params = (request.params ?? {}) as Record<string, string | undefined>;
  if (params.id) return params.id;
  if (params.name) return params.name;
  const rest = params['*'];
  if (rest) return request.method === 'POST' && /\/(tag|push)$/.test(rest) ? rest.replace(/\/(tag|push)$/, '') : rest;
  const query = (request.query ?? {}) as Record<string, unknown>;
  for (const key of ['name', 'fromImage', 'container', 't', 'repo']) {
    const value = query[key];
    if (typeof value === 'string' && value !== '') return key === 'fromImage' && typeof query.tag === 'string' && query.tag ? `${value}:${query.tag}` : value;
  }
  return undefined;
}

/** Status, and from the answer the error message or the made object's Id or Name. */
function resultOf(status: number, payload: unknown): AuditResult {
  const result: AuditResult = { time: new Date(), status };
  const text = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) && payload.length <= MAX_PARSED_ANSWER ? payload.toString('utf8') : undefined;
  if (text === undefined || text.length > MAX_PARSED_ANSWER || !text.trimStart().startsWith('{')) return result;
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (status >= 400 && typeof body.message === 'string') result.error = body.message;
    else if (typeof body.Id === 'string') result.object = body.Id;
    else if (typeof body.Name === 'string') result.object = body.Name;
  } catch {
    // not JSON: nothing more to note
  }
  return result;
}
