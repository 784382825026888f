import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.js';
import type { VolumeCreateBody } from '../volumes/volume-service.js';
import { requestContext } from './request-context.js';
import { admitVolumeCreate } from './admission.js';
import { queryBool, queryString } from './query.js';

type NameParams = { Params: { name: string } };

/** Volume routes (moby operationIds in comments). Handlers translate only. */
export async function volumeRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { volumes } = opts.services;

  // VolumeList
  app.get('/volumes', async (request) => volumes.list(requestContext(request), queryString(request.query, 'filters')));

  // VolumeCreate
  app.post('/volumes/create', async (request, reply) => {
    admitVolumeCreate(opts.services, request, request.body);
    const body = (request.body ?? {}) as VolumeCreateBody;
    const ctx = requestContext(request);
    const view = await opts.services.quotas.guardVolumeCreate(ctx, typeof body.Name === 'string' ? body.Name : undefined, () => volumes.create(ctx, body));
    return reply.code(201).send(view);
  });

  // VolumePrune (before /volumes/:name so "prune" is never read as a name)
  app.post('/volumes/prune', async (request) =>
    volumes.prune(requestContext(request), queryString(request.query, 'filters'), request.apiVersion),
  );

  // VolumeInspect
  app.get<NameParams>('/volumes/:name', async (request) => volumes.inspect(requestContext(request), request.params.name));

  // VolumeDelete
  app.delete<NameParams>('/volumes/:name', async (request, reply) => {
    await volumes.remove(requestContext(request), request.params.name, queryBool(request.query, 'force'));
    return reply.code(204).send();
  });
}
