import type { FastifyInstance } from 'fastify';
import { requestContext } from './request-context.js';
import { invalidArgument } from '../../common/errors.js';
import type { AuthConfig } from '../registry/credentials.js';
import type { RegistryService } from '../registry/registry-service.js';
import type { Services } from '../services.js';
import { admitRegistry } from './admission.js';

export interface RegistryLoginRouteServices {
  registry: RegistryService;
  tenants: Pick<Services['tenants'], 'policyOf'>;
}

const authBody = {
  type: 'object',
  properties: {
    username: { type: 'string' },
    password: { type: 'string' },
    email: { type: 'string' },
    serveraddress: { type: 'string' },
    identitytoken: { type: 'string' },
    registrytoken: { type: 'string' },
    auth: { type: 'string' },
  },
} as const;

/** SystemAuth: `docker login` checks credentials through the daemon. */
export async function registryLoginRoutes(app: FastifyInstance, opts: { services: RegistryLoginRouteServices }): Promise<void> {
  app.post<{ Body: AuthConfig | undefined }>('/auth', { schema: { body: authBody } }, async (request) => {
    if (request.body === undefined || request.body === null) throw invalidArgument('missing login credentials');
    admitRegistry(opts.services.tenants, request, request.body.serveraddress ?? '', true);
    return opts.services.registry.login(requestContext(request), request.body);
  });
}
