import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../../common/context.js';
import { conflict, invalidArgument, isKind, unavailable } from '../../../common/errors.js';
import { newId, randomName, VALID_NAME } from '../../../common/ids.js';
import { queryBool, queryInt, queryString } from '../../docker-api/query.js';
import { requestContext } from '../../docker-api/request-context.js';
import { enforceCreatePolicy, enforceExecPolicy, enforceUpdatePolicy } from '../../tenancy/policy.js';
import type { ClusterHost } from '../agent-hub.js';
import type { Placement } from '../placements.js';
import type { ContainerPlacer } from './container-placer.js';
import { recordUpdatedLimits } from './quotas.js';
import { inspectOnHost, mergeSummaries, summaryOnHost } from './container-views.js';
import type { FrontDeps } from './deps.js';
import type { ExecDirectory } from './exec-directory.js';

type IdParams = { Params: { id: string; '*'?: string } };

export interface ContainerRouteOptions {
  deps: FrontDeps;
  placer: ContainerPlacer;
  execs: ExecDirectory;
}

/**
 * The cluster's container routes (moby operationIds in comments). A container lives on the
 * host its placement names: every `/containers/{ref}/…` request resolves the placement in
 * the tenant's scope and is forwarded there with the ref replaced by the full id (the host
 * might know an older name for a moment; the id is unambiguous). Lists fan out to every up
 * host and merge.
 */
