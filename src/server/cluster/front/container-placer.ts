import type { RequestContext } from '../../../common/context.js';
import { isKind } from '../../../common/errors.js';
import { CONTAINER_ID_HEADER } from '../../docker-api/control-plane-ids.js';
import type { ContainerRecord as ScheduledContainer } from '../../scheduler/types.js';
import type { PlacementRequest } from '../../scheduler/types.js';
import type { Placement as SchedulerPlacement } from '../../scheduler/scheduler.js';
import type { Placement } from '../placements.js';
import type { FrontDeps } from './deps.js';
import { namedVolumesOf, placementRequestOf, restartPolicyOf } from './placement-request.js';
import { engineError, readAll } from './proxy.js';

/** What the placer asks of the image and volume side of the front (front/image-transfer.ts, front/volumes.ts). */
export interface PlacerHooks {
  /** Makes sure a host holds an image before a container of it is created there. */
  ensureImage(ctx: RequestContext, hostId: string, imageRef: string): Promise<void>;
  /** The image id a tenant's reference names on some host (image locality), if any host has it. */
  imageIdOf?(ctx: RequestContext, imageRef: string): Promise<string | undefined>;
  /**
   * Brings the cluster networks a create names onto a host that lacks them (one that joined
   * while the create was on its way); true when it made any, so the create is worth a retry.
   */
  ensureNetworks?(ctx: RequestContext, hostId: string, body: Record<string, unknown>): Promise<boolean>;
  /** Told after the host created the container (e.g. to record the volumes it made there). */
  created?(ctx: RequestContext, hostId: string, id: string): Promise<void>;
  /**
   * Decides a new container's host in place of this server's scheduler (with several
   * servers, the leader decides: cluster/ha/placement-broker.ts).
   */
  place?(request: PlacementRequest): Promise<SchedulerPlacement>;
}

export interface CreateInput {
  id: string;
  name: string;
  body: Record<string, unknown>;
  /** Create query without `name` (e.g. `platform=linux/amd64`), '' for none. */
  query: string;
  /** API version the client spoke, for the engine's version-dependent defaults. */
  apiVersion: string;
}

/** The engine's answer to a create, passed back to the tenant as it is. */
export interface EngineAnswer {
  status: number;
  body: Buffer;
  contentType: string;
}

/**
 * Creating a tenant's container somewhere in the cluster, and creating it again elsewhere.
 *
 * Create: scheduler.place (a claim) → placement record written (phase `creating`) → image
 * on the host → the host's engine creates the container with the id the front chose → the
 * record becomes `created` and the claim is confirmed. Any failure releases the claim and
 * deletes the record, so nothing half-created stays visible.
 *
 * Move (failover, drain): the record is pointed at the new host in phase `moving` first, so
 * a control plane that dies half way finishes the move at start-up instead of losing the
 * container; then the same id, name and create body are sent to the new host.
 */
export class ContainerPlacer {
  constructor(
    private readonly deps: FrontDeps,
    private readonly hooks: PlacerHooks,
  ) {}

  async create(ctx: RequestContext, input: CreateInput): Promise<EngineAnswer> {
    try {
      return await this.createOnce(ctx, input);
    } catch (err) {
      // The name may be held by a `--rm` container its host has removed meanwhile.
      if (!isKind(err, 'AlreadyExists')) throw err;
      const holder = await this.deps.placements.resolve(ctx, input.name).catch(() => undefined);
      if (!holder || !(await this.forgetIfGone(ctx, holder))) throw err;
      return this.createOnce(ctx, input);
    }
  }

  /**
   * Drops a placement whose container its (up) host no longer has: a `--rm` container the
   * host removed when it exited. True when it was dropped.
   */
  async forgetIfGone(ctx: RequestContext, placement: Placement): Promise<boolean> {
    if (placement.value.phase !== 'created' || this.deps.hub.host(placement.value.hostId)?.state !== 'up') return false;
    if (await this.existsOn(ctx, placement.value.hostId, placement.id)) return false;
    await this.deps.placements.remove(ctx, placement.id);
    this.deps.scheduler.cluster.removeContainer(placement.id);
    return true;
  }

