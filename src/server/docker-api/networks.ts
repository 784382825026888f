import type { FastifyInstance } from 'fastify';
import { invalidArgument } from '../../common/errors.js';
import type { Services } from '../services.js';
import { requestContext } from './containers.js';
import { queryString } from './query.js';
import { controlPlaneChosenId, NETWORK_ID_HEADER } from './control-plane-ids.js';

type IdParams = { Params: { id: string } };

function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidArgument('invalid request body: a JSON object is required');
  return body as Record<string, unknown>;
}

/** Network routes (moby operationIds in comments). Handlers translate only. */
export async function networkRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { networks } = opts.services;

  // NetworkList
  app.get('/networks', async (request) => networks.list(requestContext(request), queryString(request.query, 'filters')));

  // NetworkInspect
  app.get<IdParams>('/networks/:id', async (request) => networks.inspect(requestContext(request), request.params.id));

  // NetworkCreate
  app.post('/networks/create', async (request, reply) => {
    const body = objectBody(request.body);
    const ctx = requestContext(request);
    const result = await opts.services.quotas.guardNetworkCreate(ctx, () => networks.create(ctx, body, controlPlaneChosenId(request, NETWORK_ID_HEADER)));
    return reply.code(201).send(result);
  });

  // NetworkDelete
  app.delete<IdParams>('/networks/:id', async (request, reply) => {
    await networks.remove(requestContext(request), request.params.id);
    return reply.code(204).send();
  });

  // NetworkConnect / NetworkDisconnect
  app.post<IdParams>('/networks/:id/connect', async (request, reply) => {
    await networks.connect(requestContext(request), request.params.id, objectBody(request.body));
    return reply.code(200).send();
  });
  app.post<IdParams>('/networks/:id/disconnect', async (request, reply) => {
    await networks.disconnect(requestContext(request), request.params.id, objectBody(request.body));
    return reply.code(200).send();
  });

  // NetworkPrune
  app.post('/networks/prune', async (request) => networks.prune(requestContext(request), queryString(request.query, 'filters')));
}
