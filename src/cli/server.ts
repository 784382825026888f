import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../common/logging.js';
import { openStore, parseEtcdUrl } from '../server/store/open-store.js';
import { openSharedCa } from '../server/cluster/ha/shared-ca.js';
import { EtcdLeadership, SoleLeadership } from '../server/cluster/ha/leadership.js';
import { followSharedStore } from '../server/cluster/ha/store-sync.js';
import { PlacementBroker } from '../server/cluster/ha/placement-broker.js';
import type { PlacementRequest } from '../server/scheduler/types.js';
import { controlPlaneRoutes } from '../server/cluster/ha/control-plane-routes.js';
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
import { ensureContainerNetworksOnHost, networksReadyOn, registerNetworkRoutes } from '../server/cluster/front/networks.js';
import { bufferedWhenEndpointsChange, installOverlay } from '../server/cluster/front/overlay.js';
import { registerVolumeRoutes, recordContainerVolumes, volumeHostOf } from '../server/cluster/front/volumes.js';
import { registerEventRoutes } from '../server/cluster/front/events.js';
import { ensureImageOnHost, imageIdOf } from '../server/cluster/front/image-transfer.js';
import { frontQuotaService } from '../server/cluster/front/quotas.js';
import { listenOn, parseListenAddress, tenantEndpointsOf } from './listen.js';
import { openAuditLog } from './audit-log-setup.js';
import { listenerNames } from './tls-names.js';
import { installProcessGuards, onTermination } from './up.js';

/** How long a create may be in flight at another server before the leader settles it (shared store). */
const CREATING_GRACE_MS = 10_000;

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
  /** Where state lives: sqlite (under the data root, one server) or etcd://... (several servers). */
  store?: string;
}

/**
 * `berth server`: the control plane of a cluster. Tenants and the operator talk Docker to it;
 * it keeps tenants, hosts and placements in its store (SQLite, or etcd shared by several
 * servers of which one leads: cluster/ha/), places containers with the
 * scheduler and forwards every request to the engine of the host concerned, through the
 * tunnel that host's agent keeps open (docs/cluster.md). It runs no containers itself.
 */
export async function runServer(options: ServerOptions): Promise<void> {
  const logger = createLogger('berth-server');
  const dataRoot = resolve(options.dataRoot);
  await mkdir(dataRoot, { recursive: true, mode: 0o711 });
  const addresses = options.host.map(parseListenAddress);
  const tenantEndpoints = tenantEndpointsOf(addresses);

  const storeUrl = options.store ?? 'sqlite';
  const store = openStore({ dataRoot, store: storeUrl });
  const shared = storeUrl !== 'sqlite';
  const ca = shared ? await openSharedCa(store, join(dataRoot, 'pki')) : await CertificateAuthority.open(join(dataRoot, 'pki'));
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
  const serverName = `${hostname()}:${process.pid}:${options.agentListen}`;
  const leadership = shared ? new EtcdLeadership(parseEtcdUrl(storeUrl), serverName, logger) : new SoleLeadership(serverName);
  const broker = new PlacementBroker({ store, scheduler, leadership, logger });
  // Drain needs the failover, which needs the hub: bound once both exist.
  let failover: Failover | undefined;
  const hub = await startAgentHub({
    store,
    ca,
    listen: options.agentListen,
    logger,
    downTimeoutMs: options.hostDownTimeoutMs,
    tlsSan: options.tlsSan ?? [],
    sharedStore: shared,
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
    forward: (request, reply, hostId, forwardOptions) => proxy.forward(request, reply, hostId, bufferedWhenEndpointsChange(request, forwardOptions)),
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
    ensureNetworks: (ctx, hostId, body) => ensureContainerNetworksOnHost(deps, ctx, hostId, body),
    created: async (ctx, hostId, id) => {
      const inspect = await deps.hosts.json<{ Mounts?: { Type?: string; Name?: string }[] | null }>(ctx, hostId, { method: 'GET', path: `/containers/${id}/json` });
      await recordContainerVolumes(deps, ctx, hostId, inspect ?? {});
    },
    ...(shared ? { place: (request: PlacementRequest) => broker.place(request) } : {}),
  });
  failover = new Failover(deps, placer, { leads: () => leadership.isLeader, creatingGraceMs: shared ? CREATING_GRACE_MS : 0 });
  await failover.start();
  const storeFollow = shared ? await followSharedStore({ store, tenants, scheduler, logger }) : undefined;
  leadership.on('elected', () => void failover!.takeOver());
  // Another server died: the leader settles what it may have left half created.
  leadership.on('peer-lost', () => void (leadership.isLeader && failover!.takeOver()));
  if (leadership instanceof EtcdLeadership) leadership.start();
  if (shared) await broker.start();
  const controlPlane = controlPlaneRoutes({ server: serverName, storeKind: shared ? 'etcd' : 'sqlite', store, hub, placements, leadership });
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
      controlPlane.routes,
    ],
  });
  // Tenant networks across hosts: VXLAN state pushed to the agents (front/overlay.ts).
  installOverlay(app, deps);
  await app.ready();
  controlPlane.instrument(app.server);
  const tcp = addresses.filter((a) => a.kind === 'tcp');
  const tls = tcp.length > 0 ? await ca.serverIdentity(listenerNames(tcp, options.tlsSan ?? [])) : undefined;
  const listeners = await listenOn(app.server, addresses, tls);
  logger.info({ dataRoot, hosts: options.host, agentListen: `${hub.address.host}:${hub.address.port}` }, 'berth server is up');
  installProcessGuards(logger);
  onTermination(logger, async () => {
    clearTimeout(sweep);
    failover!.close();
    await broker.close();
    await leadership.close();
    await storeFollow?.close();
    for (const listener of listeners) listener.close();
    await app.close().catch(() => undefined);
    await hub.close().catch(() => undefined);
    audit.close();
    await audit.log.close().catch(() => undefined);
    await store.close();
  });
}
