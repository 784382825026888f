import type { FastifyRequest } from 'fastify';
import { invalidArgument } from '../../common/errors.js';
import { isTrustedUpstream } from './upstream-trust.js';

/**
 * The header by which the cluster's control plane names the id of a container it asks an
 * agent's engine to create: a container placed again after a failover keeps its id.
 */
export const CONTAINER_ID_HEADER = 'x-berth-container-id';

/**
 * The header by which the cluster's control plane names the id of a network it creates on
 * every host: one network, one id, whichever host a container of it runs on.
 */
export const NETWORK_ID_HEADER = 'x-berth-network-id';

/**
 * The id the control plane chose for an object it creates, when the request came through the
 * agent's tunnel; a tenant's own copy of the header on any other connection is ignored.
 */
export function controlPlaneChosenId(request: FastifyRequest, header: typeof CONTAINER_ID_HEADER | typeof NETWORK_ID_HEADER): { id?: string } {
  if (!isTrustedUpstream(request.raw.socket)) return {};
  const value = request.headers[header];
  if (value === undefined) return {};
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw invalidArgument(`${header} must be 64 lowercase hex digits`);
  return { id: value };
}
