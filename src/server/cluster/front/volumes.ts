import type { FastifyInstance } from 'fastify';
import type { RequestContext } from '../../../common/context.js';
import { invalidArgument, isKind } from '../../../common/errors.js';
import { newId } from '../../../common/ids.js';
import { requestContext } from '../../docker-api/request-context.js';
import type { Stored } from '../../store/store.js';
import type { ClusterHost } from '../agent-hub.js';
import type { FrontDeps } from './deps.js';
import { fanOut, holdersOf, leastLoaded, pathAndQuery, upHosts } from './fan-out.js';

/**
 * Named volumes across the cluster. A volume's data lives on one host's disk, so a volume
 * lives on one host: record kind `volume-placement` (tenant-scoped, id = name = the volume's
 * name) names it. A new volume goes to the up host holding the fewest of the tenant's
 * volumes (spread; ties to the least loaded host). Containers that mount it are placed on
 * that host (B1's placement pin calls `volumeHostOf`).
 *
 * Volumes an engine made by itself (`docker run -v name:/x` of a volume that did not exist)
 * are recorded after the create (`recordContainerVolumes`), and a volume found on a host
 * without a record (a crash between the engine's create and the record) is recorded when
 * first met.
 */
export const VOLUME_PLACEMENT_KIND = 'volume-placement';

export interface VolumePlacementValue {
  hostId: string;
}

interface VolumeView {
  Name: string;
  [key: string]: unknown;
}

export async function registerVolumeRoutes(app: FastifyInstance, deps: FrontDeps): Promise<void> {
  // VolumeList: every host's volumes.
  app.get('/volumes', async (request) => {
    const answers = await fanOut<{ Volumes?: VolumeView[] | null; Warnings?: string[] | null }>(deps, requestContext(request), { method: 'GET', path: request.url });
    const seen = new Set<string>();
    const volumes: VolumeView[] = [];
    for (const answer of answers) {
      for (const volume of answer.value.Volumes ?? []) {
        if (seen.has(volume.Name)) continue;
        seen.add(volume.Name);
        volumes.push(volume);
      }
    }
    const warnings = answers.flatMap((answer) => answer.value.Warnings ?? []);
    return { Volumes: volumes, Warnings: warnings.length > 0 ? warnings : null };
  });

  // VolumeCreate: on the volume's host when it exists, else on a host chosen by spread.
  app.post('/volumes/create', async (request, reply) => {
    const ctx = requestContext(request);
    const body = request.body ?? {};
    if (typeof body !== 'object' || Array.isArray(body)) throw invalidArgument('invalid request body: a JSON object is required');
    const named = (body as { Name?: unknown }).Name;
    if (named !== undefined && typeof named !== 'string') throw invalidArgument('Name must be a string');
    const name = named === undefined || named === '' ? newId() : named;
    const create = async (): Promise<VolumeView> => {
      const existing = await volumeHostOf(deps, ctx, name);
      const hostId = existing ?? (await spreadHost(deps, ctx)).id;
      const created = await deps.hosts.json<VolumeView>(ctx, hostId, { method: 'POST', path: '/volumes/create', body: { ...body, Name: name } });
      if (existing === undefined) await record(deps, ctx, created.Name, hostId);
      return created;
    };
    return reply.code(201).send(deps.quotas ? await deps.quotas.guardVolumeCreate(ctx, name, create) : await create());
  });

  // VolumePrune (before /volumes/:name): every host prunes its own; records follow.
  app.post('/volumes/prune', async (request) => {
    const ctx = requestContext(request);
    const answers = await fanOut<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>(deps, ctx, { method: 'POST', path: request.url });
    const deleted = answers.flatMap((answer) => answer.value.VolumesDeleted ?? []);
    for (const name of deleted) await forget(deps, ctx, name);
    return { VolumesDeleted: deleted.length > 0 ? deleted : null, SpaceReclaimed: answers.reduce((sum, answer) => sum + (answer.value.SpaceReclaimed ?? 0), 0) };
  });

  // VolumeInspect
  app.get<{ Params: { name: string } }>('/volumes/:name', async (request) => {
    const ctx = requestContext(request);
    const hostId = (await volumeHostOf(deps, ctx, request.params.name)) ?? upHosts(deps)[0]!.id;
    return deps.hosts.json(ctx, hostId, { method: 'GET', path: `/volumes/${encodeURIComponent(request.params.name)}` });
  });

  // VolumeDelete
  app.delete<{ Params: { name: string } }>('/volumes/:name', async (request, reply) => {
    const ctx = requestContext(request);
    const name = request.params.name;
    const hostId = (await volumeHostOf(deps, ctx, name)) ?? upHosts(deps)[0]!.id;
    const { query } = pathAndQuery(request.url);
    try {
      await deps.hosts.json(ctx, hostId, { method: 'DELETE', path: `/volumes/${encodeURIComponent(name)}${query}` });
    } catch (err) {
      if (isKind(err, 'NotFound')) await forget(deps, ctx, name);
      throw err;
    }
    await forget(deps, ctx, name);
    return reply.code(204).send();
  });
}

