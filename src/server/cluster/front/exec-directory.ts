import type { FastifyInstance } from 'fastify';
import type { RequestContext } from '../../../common/context.js';
import { notFound } from '../../../common/errors.js';
import { requestContext } from '../../docker-api/request-context.js';
import type { FrontDeps } from './deps.js';
import { readAll } from './proxy.js';

/** Remembered exec instances at most; the oldest are forgotten first (found again by asking hosts). */
const MAX_EXECS = 10_000;

/**
 * Which host holds an exec instance. Exec ids live only as long as the engine that made
 * them, so the front keeps them in memory; one it does not know (after a control plane
 * restart, or forgotten) is looked for on the tenant's up hosts.
 */
export class ExecDirectory {
  private readonly hostByExec = new Map<string, string>();

  constructor(private readonly deps: FrontDeps) {}

  remember(tenant: string, execId: string, hostId: string): void {
    this.hostByExec.set(`${tenant}/${execId}`, hostId);
    if (this.hostByExec.size > MAX_EXECS) this.hostByExec.delete(this.hostByExec.keys().next().value!);
  }

  async hostOf(ctx: RequestContext, execId: string): Promise<string> {
    const known = this.hostByExec.get(`${ctx.tenant}/${execId}`);
    if (known !== undefined) return known;
    for (const host of this.deps.hosts.up()) {
      const response = await this.deps.hosts.request(ctx, host.id, { method: 'GET', path: `/exec/${encodeURIComponent(execId)}/json` }).catch(() => undefined);
      if (!response) continue;
      await readAll(response);
      if (response.statusCode === 200) {
        this.remember(ctx.tenant, execId, host.id);
        return host.id;
      }
    }
    throw notFound(`No such exec instance: ${execId}`);
  }
}

type IdParams = { Params: { id: string } };

/** ExecStart, ExecResize, ExecInspect: forwarded to the host holding the exec instance. */
export async function execRoutes(app: FastifyInstance, opts: { deps: FrontDeps; execs: ExecDirectory }): Promise<void> {
  app.route<IdParams>({
    method: ['GET', 'POST'],
    url: '/exec/:id/*',
    handler: async (request, reply) => {
      const hostId = await opts.execs.hostOf(requestContext(request), request.params.id);
      await opts.deps.forward(request, reply, hostId);
      return reply;
    },
  });
}
