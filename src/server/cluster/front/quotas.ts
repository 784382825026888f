import type { RequestContext } from '../../../common/context.js';
import { limitsOfCreate, QuotaService, type QuotaUsageSources } from '../../tenancy/quota-service.js';
import { limitsAfterUpdate } from '../../tenancy/quotas.js';
import { DEFAULT_POLICY } from '../../tenancy/policy.js';
import type { TenantService } from '../../tenancy/tenant-service.js';
import type { FrontDeps } from './deps.js';
import { fanOut } from './fan-out.js';
import { CLUSTER_NETWORK_KIND } from './networks.js';
import { VOLUME_PLACEMENT_KIND } from './volumes.js';

/**
 * A tenant's use across the cluster, for the same QuotaService the single-host engine runs,
 * counted where the control plane keeps the truth:
 * - containers, CPUs, memory: the placement records and the create bodies they hold (written
 *   before the host is asked, so a create in flight counts; what `docker update` changed on a
 *   host afterwards is not seen);
 * - networks: the cluster-network records; volumes: the volume-placement records;
 * - images and disk: asked of the up hosts (a host that is down is not counted; an image held
 *   by several hosts counts once, by id).
 */
export function frontQuotaSources(deps: Pick<FrontDeps, 'placements' | 'store' | 'hosts' | 'logger'>): QuotaUsageSources {
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const imageIds = async (ctx: RequestContext): Promise<Set<string>> => {
    const lists = await fanOut<{ Id: string }[]>(deps, ctx, { method: 'GET', path: '/images/json' });
    return new Set(lists.flatMap((answer) => answer.value.map((image) => image.Id)));
  };
  return {
    containers: async (ctx) =>
      (await deps.placements.list(ctx)).map(({ id, value }) => ({ id, name: value.name, ...limitsOfCreate(value.createBody) })),
    volumeNames: async (ctx) => (await deps.store.list(ctx, VOLUME_PLACEMENT_KIND)).map((record) => record.id),
    networkCount: async (ctx) => (await deps.store.list(ctx, CLUSTER_NETWORK_KIND)).length,
    imageCount: async (ctx) => (await imageIds(ctx)).size,
    hasImage: async (ctx, ref) => {
      const answers = await fanOut<unknown>(deps, ctx, { method: 'GET', path: `/images/json?filters=${encodeURIComponent(JSON.stringify({ reference: [ref] }))}` });
      return answers.some((answer) => Array.isArray(answer.value) && answer.value.length > 0);
    },
    diskBytes: async (ctx) => {
      type Df = { LayersSize?: number; Containers?: { SizeRw?: number }[]; Volumes?: { UsageData?: { Size?: number } }[] };
      const answers = await fanOut<Df>(deps, ctx, { method: 'GET', path: '/system/df' });
      return answers.reduce((sum, { value: df }) => {
        const containers = (df.Containers ?? []).reduce((s, c) => s + num(c.SizeRw), 0);
        const volumes = (df.Volumes ?? []).reduce((s, v) => s + Math.max(num(v.UsageData?.Size), 0), 0);
        return sum + num(df.LayersSize) + containers + volumes;
      }, 0);
    },
  };
}

/**
 * After a host accepted `docker update`: the placement's create body takes the new limits, so
 * quotas count them (and a failover or drain re-creates the container with them). Only the
 * limits quotas count are carried; the scheduler's reservation of the placement is unchanged.
 */
export async function recordUpdatedLimits(deps: Pick<FrontDeps, 'placements'>, ctx: RequestContext, id: string, update: Record<string, unknown>): Promise<void> {
  await deps.placements.update(ctx, id, (value) => {
    const hc = (value.createBody.HostConfig ?? {}) as Record<string, unknown>;
    const after = limitsAfterUpdate(limitsOfCreate(value.createBody), update);
    return { ...value, createBody: { ...value.createBody, HostConfig: { ...hc, ...after } } };
  });
}

/** The control plane's quota service: the tenants' quotas over the cluster's use. */
export function frontQuotaService(deps: Pick<FrontDeps, 'placements' | 'store' | 'hosts' | 'logger'>, tenants: TenantService): QuotaService {
  return new QuotaService({
    sources: frontQuotaSources(deps),
    quotasOf: (tenant) => tenants.quotasOf(tenant),
    defaultMemoryOf: (tenant) => tenants.policyOf(tenant)?.defaultMemory ?? DEFAULT_POLICY.defaultMemory,
  });
}
