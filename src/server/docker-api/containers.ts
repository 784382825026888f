import type { FastifyInstance } from 'fastify';
import { invalidArgument } from '../../common/errors.js';
import type { Services } from '../services.js';
import type { CreateBody } from '../containers/create-config.js';
import type { WaitCondition } from '../containers/container-service.js';
import { queryBool, queryInt, queryString } from './query.js';

/** The tenant of a request; until tenancy lands every caller of the local socket is the operator. */
import { requestContext } from './request-context.js';
import { admitCreate, admitUpdate } from './admission.js';
import { checkUpdateShape } from '../containers/host-config-types.js';
import { CONTAINER_ID_HEADER, controlPlaneChosenId } from './control-plane-ids.js';

export { requestContext };

type IdParams = { Params: { id: string } };

/** Container lifecycle routes (moby operationIds in comments). Handlers translate only. */
export async function containerRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { containers } = opts.services;

  // ContainerList
  app.get('/containers/json', async (request) => {
    const q = request.query;
    return containers.listView(requestContext(request), {
      all: queryBool(q, 'all'),
      limit: queryInt(q, 'limit') ?? 0,
      size: queryBool(q, 'size'),
      filters: queryString(q, 'filters'),
    });
  });

  // ContainerCreate
  app.post('/containers/create', async (request, reply) => {
    const name = queryString(request.query, 'name');
    const platform = queryString(request.query, 'platform');
    if (platform && !/^linux(\/(amd64|x86_64))?$/.test(platform)) {
      throw invalidArgument(`image platform ${platform} does not match the host platform linux/amd64`);
    }
    const body = admitCreate(opts.services, request, (request.body ?? {}) as Record<string, unknown>);
    const ctx = requestContext(request);
    // The tenant's vulnerability policy (docs/advisor.md): a blocked image fails here with 403.
    if (opts.services.advisor && typeof body.Image === 'string') await opts.services.advisor.admitCreate(ctx, body.Image);
    const result = await opts.services.quotas.guardContainerCreate(ctx, body, (admitted) => containers.create(ctx, name, admitted as CreateBody, { ...controlPlaneChosenId(request, CONTAINER_ID_HEADER) }));
    return reply.code(201).send(result);
  });

  // ContainerInspect
  app.get<IdParams>('/containers/:id/json', async (request) =>
    containers.inspectView(requestContext(request), request.params.id, queryBool(request.query, 'size')),
  );

  // ContainerStart
  app.post<IdParams>('/containers/:id/start', async (request, reply) => {
    if (queryString(request.query, 'detachKeys')) {
      // accepted for compatibility; detach keys apply to attach sessions
    }
    await containers.start(requestContext(request), request.params.id);
    return reply.code(204).send();
  });

  // ContainerStop
  app.post<IdParams>('/containers/:id/stop', async (request, reply) => {
    await containers.stop(requestContext(request), request.params.id, stopOptions(request.query));
    return reply.code(204).send();
  });

  // ContainerRestart
  app.post<IdParams>('/containers/:id/restart', async (request, reply) => {
    await containers.restart(requestContext(request), request.params.id, stopOptions(request.query));
    return reply.code(204).send();
  });

  // ContainerKill
  app.post<IdParams>('/containers/:id/kill', async (request, reply) => {
    await containers.kill(requestContext(request), request.params.id, queryString(request.query, 'signal') || 'SIGKILL');
    return reply.code(204).send();
  });

  // ContainerPause / ContainerUnpause
  app.post<IdParams>('/containers/:id/pause', async (request, reply) => {
    await containers.pause(requestContext(request), request.params.id);
    return reply.code(204).send();
  });
  app.post<IdParams>('/containers/:id/unpause', async (request, reply) => {
    await containers.unpause(requestContext(request), request.params.id);
    return reply.code(204).send();
  });

  // ContainerRename
  app.post<IdParams>('/containers/:id/rename', async (request, reply) => {
    const name = queryString(request.query, 'name');
    if (name === undefined) throw invalidArgument('name is required');
    await containers.rename(requestContext(request), request.params.id, name);
    return reply.code(204).send();
  });

  // ContainerUpdate
  app.post<IdParams>('/containers/:id/update', async (request) => {
    const body = request.body;
    if (typeof body !== 'object' || body === null) throw invalidArgument('invalid request body: a JSON object is required');
    checkUpdateShape(body as Record<string, unknown>);
    const admitted = admitUpdate(opts.services, request, body as Record<string, unknown>);
    const ctx = requestContext(request);
    return opts.services.quotas.guardContainerUpdate(ctx, request.params.id, admitted, () => containers.update(ctx, request.params.id, admitted));
  });

  // ContainerDelete
  app.delete<IdParams>('/containers/:id', async (request, reply) => {
    if (queryBool(request.query, 'link')) throw invalidArgument('legacy links are not supported');
    await containers.remove(requestContext(request), request.params.id, {
      force: queryBool(request.query, 'force'),
      volumes: queryBool(request.query, 'v'),
    });
    return reply.code(204).send();
  });

  // ContainerWait: headers go out at once (the CLI waits for them before it starts the
  // container); the body follows when the condition is met.
  app.post<IdParams>('/containers/:id/wait', async (request, reply) => {
    const condition = (queryString(request.query, 'condition') || 'not-running') as WaitCondition;
    const result = await containers.wait(requestContext(request), request.params.id, condition);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Api-Version': String(reply.getHeader('Api-Version') ?? '') });
    res.flushHeaders();
    const outcome = await result();
    if (!res.destroyed) res.end(`${JSON.stringify({ Error: outcome.Error ?? null, StatusCode: outcome.StatusCode })}\n`);
  });

  // ContainerPrune
  app.post('/containers/prune', async (request) => containers.prune(requestContext(request), queryString(request.query, 'filters')));
}

function stopOptions(query: unknown): { timeoutSeconds?: number; signal?: string } {
  const t = queryInt(query, 't');
  const signal = queryString(query, 'signal');
  return { ...(t !== undefined ? { timeoutSeconds: t } : {}), ...(signal ? { signal } : {}) };
}
