import type { Logger } from '../../../common/logging.js';
import type { Scheduler } from '../../scheduler/scheduler.js';
import type { Store, StoreWatch } from '../../store/store.js';
import { TenantService } from '../../tenancy/tenant-service.js';
import { ContainerPlacer } from '../front/container-placer.js';
import type { PlacementValue } from '../placements.js';

/**
 * Keeps this server's in-memory indexes in step with the writes other servers make to the
 * shared store (etcd): tenants and credentials (so a tenant made at one server can log in at
 * any), and placements (so every server's scheduler counts every container, wherever it was
 * placed). Hosts are followed by the agent hub itself. Changes come by watch, never by polling.
 * Only for a shared store: on SQLite (one server) every write is this server's own.
 */
export async function followSharedStore(deps: { store: Store; tenants: TenantService; scheduler: Scheduler; logger: Logger }): Promise<StoreWatch> {
  const { store, tenants, scheduler } = deps;
  if (!store.watch) return { close: async () => undefined };
  const watches: StoreWatch[] = [];
  for (const kind of TenantService.SHARED_KINDS) {
    watches.push(await store.watch<unknown>(kind, (change) => tenants.absorb(kind, change.id, change.record)));
  }
  watches.push(
    await store.watch<PlacementValue>('placement', (change) => {
      const cluster = scheduler.cluster;
      cluster.removeContainer(change.id);
      if (change.record && cluster.host(change.record.value.hostId)) {
        cluster.addContainer(ContainerPlacer.scheduled(change.tenant, change.record));
      }
    }),
  );
  return {
    close: async () => {
      for (const watch of watches) await watch.close().catch((err: unknown) => deps.logger.debug({ err }, 'closing a store watch failed'));
    },
  };
}
