import type { FastifyInstance, FastifyReply } from 'fastify';
import { quotaLabels } from '../../tenancy/quotas.js';
import type { RequestContext } from '../../../common/context.js';
import { isKind } from '../../../common/errors.js';
import { requestContext } from '../../docker-api/request-context.js';
import { pingHeaders } from '../../docker-api/system.js';
import type { SystemService } from '../../system/system-service.js';
import { formatBytes } from '../../scheduler/resources.js';
import type { ClusterHost } from '../agent-hub.js';
import type { FrontDeps } from './deps.js';

/**
 * The cluster's system operations: SystemPing, SystemVersion (the control plane's build),
 * SystemInfo (the cluster as one host: CPUs and memory summed over up hosts, the host list
 * as Docker Swarm (standalone) showed it in SystemStatus, and as daemon labels the CLI
 * prints) and SystemDataUsage (every up host's, together).
 */
export async function systemRoutes(app: FastifyInstance, opts: { deps: FrontDeps; system: SystemService; strategyOf: (tenant: string) => string }): Promise<void> {
  const { deps, system } = opts;

  // SystemPingHead
  app.head('/_ping', async (_request, reply) => pingHeaders(reply).header('Content-Length', '0').code(200).send());
  // SystemPing
  app.get('/_ping', async (_request, reply) => pingHeaders(reply).send('OK'));
  // SystemVersion
  app.get('/version', async () => system.version());

  /** One JSON answer per up host; hosts that fail meanwhile are left out. */
  const fanOut = async <T>(ctx: RequestContext, path: string): Promise<{ host: ClusterHost; answer: T }[]> => {
    const answers = await Promise.all(
      deps.hosts.up().map(async (host): Promise<{ host: ClusterHost; answer: T } | undefined> => {
        try {
          return { host, answer: await deps.hosts.json<T>(ctx, host.id, { method: 'GET', path }) };
        } catch (err) {
          if (isKind(err, 'Unavailable')) return undefined;
          throw err;
        }
      }),
    );
    return answers.filter((a): a is { host: ClusterHost; answer: T } => a !== undefined);
  };

  // SystemInfo
  app.get('/info', async (request) => {
    const ctx = requestContext(request);
    const base = await system.info(ctx);
    const perHost = await fanOut<{ Containers?: number; ContainersRunning?: number; ContainersPaused?: number; ContainersStopped?: number; Images?: number }>(ctx, '/info');
    const images = await fanOut<{ Id: string }[]>(ctx, '/images/json');
    // The tenant's quotas and use across the cluster, as labels like the engine's (front/quotas.ts).
    const quota = deps.quotas ? await deps.quotas.usage(ctx) : undefined;
    const all = deps.hub.hosts().slice().sort((a, b) => a.name.localeCompare(b.name));
    const up = all.filter((h) => h.state === 'up');
    const containersOn = new Map<string, number>();
    for (const { host, answer } of perHost) containersOn.set(host.id, answer.Containers ?? 0);
    const sum = (field: 'Containers' | 'ContainersRunning' | 'ContainersPaused' | 'ContainersStopped'): number =>
      perHost.reduce((total, { answer }) => total + (answer[field] ?? 0), 0);
    const status: [string, string][] = [
      ['Role', 'primary'],
      ['Strategy', opts.strategyOf(ctx.tenant)],
      ['Filters', 'health, capacity, constraint, affinity'],
      ['Nodes', String(all.length)],
    ];
    const labels: string[] = [];
    for (const host of all) {
      const health = host.state === 'up' ? (host.cordoned ? 'Cordoned' : 'Healthy') : 'Unhealthy';
      status.push(
        [` ${host.name}`, host.address],
        ['  └ ID', host.id],
        ['  └ Status', health],
        ['  └ Containers', String(containersOn.get(host.id) ?? 0)],
        ['  └ CPUs', String(host.capacity.cpus)],
        ['  └ Memory', formatBytes(host.capacity.memoryBytes)],
        ['  └ Labels', Object.entries(host.labels).map(([k, v]) => `${k}=${v}`).join(', ')],
        ['  └ ServerVersion', host.engineVersion],
      );
      labels.push(`berth.host.${host.name}=${health.toLowerCase()} ${host.address} cpus=${host.capacity.cpus} memory=${formatBytes(host.capacity.memoryBytes)}`);
    }
    return {
      ...base,
      Containers: sum('Containers'),
      ContainersRunning: sum('ContainersRunning'),
      ContainersPaused: sum('ContainersPaused'),
      ContainersStopped: sum('ContainersStopped'),
      Images: new Set(images.flatMap(({ answer }) => (answer ?? []).map((i) => i.Id))).size,
      NCPU: up.reduce((total, h) => total + h.capacity.cpus, 0),
      MemTotal: up.reduce((total, h) => total + h.capacity.memoryBytes, 0),
      DriverStatus: [],
      // The control plane's own machine says nothing about the hosts containers run on.
      Warnings: [],
      SystemStatus: status,
      Labels: [...base.Labels, ...labels, ...(quota ? quotaLabels(quota.quotas, quota.usage) : [])],
    };
  });

  // SystemDataUsage
  app.get('/system/df', async (request) => {
    const ctx = requestContext(request);
    const q = request.url.indexOf('?');
    type Df = { LayersSize?: number; Images?: { Id: string }[] | null; Containers?: unknown[] | null; Volumes?: unknown[] | null; BuildCache?: unknown[] | null };
    const perHost = await fanOut<Df>(ctx, `/v${request.apiVersion}/system/df${q < 0 ? '' : request.url.slice(q)}`);
    const concat = <T>(pick: (df: Df) => T[] | null | undefined): T[] | null => {
      const lists = perHost.map(({ answer }) => pick(answer));
      return lists.every((l) => l === null || l === undefined) ? null : lists.flatMap((l) => l ?? []);
    };
    const images = concat((df) => df.Images);
    const seen = new Set<string>();
    return {
      LayersSize: perHost.reduce((total, { answer }) => total + (answer.LayersSize ?? 0), 0),
      // An image held by several hosts is one image to the tenant.
      Images: images === null ? null : images.filter((i) => (seen.has(i.Id) ? false : (seen.add(i.Id), true))),
      Containers: concat((df) => df.Containers),
      Volumes: concat((df) => df.Volumes),
      BuildCache: concat((df) => df.BuildCache),
    };
  });
}
