import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { BerthError, type ErrorKind } from '../../common/errors.js';

/** The one place that knows which HTTP status each error kind gets on the Docker API. */
const STATUS: Record<ErrorKind, number> = {
  InvalidArgument: 400,
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  NotModified: 304,
  Unauthenticated: 401,
  Forbidden: 403,
  NotImplemented: 501,
  Unavailable: 503,
  Internal: 500,
};

export function statusOf(err: unknown): number {
  if (err instanceof BerthError) return STATUS[err.kind];
  const fastifyErr = err as Partial<FastifyError>;
  if (typeof fastifyErr.statusCode === 'number' && fastifyErr.statusCode < 500) return fastifyErr.statusCode;
  return 500;
}

/**
 * Docker's error body is `{"message": "..."}`. Internal errors never leak their text: the
 * user gets a generic message with the request id, and the cause goes to the log.
 */
export function dockerErrorHandler(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const status = statusOf(err);
  if (reply.sent || reply.raw.headersSent) {
    request.log.warn({ err }, 'error after the response started');
    reply.raw.destroy();
    return;
  }
  let message: string;
  if (err instanceof BerthError) {
    message = err.message;
    if (status >= 500) request.log.error({ err, cause: err.cause }, 'request failed');
  } else if (status < 500) {
    message = (err as Error).message;
  } else {
    request.log.error({ err }, 'request failed');
    message = `internal error (request ${request.id})`;
  }
  if (status === 304) {
    void reply.code(304).send();
    return;
  }
  // Exactly "application/json": the docker CLI shows the bare message only for that type and
  // prints the raw body for "application/json; charset=utf-8", which fastify adds to strings.
  void reply.code(status).header('content-type', 'application/json').send(Buffer.from(`${JSON.stringify({ message })}\n`));
}