  private async createOnce(ctx: RequestContext, input: CreateInput): Promise<EngineAnswer> {
    const pinned = await this.volumeHosts(ctx, input.body);
    const request = placementRequestOf(ctx.tenant, input.id, input.name, input.body, pinned);
    // Hosts report image ids, not tenants' names: locality needs the id the name stands for.
    const imageId = await this.hooks.imageIdOf?.(ctx, request.image);
    const located = imageId ? { ...request, image: imageId } : request;
    const claim = this.hooks.place ? await this.hooks.place(located) : this.deps.scheduler.place(located);
    let recorded = false;
    try {
      await this.deps.placements.create(ctx, input.id, {
        hostId: claim.hostId,
        name: input.name,
        image: request.image,
        createBody: input.body,
        createQuery: input.query,
        restartPolicy: restartPolicyOf(input.body),
        resources: { ...request.resources },
        labels: { ...request.labels },
        phase: 'creating',
        ...(autoRemoves(input.body) ? { autoRemove: true } : {}),
        apiVersion: input.apiVersion,
        createdAt: new Date().toISOString(),
      });
      recorded = true;
      const answer = await this.createOnHost(ctx, claim.hostId, input);
      if (answer.status >= 300) throw answer;
      await this.deps.placements.update(ctx, input.id, (value) => ({ ...value, phase: 'created' }));
      claim.confirm();
      await this.hooks.created?.(ctx, claim.hostId, input.id).catch((err: unknown) => this.deps.logger.warn({ err, id: input.id }, 'after-create bookkeeping failed'));
      return answer;
    } catch (err) {
      claim.release();
      if (recorded) await this.deps.placements.remove(ctx, input.id).catch((cleanupErr: unknown) => this.deps.logger.error({ err: cleanupErr, id: input.id }, 'could not drop the placement of a failed create'));
      if (isEngineAnswer(err)) return err;
      throw err;
    }
  }

  /**
   * Places an existing container again on another host (the record's host is down or being
   * drained): same id, name and create body; started when `start`. Returns the new host id.
   */
  async move(ctx: RequestContext, placement: Placement, options: { start: boolean; avoidHost: string }): Promise<string> {
    const value = placement.value;
    const pinned = await this.volumeHosts(ctx, value.createBody);
    const request = placementRequestOf(ctx.tenant, placement.id, value.name, value.createBody, pinned);
    // The copy on the old host no longer counts; a hard rule keeps the scheduler off that host.
    this.deps.scheduler.cluster.removeContainer(placement.id);
    const claim = this.deps.scheduler.place({ ...request, env: [...request.env, `constraint:node!=${options.avoidHost}`] });
    let recorded = false;
    try {
      recorded = true;
      await this.deps.placements.update(ctx, placement.id, (current) => ({
        ...current,
        hostId: claim.hostId,
        phase: 'moving',
        startAfterMove: options.start,
      }));
      await this.finishMove(ctx, claim.hostId, placement.id);
      claim.confirm();
      return claim.hostId;
    } catch (err) {
      claim.release();
      // Back to where it was; a copy the new host may have made is stale now and fenced later.
      if (recorded) {
        await this.deps.placements
          .update(ctx, placement.id, (current) => ({ ...current, hostId: value.hostId, phase: value.phase === 'moving' ? 'created' : value.phase }))
          .catch((revertErr: unknown) => this.deps.logger.error({ err: revertErr, id: placement.id }, 'could not restore the placement of a failed move'));
      }
      throw err;
    }
  }

