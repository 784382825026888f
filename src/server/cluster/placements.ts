import type { RequestContext } from '../../common/context.js';
import { alreadyExists, isKind, notFound } from '../../common/errors.js';
import type { Resources } from '../scheduler/types.js';
import type { Store, Stored } from '../store/store.js';

/**
 * Where a tenant's container lives in the cluster: one record per container in the control
 * plane's store (kind `placement`, tenant-scoped, id = the container's id, name = its name).
 * The store therefore gives Docker's id / name / unique-prefix resolution and per-tenant name
 * uniqueness.
 *
 * Lifecycle: written (phase `creating`) before the host is asked to create the container,
 * so a crash between the two leaves a record the start-up reconcile can check against the
 * host; `created` once the host confirmed; moved (hostId changes, phase `moving` until the
 * new host has it) by failover and drain; deleted after the host confirmed the removal.
 *
 * Invariant: a container runs only on the host its placement names; copies elsewhere are
 * stale (fencing removes them).
 */
export interface PlacementValue {
  hostId: string;
  /** The container's name without the leading slash. */
  name: string;
  image: string;
  /** The create body as the tenant sent it (the front re-sends it to place the container again). */
  createBody: Record<string, unknown>;
  /** The create query string (platform), without `name`. */
  createQuery: string;
  /** HostConfig.RestartPolicy.Name: '' / 'no', 'always', 'unless-stopped', 'on-failure'. */
  restartPolicy: string;
  resources: Resources;
  labels: Record<string, string>;
  /**
   * creating: the host has not confirmed the create yet (the tenant has no answer yet);
   * created: the container exists on hostId; moving: hostId is the new host of a failover or
   * drain that may not have finished (start-up reconcile finishes it).
   */
  phase: 'creating' | 'created' | 'moving';
  /** HostConfig.AutoRemove (`--rm`): the host removes the container itself when it exits. */
  autoRemove?: boolean;
  /** With phase `moving`: start the container once it exists on the new host. */
  startAfterMove?: boolean;
  /** The API version of the tenant's create (re-sent as is when the container moves). */
  apiVersion?: string;
  /**
   * Set when the tenant stopped the container (docker stop / kill); failover leaves an
   * unless-stopped container stopped, as dockerd does at its own restart.
   */
  stoppedByUser?: boolean;
  createdAt: string;
}

export type Placement = Stored<PlacementValue>;

export const PLACEMENT_KIND = 'placement';

export class PlacementRegistry {
  constructor(private readonly store: Store) {}

  /** Resolves what the tenant typed (id, name with or without '/', id prefix). */
  async resolve(ctx: RequestContext, ref: string): Promise<Placement> {
    const name = ref.startsWith('/') ? ref.slice(1) : ref;
    try {
      return await this.store.lookup<PlacementValue>(ctx, PLACEMENT_KIND, name);
    } catch (err) {
      if (isKind(err, 'NotFound')) throw notFound(`No such container: ${ref}`);
      throw err;
    }
  }

  async find(ctx: RequestContext, id: string): Promise<Placement | undefined> {
    try {
      return await this.store.get<PlacementValue>(ctx, PLACEMENT_KIND, id);
    } catch (err) {
      if (isKind(err, 'NotFound')) return undefined;
      throw err;
    }
  }

  list(ctx: RequestContext): Promise<Placement[]> {
    return this.store.list<PlacementValue>(ctx, PLACEMENT_KIND);
  }

  /** Every tenant's placements: for start-up, failover and drain, never for a request. */
  all(): Promise<(Placement & { tenant: string })[]> {
    return this.store.listAllTenants<PlacementValue>(PLACEMENT_KIND);
  }

  /** Records a new placement; the name is the tenant's and unique among their containers. */
  async create(ctx: RequestContext, id: string, value: PlacementValue): Promise<Placement> {
    try {
      return await this.store.create<PlacementValue>(ctx, PLACEMENT_KIND, { id, name: value.name, value });
    } catch (err) {
      if (!isKind(err, 'AlreadyExists')) throw err;
      const holder = await this.store.lookup<PlacementValue>(ctx, PLACEMENT_KIND, value.name).catch(() => undefined);
      throw alreadyExists(
        `Conflict. The container name "/${value.name}" is already in use by container "${holder?.id ?? id}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
  }

  /** Read-modify-write of one placement, retried on a concurrent change. */
  async update(ctx: RequestContext, id: string, change: (value: PlacementValue) => PlacementValue): Promise<Placement> {
    for (;;) {
      const current = await this.store.get<PlacementValue>(ctx, PLACEMENT_KIND, id);
      const value = change(current.value);
      try {
        return await this.store.update<PlacementValue>(ctx, PLACEMENT_KIND, id, {
          value,
          name: value.name,
          expectedRevision: current.revision,
        });
      } catch (err) {
        if (isKind(err, 'Conflict')) continue;
        if (isKind(err, 'AlreadyExists')) {
          throw alreadyExists(`Conflict. The container name "/${value.name}" is already in use. You have to remove (or rename) that container to be able to reuse that name.`);
        }
        throw err;
      }
    }
  }

  async remove(ctx: RequestContext, id: string): Promise<void> {
    try {
      await this.store.delete(ctx, PLACEMENT_KIND, id);
    } catch (err) {
      if (!isKind(err, 'NotFound')) throw err;
    }
  }
}