export async function containerRoutes(app: FastifyInstance, opts: ContainerRouteOptions): Promise<void> {
  const { deps, placer, execs } = opts;

  /** The client's path with the container ref replaced by `id`, under the client's API version. */
  const hostPath = (request: FastifyRequest, id: string): string => {
    const url = request.url;
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const segments = path.split('/');
    segments[2] = id;
    return `/v${request.apiVersion}${segments.join('/')}${q < 0 ? '' : url.slice(q)}`;
  };

  /** The placement and its host, which must be up to be reached. */
  const reachable = async (ctx: RequestContext, ref: string): Promise<{ placement: Placement; host: ClusterHost }> => {
    const placement = await deps.placements.resolve(ctx, ref);
    const host = deps.hub.host(placement.value.hostId);
    if (!host || host.state !== 'up') {
      throw unavailable(`container ${ref} is on host ${host?.name ?? placement.value.hostId}, which is down: it cannot be reached until the host returns${placement.value.restartPolicy ? '' : ' (containers without a restart policy are not moved)'}`);
    }
    return { placement, host };
  };

  const forwardTo = async (request: FastifyRequest<IdParams>, reply: FastifyReply): Promise<Placement> => {
    const { placement } = await reachable(requestContext(request), request.params.id);
    await deps.forward(request, reply, placement.value.hostId, { path: hostPath(request, placement.id) });
    return placement;
  };

  // ContainerList
  app.get('/containers/json', async (request, reply) => {
    const ctx = requestContext(request);
    const limit = queryInt(request.query, 'limit');
    const hosts = deps.hosts.up();
    // The placement records say where each container lives. A host that has just come back still
    // holds the stale copies of what failed over until it is fenced: those are not the tenant's.
    const placedOn = new Map((await deps.placements.list(ctx)).map((p) => [p.id, p.value.hostId]));
    const perHost = await Promise.all(
      hosts.map(async (host) => {
        try {
          const list = await deps.hosts.json<Record<string, unknown>[]>(ctx, host.id, { method: 'GET', path: `/v${request.apiVersion}${request.url}` });
          return (list ?? []).filter((summary) => placedOn.get(String(summary.Id)) === host.id).map((summary) => summaryOnHost(summary, host));
        } catch (err) {
          // A host that went down in the middle of the listing is left out, as if it were down before.
          if (isKind(err, 'Unavailable')) return [];
          throw err;
        }
      }),
    );
    return reply.send(mergeSummaries(perHost, limit));
  });

  // ContainerCreate
  app.post('/containers/create', async (request, reply) => {
    const ctx = requestContext(request);
    const requested = queryString(request.query, 'name');
    let name = requested?.startsWith('/') ? requested.slice(1) : requested;
    if (name !== undefined && name !== '' && !VALID_NAME.test(name)) {
      throw invalidArgument(`Invalid container name (${requested}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    }
    const raw = request.body ?? {};
    if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidArgument('invalid request body: a JSON object is required');
    let body = raw as Record<string, unknown>;
    if (typeof body.Image !== 'string' || body.Image === '') throw invalidArgument('Config.Image must be specified');
    const policy = deps.tenants.policyOf(ctx.tenant);
    if (policy) body = { ...body, HostConfig: enforceCreatePolicy(policy, body.HostConfig) };
    const query = new URLSearchParams();
    const platform = queryString(request.query, 'platform');
    if (platform) query.set('platform', platform);
    const generated = name === undefined || name === '';
    for (let attempt = 0; ; attempt++) {
      if (generated) name = randomName();
      try {
        const place = (checked: Record<string, unknown>) => placer.create(ctx, { id: newId(), name: name!, body: checked, query: query.toString(), apiVersion: request.apiVersion });
        const answer = deps.quotas ? await deps.quotas.guardContainerCreate(ctx, body, place) : await place(body);
        return reply.code(answer.status).header('content-type', answer.contentType).send(answer.body);
      } catch (err) {
        // A generated name may be taken by chance: pick another, as dockerd does.
        if (generated && isKind(err, 'AlreadyExists') && attempt < 10) continue;
        throw err;
      }
    }
  });

  // ContainerInspect: with the host that runs it, and its ports at that host's address.
  app.get<IdParams>('/containers/:id/json', async (request, reply) => {
    const { placement, host } = await reachable(requestContext(request), request.params.id);
    await deps.forward(request, reply, host.id, {
      path: hostPath(request, placement.id),
      rewrite: (status, body) => (status === 200 ? inspectOnHost(JSON.parse(body.toString('utf8')) as Record<string, unknown>, host) : undefined),
    });
    return reply;
  });

  // ContainerRename: the placement (where names are unique per tenant) first, then the host.
  app.post<IdParams>('/containers/:id/rename', async (request, reply) => {
    const ctx = requestContext(request);
    const requested = queryString(request.query, 'name') ?? '';
    const name = requested.startsWith('/') ? requested.slice(1) : requested;
    if (!VALID_NAME.test(name)) throw invalidArgument(`Invalid container name (${requested}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const { placement } = await reachable(ctx, request.params.id);
    const oldName = placement.value.name;
    await deps.placements.update(ctx, placement.id, (value) => ({ ...value, name }));
    await deps.forward(request, reply, placement.value.hostId, { path: hostPath(request, placement.id) });
    if (reply.statusCode >= 300) await deps.placements.update(ctx, placement.id, (value) => ({ ...value, name: oldName }));
    return reply;
  });

  // ContainerDelete: the placement goes once the host has removed the container.
  app.delete<IdParams>('/containers/:id', async (request, reply) => {
    const ctx = requestContext(request);
    const placement = await deps.placements.resolve(ctx, request.params.id);
    const host = deps.hub.host(placement.value.hostId);
    if (!host || host.state !== 'up') {
      if (!queryBool(request.query, 'force')) {
        throw conflict(`container ${request.params.id} is on host ${host?.name ?? placement.value.hostId}, which is down: use --force to forget it (its copy is removed when the host returns)`);
      }
      // The host's copy, if it ever returns, has no placement any more: fencing removes it.
      await deps.placements.remove(ctx, placement.id);
      deps.scheduler.cluster.removeContainer(placement.id);
      return reply.code(204).send();
    }
    await deps.forward(request, reply, host.id, { path: hostPath(request, placement.id) });
    if (reply.statusCode < 300 || reply.statusCode === 404) {
      await deps.placements.remove(ctx, placement.id);
      deps.scheduler.cluster.removeContainer(placement.id);
    }
    return reply;
  });

  // ContainerPrune: on every up host; the placements of what they removed go too.
  app.post('/containers/prune', async (request, reply) => {
    const ctx = requestContext(request);
    let deleted: string[] = [];
    let reclaimed = 0;
    for (const host of deps.hosts.up()) {
      const result = await deps.hosts.json<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>(ctx, host.id, {
        method: 'POST',
        path: `/v${request.apiVersion}${request.url}`,
      });
      for (const id of result?.ContainersDeleted ?? []) {
        await deps.placements.remove(ctx, id);
        deps.scheduler.cluster.removeContainer(id);
      }
      deleted = deleted.concat(result?.ContainersDeleted ?? []);
      reclaimed += result?.SpaceReclaimed ?? 0;
    }
    return reply.send({ ContainersDeleted: deleted.length > 0 ? deleted : null, SpaceReclaimed: reclaimed });
  });

  // ContainerUpdate: the tenant's policy applies as on create.
  app.post<IdParams>('/containers/:id/update', async (request, reply) => {
    const policy = deps.tenants.policyOf(request.tenant);
    const body = request.body && typeof request.body === 'object' ? (request.body as Record<string, unknown>) : {};
    const ctx = requestContext(request);
    const { placement } = await reachable(ctx, request.params.id);
    const sent = policy ? enforceUpdatePolicy(policy, body) : body;
    // Under the tenant's quota lock; the new limits are recorded before the lock is let go.
    const update = async (): Promise<void> => {
      await deps.forward(request, reply, placement.value.hostId, { path: hostPath(request, placement.id), body: sent });
      if (reply.statusCode < 300) await recordUpdatedLimits(deps, ctx, placement.id, sent);
    };
    await (deps.quotas ? deps.quotas.guardContainerUpdate(ctx, placement.id, sent, update) : update());
    return reply;
  });

  // Stop and kill by the tenant: failover leaves such a container stopped. Start clears that.
  for (const action of ['stop', 'kill', 'start', 'restart'] as const) {
    app.post<IdParams>(`/containers/:id/${action}`, async (request, reply) => {
      const placement = await forwardTo(request, reply);
      const stoppedByUser = action === 'stop' || action === 'kill';
      // New placements leave the flag unset: unset and false both mean 'not stopped by the user'.
      if (reply.statusCode < 400 && (placement.value.stoppedByUser === true) !== stoppedByUser) {
        await deps.placements.update(requestContext(request), placement.id, (value) => ({ ...value, stoppedByUser }));
      }
      return reply;
    });
  }

  // ContainerExec: the exec id is remembered with its host for start, resize and inspect.
  app.post<IdParams>('/containers/:id/exec', async (request, reply) => {
    const ctx = requestContext(request);
    const body = request.body ?? {};
    if (typeof body !== 'object' || Array.isArray(body)) throw invalidArgument('invalid request body: a JSON object is required');
    const policy = deps.tenants.policyOf(ctx.tenant);
    if (policy) enforceExecPolicy(policy, body);
    const { placement, host } = await reachable(ctx, request.params.id);
    await deps.forward(request, reply, host.id, {
      path: hostPath(request, placement.id),
      rewrite: (status, answer) => {
        if (status === 201) {
          const created = JSON.parse(answer.toString('utf8')) as { Id?: string };
          if (typeof created.Id === 'string') execs.remember(ctx.tenant, created.Id, host.id);
        }
        return undefined;
      },
    });
    return reply;
  });

  // ContainerWait: a `--rm` container is gone once the wait for it ends; so is its placement.
  app.post<IdParams>('/containers/:id/wait', async (request, reply) => {
    const ctx = requestContext(request);
    const placement = await forwardTo(request, reply);
    if (placement.value.autoRemove) {
      reply.raw.once('finish', () => {
        void placer.forgetIfGone(ctx, placement).catch((err: unknown) => request.log.debug({ err }, 'could not check a removed container'));
      });
    }
    return reply;
  });

  // Everything else on one container (logs, attach, wait, top, stats, archive, export, …).
  app.route<IdParams>({
    method: ['GET', 'HEAD', 'POST', 'PUT'],
    url: '/containers/:id/*',
    exposeHeadRoute: false,
    handler: async (request, reply) => {
      await forwardTo(request, reply);
      return reply;
    },
  });
}