  /**
   * Completes a move recorded in phase `moving`: creates the container on the record's host
   * unless it is there already, starts it when asked, and marks the record `created`.
   */
  async finishMove(ctx: RequestContext, hostId: string, id: string): Promise<void> {
    const placement = await this.deps.placements.find(ctx, id);
    if (!placement || placement.value.phase !== 'moving' || placement.value.hostId !== hostId) return;
    const value = placement.value;
    const exists = await this.existsOn(ctx, hostId, id);
    if (!exists) {
      const answer = await this.createOnHost(ctx, hostId, {
        id,
        name: value.name,
        body: value.createBody,
        query: value.createQuery,
        apiVersion: value.apiVersion ?? '1.47',
      });
      if (answer.status >= 300) throw engineError(answer.status, answer.body);
      await this.hooks.created?.(ctx, hostId, id).catch((err: unknown) => this.deps.logger.warn({ err, id }, 'after-create bookkeeping failed'));
    }
    if (value.startAfterMove) {
      const started = await this.deps.hosts.request(ctx, hostId, { method: 'POST', path: `/containers/${id}/start` });
      const body = await readAll(started);
      const status = started.statusCode ?? 500;
      // 304: it is running already (a move that was finished once and interrupted after).
      if (status >= 300 && status !== 304) throw engineError(status, body);
    }
    await this.deps.placements.update(ctx, id, (current) => {
      const { startAfterMove: _done, ...rest } = current;
      return { ...rest, phase: 'created' };
    });
  }

  /** Whether the tenant's container `id` exists on the host (inspect answers 200). */
  async existsOn(ctx: RequestContext, hostId: string, id: string): Promise<boolean> {
    const response = await this.deps.hosts.request(ctx, hostId, { method: 'GET', path: `/containers/${id}/json` });
    const body = await readAll(response);
    if (response.statusCode === 200) return true;
    if (response.statusCode === 404) return false;
    throw engineError(response.statusCode ?? 500, body);
  }

  /** What the scheduler accounts for a placement (start-up, host returns, moves). */
  static scheduled(tenant: string, placement: Placement): ScheduledContainer {
    return {
      tenant,
      id: placement.id,
      name: placement.value.name,
      hostId: placement.value.hostId,
      image: placement.value.image,
      labels: placement.value.labels,
      resources: placement.value.resources,
    };
  }

  private async createOnHost(ctx: RequestContext, hostId: string, input: CreateInput): Promise<EngineAnswer> {
    await this.hooks.ensureImage(ctx, hostId, String(input.body.Image));
    const answer = await this.forwardCreate(ctx, hostId, input);
    if (answer.status !== 404 || !/network .* not found/i.test(answer.body.toString('utf8'))) return answer;
    // The host lacks a network the cluster has: it joined after the network was made and its
    // catch-up has not reached this one yet. Make it now and ask once more.
    return (await this.hooks.ensureNetworks?.(ctx, hostId, input.body)) ? this.forwardCreate(ctx, hostId, input) : answer;
  }

  private async forwardCreate(ctx: RequestContext, hostId: string, input: CreateInput): Promise<EngineAnswer> {
    const query = new URLSearchParams(input.query);
    query.set('name', input.name);
    const response = await this.deps.hosts.request(ctx, hostId, {
      method: 'POST',
      path: `/v${input.apiVersion}/containers/create?${query.toString()}`,
      headers: { [CONTAINER_ID_HEADER]: input.id, 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(input.body)),
    });
    const body = await readAll(response);
    return { status: response.statusCode ?? 500, body, contentType: String(response.headers['content-type'] ?? 'application/json') };
  }

  /** Hosts holding the named volumes the container mounts (its placement is pinned there). */
  private async volumeHosts(ctx: RequestContext, body: Record<string, unknown>): Promise<string[]> {
    const lookup = this.deps.volumeHostOf;
    if (!lookup) return [];
    const hosts = new Set<string>();
    for (const name of namedVolumesOf(body)) {
      const hostId = await lookup(ctx, name);
      if (hostId !== undefined) hosts.add(hostId);
    }
    return [...hosts];
  }
}

function isEngineAnswer(value: unknown): value is EngineAnswer {
  return typeof value === 'object' && value !== null && 'status' in value && 'body' in value && Buffer.isBuffer((value as EngineAnswer).body);
}

function autoRemoves(body: Record<string, unknown>): boolean {
  const hostConfig = body.HostConfig as { AutoRemove?: unknown } | undefined;
  return hostConfig?.AutoRemove === true;
}
