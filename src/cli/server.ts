import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../common/logging.js';
import { SqliteStore } from '../server/store/sqlite/sqlite-store.js';
import { CertificateAuthority } from '../server/tenancy/pki.js';
import { TenantService } from '../server/tenancy/tenant-service.js';
import { SystemService } from '../server/system/system-service.js';
import { Scheduler } from '../server/scheduler/scheduler.js';
import type { Strategy } from '../server/scheduler/types.js';
import { startAgentHub } from '../server/cluster/hub/start-agent-hub.js';
import { hostAdminRoutes } from '../server/admin-api/hosts.js';
import { PlacementRegistry } from '../server/cluster/placements.js';
import { HostProxy } from '../server/cluster/front/proxy.js';
import type { FrontDeps } from '../server/cluster/front/deps.js';
import { ContainerPlacer } from '../server/cluster/front/container-placer.js';
import { buildFrontApi } from '../server/cluster/front/app.js';
import { Failover } from '../server/cluster/failover.js';
import { registerImageRoutes } from '../server/cluster/front/images.js';
import { networksReadyOn, registerNetworkRoutes } from '../server/cluster/front/networks.js';
import { registerVolumeRoutes, recordContainerVolumes, volumeHostOf } from '../server/cluster/front/volumes.js';
import { registerEventRoutes } from '../server/cluster/front/events.js';
import { ensureImageOnHost, imageIdOf } from '../server/cluster/front/image-transfer.js';
import { frontQuotaService } from '../server/cluster/front/quotas.js';
import { listenOn, parseListenAddress } from './listen.js';
import { openAuditLog } from './audit-log-setup.js';
import { listenerNames } from './tls-names.js';
import { installProcessGuards, onTermination } from './up.js';

export interface ServerOptions {
  dataRoot: string;
  host: string[];
  /** tcp://IP:PORT where agents dial in. */
  agentListen: string;
  /** A host silent for this long is down (ms). */
  hostDownTimeoutMs: number;
  /** The placement strategy of every tenant (spread or binpack). */
  placementStrategy: Strategy;
  tlsSan?: string[];
}

/**
 * `berth server`: the control plane of a cluster. Tenants and the operator talk Docker to it;
 * it keeps tenants, hosts and placements in its own SQLite store, places containers with the
 * scheduler and forwards every request to the engine of the host concerned, through the
 * tunnel that host's agent keeps open (docs/cluster.md). It runs no containers itself.
 */
export async function runServer(options: ServerOptions): Promise<void> {
  const logger = createLogger('berth-server');
  const dataRoot = resolve(options.dataRoot);
  await mkdir(dataRoot, { recursive: true, mode: 0o711 });
  const addresses = options.host.map(parseListenAddress);
  const tenantEndpoints = addresses.flatMap((a) =>
    a.kind === 'tcp' ? [`tcp://${a.host === '0.0.0.0' || a.host === '::' ? hostname() : a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`] : [],
  );

  const store = new SqliteStore(join(dataRoot, 'berth.db'));
  const ca = await CertificateAuthority.open(join(dataRoot, 'pki'));
  const placements = new PlacementRegistry(store);
  const tenants = new TenantService({
    store,
    ca,
    ownsContainers: async (tenant) => (await placements.list({ tenant, requestId: 'tenancy' })).length > 0,
  });
  await tenants.load();
  // A tenant's own placement strategy (its policy) wins over the server's default.
  const strategyOf = (tenant: string): Strategy => tenants.policyOf(tenant)?.placementStrategy ?? options.placementStrategy;
  const scheduler = new Scheduler({ strategyFor: strategyOf });
  // Drain needs the failover, which needs the hub: bound once both exist.
  let failover: Failover | undefined;
  const hub = await startAgentHub({
    store,
    ca,
    listen: options.agentListen,
    logger,
    downTimeoutMs: options.hostDownTimeoutMs,
    tlsSan: options.tlsSan ?? [],
    onDrain: async (host) => {
      const result = await failover!.drain(host.id);
      logger.info({ host: host.name, ...result }, 'host drained');
    },
  });
  const proxy = new HostProxy(hub, logger);
  const deps: FrontDeps = {
    hub,
    store,
    scheduler,
    tenants,
    logger,
    placements,
    forward: (request, reply, hostId, forwardOptions) => proxy.forward(request, reply, hostId, forwardOptions),
    hosts: proxy,
    volumeHostOf: (ctx, name) => volumeHostOf(deps, ctx, name),
  };
  deps.quotas = frontQuotaService(deps, tenants);
  const audit = openAuditLog(dataRoot, {}, logger);
  const placer = new ContainerPlacer(deps, {
    // Before a create on a host: its image, and (on a host that just joined) its networks.
    ensureImage: async (ctx, hostId, ref) => {
      await networksReadyOn(hostId);
      await ensureImageOnHost(deps, ctx, hostId, ref);
    },
    imageIdOf: (ctx, ref) => imageIdOf(deps, ctx, ref),
    created: async (ctx, hostId, id) => {
      const inspect = await deps.hosts.json<{ Mounts?: { Type?: string; Name?: string }[] | null }>(ctx, hostId, { method: 'GET', path: `/containers/${id}/json` });
      await recordContainerVolumes(deps, ctx, hostId, inspect ?? {});
    },
  });
  failover = new Failover(deps, placer);
  await failover.start();
  // Hosts that were down when the control plane started are failed over once they had the
  // down timeout (and a heartbeat's grace) to come back.
  const sweep = setTimeout(() => failover!.sweepDownHosts(), options.hostDownTimeoutMs * 2 + 1000);
  sweep.unref();

  // SystemService gives /version and the control plane's own half of /info; the cluster's
  // counts replace its sources (front/system.ts), so these stay empty here.
  const system = new SystemService({
    dataRoot,
    sources: {
      containerCounts: async () => ({ total: 0, running: 0, paused: 0, stopped: 0 }),
      imageCount: async () => 0,
      dfImages: async () => ({ layersSize: 0, images: [] }),
      dfContainers: async () => [],
      dfVolumes: async () => [],
    },
  });
  const app = await buildFrontApi({
    deps,
    placer,
    system,
    logger,
    tenantEndpoints,
    strategyOf,
    audit: audit.log,
    routes: [
      registerImageRoutes,
      registerNetworkRoutes,
      registerVolumeRoutes,
      registerEventRoutes,
      (child: FastifyInstance) => hostAdminRoutes(child, { hosts: hub.admin }),
    ],
  });
  await app.ready();
  const tcp = addresses.filter((a) => a.kind === 'tcp');
  const tls = tcp.length > 0 ? await ca.serverIdentity(listenerNames(tcp, options.tlsSan ?? [])) : undefined;
  const listeners = await listenOn(app.server, addresses, tls);
  logger.info({ dataRoot, hosts: options.host, agentListen: `${hub.address.host}:${hub.address.port}` }, 'berth server is up');
  installProcessGuards(logger);
  onTermination(logger, async () => {
    clearTimeout(sweep);
    failover!.close();
    for (const listener of listeners) listener.close();
    await app.close().catch(() => undefined);
    await hub.close().catch(() => undefined);
    audit.close();
    await audit.log.close().catch(() => undefined);
    await store.close();
  });
}
