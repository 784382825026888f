import { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OPERATOR_TENANT } from '../../common/context.js';
import { forbidden, unauthenticated } from '../../common/errors.js';
import type { TenantService } from '../tenancy/tenant-service.js';
import { TENANT_HEADER } from '../cluster/agent-hub.js';
import { isTrustedUpstream } from './upstream-trust.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Whose request this is: the operator on the local socket, a tenant over mutual TLS. */
    tenant: string;
  }
}

/**
 * Names the tenant of every request before any handler runs. The local unix socket is the
 * operator's (its file mode is the guard, as with dockerd's socket). A TCP connection is TLS
 * with a client certificate the listener already verified against Berth's CA; here the
 * certificate's serial (and a bearer token, when sent) must belong to a live credential.
 */
export function installAuthentication(app: FastifyInstance, tenants: TenantService): void {
  app.decorateRequest('tenant', OPERATOR_TENANT);
  app.addHook('onRequest', async (request) => {
    const socket = request.raw.socket;
    if (isTrustedUpstream(socket)) {
      // The control plane already authenticated this tenant (an agent's engine, via its tunnel).
      const named = request.headers[TENANT_HEADER];
      request.tenant = typeof named === 'string' && named !== '' ? named : OPERATOR_TENANT;
      await tenants.ensure(request.tenant);
      return;
    }
    if (!(socket instanceof TLSSocket)) return;
    if (!socket.authorized) throw unauthenticated('authentication required: present a client certificate issued by this Berth');
    const serial = peerSerial(socket);
    if (!serial) throw unauthenticated('authentication required: present a client certificate issued by this Berth');
    request.tenant = tenants.authenticate(serial, bearerToken(request), request.id).tenant;
  });
}

/**
 * A connection's certificate cannot change, and decoding it costs more than the rest of the
 * auth step: read it once per connection. (Revocation is still checked on every request.)
 */
const serials = new WeakMap<TLSSocket, string>();

export function peerSerial(socket: TLSSocket): string | undefined {
  let serial = serials.get(socket);
  if (serial === undefined) {
    serial = socket.getPeerCertificate().serialNumber;
    if (serial) serials.set(socket, serial);
  }
  return serial;
}

/** Routes of the operator only (the admin API): a tenant is refused before the handler runs. */
export function requireOperator(request: FastifyRequest): void {
  if (request.tenant !== OPERATOR_TENANT) throw forbidden('the admin API is served to the operator only, on the local socket');
}

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw unauthenticated('authentication failed: the Authorization header must be "Bearer <token>"');
  return match[1];
}
