/**
 * The cluster front's image, network, volume and event routes (B2's modules) served in the
 * test process over any AgentHub, on a unix socket, for the docker CLI. Every request on that
 * socket acts as the one tenant given (or the operator): the stand-in for the front's mutual
 * TLS authentication, which `berth server` tests exercise.
 *
 * Lifecycle: serveResourceFront() → close(). close() closes the app and the store.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { OPERATOR_TENANT } from '../../src/common/context.js';
import { createLogger } from '../../src/common/logging.js';
import type { AgentHub } from '../../src/server/cluster/agent-hub.js';
import type { FrontDeps } from '../../src/server/cluster/front/deps.js';
import { registerEventRoutes } from '../../src/server/cluster/front/events.js';
import { registerImageRoutes } from '../../src/server/cluster/front/images.js';
import { registerNetworkRoutes } from '../../src/server/cluster/front/networks.js';
import { HostProxy } from '../../src/server/cluster/front/proxy.js';
import { registerVolumeRoutes, volumeHostOf } from '../../src/server/cluster/front/volumes.js';
import { PlacementRegistry } from '../../src/server/cluster/placements.js';
import { createDockerApp } from '../../src/server/docker-api/server.js';
import { Scheduler } from '../../src/server/scheduler/scheduler.js';
import { SqliteStore } from '../../src/server/store/sqlite/sqlite-store.js';
import type { TenantService } from '../../src/server/tenancy/tenant-service.js';

export interface ResourceFront {
  /** `unix://<socket>` for DOCKER_HOST. */
  dockerHost: string;
  deps: FrontDeps;
  close(): Promise<void>;
}

export async function serveResourceFront(options: { hub: AgentHub; dir: string; tenant?: string }): Promise<ResourceFront> {
  const logger = createLogger('resource-front');
  logger.level = process.env.BERTH_LOG_LEVEL ?? 'warn';
  const store = new SqliteStore(join(options.dir, 'front.db'));
  const proxy = new HostProxy(options.hub, logger);
  const deps: FrontDeps = {
    hub: options.hub,
    store,
    scheduler: new Scheduler(),
    // The image, network, volume and event routes never consult tenants (admission is the
    // container routes' job).
    tenants: {} as TenantService,
    logger,
    placements: new PlacementRegistry(store),
    forward: (request, reply, hostId, forwardOptions) => proxy.forward(request, reply, hostId, forwardOptions),
    hosts: proxy,
  };
  deps.volumeHostOf = (ctx, name) => volumeHostOf(deps, ctx, name);
  let app: FastifyInstance | undefined;
  try {
    app = createDockerApp(logger);
    app.decorateRequest('tenant', options.tenant ?? OPERATOR_TENANT);
    await app.register(async (scope) => {
      await registerImageRoutes(scope, deps);
      await registerNetworkRoutes(scope, deps);
      await registerVolumeRoutes(scope, deps);
      await registerEventRoutes(scope, deps);
    });
    const socket = join(options.dir, 'front.sock');
    await app.listen({ path: socket });
  } catch (err) {
    await app?.close().catch(() => undefined);
    await store.close();
    throw err;
  }
  const served = app;
  return {
    dockerHost: `unix://${join(options.dir, 'front.sock')}`,
    deps,
    close: async () => {
      await served.close().catch(() => undefined);
      await store.close().catch(() => undefined);
    },
  };
}
