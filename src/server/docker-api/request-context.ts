import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../../common/context.js';
import './auth.js';

/** The context every service call gets: the tenant the auth hook named, and the request id. */
export function requestContext(request: FastifyRequest): RequestContext {
  return { tenant: request.tenant, requestId: request.id };
}