async function recordOf(deps: FrontDeps, ctx: RequestContext, name: string): Promise<Stored<VolumePlacementValue> | undefined> {
  try {
    return await deps.store.get<VolumePlacementValue>(ctx, VOLUME_PLACEMENT_KIND, name);
  } catch (err) {
    if (isKind(err, 'NotFound')) return undefined;
    throw err;
  }
}

/**
 * The host holding the tenant's volume `name`, or undefined when no host has it. A volume
 * found on an up host without a record is recorded there.
 */
export async function volumeHostOf(deps: FrontDeps, ctx: RequestContext, name: string): Promise<string | undefined> {
  const stored = await recordOf(deps, ctx, name);
  if (stored !== undefined) return stored.value.hostId;
  if (name === '' || name.includes('/')) return undefined;
  const [holder] = await holdersOf(deps, ctx, `/volumes/${encodeURIComponent(name)}`);
  if (holder === undefined) return undefined;
  await record(deps, ctx, name, holder.host.id);
  return holder.host.id;
}

/**
 * Records the named volumes a container just created on `hostId` mounts (the engine makes a
 * missing one itself): call with the container's inspect after the create succeeded.
 */
export async function recordContainerVolumes(deps: FrontDeps, ctx: RequestContext, hostId: string, inspect: { Mounts?: { Type?: string; Name?: string }[] | null }): Promise<void> {
  for (const mount of inspect.Mounts ?? []) {
    if (mount.Type !== 'volume' || typeof mount.Name !== 'string' || mount.Name === '') continue;
    if ((await recordOf(deps, ctx, mount.Name)) === undefined) await record(deps, ctx, mount.Name, hostId);
  }
}

async function record(deps: FrontDeps, ctx: RequestContext, name: string, hostId: string): Promise<void> {
  try {
    await deps.store.create<VolumePlacementValue>(ctx, VOLUME_PLACEMENT_KIND, { id: name, name, value: { hostId } });
  } catch (err) {
    // Recorded meanwhile by a concurrent create of the same volume: the first record stands.
    if (!isKind(err, 'AlreadyExists')) throw err;
  }
}

async function forget(deps: FrontDeps, ctx: RequestContext, name: string): Promise<void> {
  await deps.store.delete(ctx, VOLUME_PLACEMENT_KIND, name).catch((err: unknown) => {
    if (!isKind(err, 'NotFound')) throw err;
  });
}

/** The up, uncordoned host holding the fewest of this tenant's volumes (ties: least loaded). */
async function spreadHost(deps: FrontDeps, ctx: RequestContext): Promise<ClusterHost> {
  const hosts = upHosts(deps).filter((host) => !host.cordoned);
  if (hosts.length === 0) return leastLoaded(deps);
  const counts = new Map<string, number>();
  for (const stored of await deps.store.list<VolumePlacementValue>(ctx, VOLUME_PLACEMENT_KIND)) {
    counts.set(stored.value.hostId, (counts.get(stored.value.hostId) ?? 0) + 1);
  }
  const fewest = Math.min(...hosts.map((host) => counts.get(host.id) ?? 0));
  return leastLoaded(deps, hosts.filter((host) => (counts.get(host.id) ?? 0) === fewest));
}
