import type { FastifyRequest } from 'fastify';
import { invalidArgument } from '../../common/errors.js';
import { isTrustedUpstream } from './upstream-trust.js';

/**
 * The header by which the cluster's control plane names the id of a network it creates on
 * every host: one network, one id, whichever host a container of it runs on.
 */
export const NETWORK_ID_HEADER = 'x-berth-network-id';

/**
 * The id the control plane chose for a network create, when the request came through the
 * agent's tunnel; a tenant's own copy of the header on any other connection is ignored.
 */
export function controlPlaneNetworkId(request: FastifyRequest): { id?: string } {
  if (!isTrustedUpstream(request.raw.socket)) return {};
  const value = request.headers[NETWORK_ID_HEADER];
  if (value === undefined) return {};
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw invalidArgument(`${NETWORK_ID_HEADER} must be 64 lowercase hex digits`);
  return { id: value };
}
