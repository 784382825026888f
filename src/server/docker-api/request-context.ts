import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../../common/context.js';
import { internal } from '../../common/errors.js';
import './auth.js';

/** The context every service call gets: the tenant the auth hook named, and the request id. */
export function requestContext(request: FastifyRequest): RequestContext {
  // Fail closed: a request the auth hook never saw must not act in anybody's scope.
  if (typeof request.tenant !== 'string' || request.tenant === '') throw internal('request reached a handler without a tenant (authentication hook missing)');
  return { tenant: request.tenant, requestId: request.id };
}
