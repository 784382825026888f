import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createLogger, type Logger } from '../common/logging.js';
import { operatorContext } from '../common/context.js';
import { openStore } from '../server/store/open-store.js';
import type { Store } from '../server/store/store.js';
import { RuncRuntime } from '../agent/runtime/runtime.js';
import { OverlayRootfs } from '../agent/images/overlay-rootfs.js';
import { ImageService } from '../server/images/image-service.js';
import { EventService } from '../server/events/event-service.js';
import { SystemService } from '../server/system/system-service.js';
import { ContainerService } from '../server/containers/container-service.js';
import { ContainerIoService } from '../server/containers/container-io-service.js';
import { ExecService } from '../server/containers/exec-service.js';
import { RegistryService } from '../server/registry/registry-service.js';
import { buildDockerApi } from '../server/docker-api/server.js';
import type { FastifyInstance } from 'fastify';
import { BuildService } from '../server/build/build-service.js';
import { isKind } from '../common/errors.js';
import { VolumeService } from '../server/volumes/volume-service.js';
import { MountPlanner } from '../server/mounts/mount-planner.js';
import { HealthMonitor } from '../server/health/health-monitor.js';
import { NetworkHost } from '../server/networks/network-host.js';
import { NetworkService } from '../server/networks/network-service.js';
import { ContainerNetworkingService } from '../server/networks/container-networking.js';
import { OverlayAgent } from '../server/networks/overlay-agent.js';
import { overlayAgentRoutes } from '../server/docker-api/overlay-routes.js';
import { DEFAULT_ADDRESS_POOLS, parseAddressPool } from '../server/networks/ipam.js';
import type { Services } from '../server/services.js';
import type { ContainerRecord } from '../server/containers/model.js';
import { CertificateAuthority } from '../server/tenancy/pki.js';
import { TenantService } from '../server/tenancy/tenant-service.js';
import { QuotaService } from '../server/tenancy/quota-service.js';
import { quotaUsageSources } from '../server/tenancy/quota-sources.js';
import { openAuditLog } from './audit-log-setup.js';
import { DEFAULT_POLICY, enforceCreatePolicy, enforceRegistryPolicy } from '../server/tenancy/policy.js';
import { isHostNetworkDomain, splitRepository } from '../server/registry/endpoint.js';
import { parseReference } from '../server/images/reference.js';
import { discardProgress } from '../server/registry/progress.js';
import { allowTraversal } from '../agent/userns/traversal.js';
import { helperAvailable, helperPath } from '../agent/userns/helper.js';
import { AdvisorDb } from '../server/advisor/advisor-db.js';
import { AdvisorRecords } from '../server/advisor/tenant-records.js';
import { AdvisorService } from '../server/advisor/advisor-service.js';

export interface EngineOptions {
  dataRoot: string;
  execRoot: string;
  /** "sqlite" (default) or etcd://host:port[,host:port...][/key-prefix/] (src/server/store/open-store.ts). */
  store?: string;
  /** tcp:// addresses where tenants reach this engine (shown in their credentials). */
  tenantEndpoints?: string[];
  logger?: Logger;
  /** Registries reached without verified TLS, as dockerd's --insecure-registry. */
  insecureRegistry?: string[];
  /** Gateway address and prefix of the default bridge network (dockerd's --bip). */
  bip?: string;
  /** Pools for network subnets, `base=CIDR,size=N` (dockerd's --default-address-pool). */
  defaultAddressPool?: string[];
  /** Resolvers the embedded DNS forwards to, `ip[:port]`; default: the host's resolv.conf. */
  dnsUpstream?: string[];
  /** Let containers use the 32-bit syscall ABI (see agent/runtime/seccomp.ts). */
  allow32bitSyscalls?: boolean;
  /** Audit retention: entries older than this many days go (0 keeps them). */
  auditRetentionDays?: number;
  /** Audit retention: at most this many entries are kept (0: no limit). */
  auditMaxEntries?: number;
  /** First host uid of tenants' user-namespace ID ranges (docs/tenancy.md). */
  usernsBase?: number;
  /** How often the Vulnerability Advisor rescans running containers, in ms (0: never). */
  advisorScanIntervalMs?: number;
  /** A cluster agent's tag in container cgroup names (agent/runtime/bundle.ts cgroupsPathFor). */
  cgroupHostTag?: string;
}

/**
 * `berth up`: the server and the local agent in one process, state in SQLite under the
 * data root. Containers outlive this process; on start it reconciles records with the host.
 */
/** A running engine: the Docker API app (not yet listening anywhere) and what it is made of. */
export interface Engine {
  app: FastifyInstance;
  services: Services;
  ca: CertificateAuthority;
  tenants: TenantService;
  store: Store;
  logger: Logger;
  dataRoot: string;
  execRoot: string;
  /** Closes the app and every service, store last; containers keep running. */
  close(): Promise<void>;
}

/**
 * The single-host engine: containers, images, networks, volumes, build and tenancy under one
 * data root and SQLite store, with its Docker API app ready but not listening. `berth up`
 * serves it on its -H listeners; `berth agent` serves it through the tunnel to the control
 * plane. Containers outlive this process; on start it reconciles records with the host.
 */
export async function startEngine(options: EngineOptions): Promise<Engine> {
  const logger = options.logger ?? createLogger('berth');
  const dataRoot = resolve(options.dataRoot);
  const execRoot = resolve(options.execRoot);
  await mkdir(join(dataRoot, 'containers'), { recursive: true, mode: 0o711 });
  // Root of a tenant's container is an unprivileged host uid: runc, inside its user namespace,
  // must pass through these to the rootfs and the files it mounts (as dockerd --userns-remap).
  await allowTraversal([dataRoot, join(dataRoot, 'containers')]);
  if (!helperAvailable()) logger.error({ helper: helperPath() }, "the native helper is missing (scripts/install.sh builds it): tenants' containers and containers on bridge networks cannot start");
  await mkdir(execRoot, { recursive: true, mode: 0o700 });

  const store = openStore({ dataRoot, store: options.store });
  const events = new EventService({ dataRoot, logger });
  const runtime = new RuncRuntime({
    execRoot,
    logger,
    initBinary: '/usr/bin/tini-static',
    compat32Syscalls: options.allow32bitSyscalls ?? false,
    ...(options.cgroupHostTag ? { cgroupHostTag: options.cgroupHostTag } : {}),
  });
  // Images and containers refer to each other (an image in use cannot be removed; a container
  // needs its image's layers); the late-bound references below break the cycle.
  let containers: ContainerService | undefined;
  let advisor: AdvisorService | undefined;
  const images: ImageService = new ImageService({
    store,
    dataRoot,
    events,
    logger,
    usage: {
      containersUsing: async (ctx, imageId) =>
        containers
          ? (await containers.list(ctx)).filter((c) => c.imageId === imageId).map((c) => ({ id: c.id, running: c.state.Running }))
          : [],
    },
    onImageAdded: (imageId) => advisor?.imageAdded(imageId),
  });
  const rootfs = new OverlayRootfs({ dataRoot, layersFor: (imageId: string) => images.layerPathsOf(imageId) });
  const volumes = new VolumeService({
    store,
    events,
    dataRoot,
    logger,
    usage: {
      containersUsing: async (ctx, name) =>
        containers
          ? (await containers.list(ctx))
              .filter((c) => c.mounts?.some((m) => m.Type === 'volume' && m.Name === name))
              .map((c) => ({ id: c.id, running: c.state.Running }))
          : [],
    },
  });
  const mounts = new MountPlanner({ volumes, events, logger });
  // The health monitor follows container starts and stops through the events they publish.
  const health = new HealthMonitor({
    containers: { lookup: (ctx, id) => containers!.lookup(ctx, id), setHealth: (ctx, id, update) => containers!.setHealth(ctx, id, update) },
    runtime,
    events,
    logger,
  });
  // Containers also start from the build cache's intermediate images (RUN steps), by full id.
  let builds: BuildService | undefined;
  let tenants: TenantService | undefined;
  const resolver = {
    resolve: async (ctx: Parameters<ImageService['resolve']>[0], ref: string) => {
      try {
        return await images.resolve(ctx, ref);
      } catch (err) {
        const intermediate = isKind(err, 'NotFound') ? await builds?.resolveIntermediate(ctx, ref) : undefined;
        if (intermediate === undefined) throw err;
        return intermediate;
      }
    },
  };
  const networkHost = await NetworkHost.open(dataRoot, execRoot);
  const networks = new NetworkService({
    store,
    host: networkHost,
    events,
    logger,
    addressPools: options.defaultAddressPool?.length ? options.defaultAddressPool.map(parseAddressPool) : DEFAULT_ADDRESS_POOLS,
    ...(options.bip ? { defaultBridgeCidr: options.bip } : {}),
  });
  const networking = new ContainerNetworkingService(store, networkHost, networks, logger, options.dnsUpstream, events);
  // Networks spanning hosts: state pushed by the control plane over the tunnel (docs/cluster.md).
  const overlay = new OverlayAgent(networkHost, networks, logger);
  networking.overlay = overlay;
  containers = new ContainerService({
    store, runtime, images: resolver, rootfs, events: health.observe(events), dataRoot, logger, mounts, networking,
    usernsOf: (tenant) => tenants?.usernsOf(tenant),
  });
  networks.containers = { lookup: (ctx, ref) => containers!.lookup(ctx, ref) };
  const containerIo = new ContainerIoService({ containers, runtime, rootfs, events, logger });
  const exec = new ExecService({ containers, runtime, events, logger });
  containers.execIdsOf = (id) => exec.execIdsOf(id) ?? [];
  const registry = new RegistryService({ store, images, dataRoot, insecureRegistries: options.insecureRegistry ?? [], logger });
  builds = new BuildService({
    store,
    images,
    containers,
    containerIo,
    dataRoot,
    logger,
    usage: { containersUsing: async (ctx, imageId) => (await containers!.list(ctx)).filter((c) => c.imageId === imageId).map((c) => ({ id: c.id, running: c.state.Running })) },
    // FROM of an image Berth lacks (and --pull) pulls it like docker pull would, under the same
    // tenant rule for registries on the host's own networks.
    pull: async (ctx, ref, platform) => {
      const policy = tenants?.policyOf(ctx.tenant);
      if (policy) enforceRegistryPolicy(policy, isHostNetworkDomain(splitRepository(parseReference(ref).name).domain), ref);
      await registry.pull(ctx, { fromImage: ref, ...(platform ? { platform } : {}) }, discardProgress);
    },
    // RUN steps get the tenant's policy (default memory and pids limits) like any container.
    admitRunHostConfig: (tenant, hostConfig) => {
      const policy = tenants?.policyOf(tenant);
      return policy ? enforceCreatePolicy(policy, hostConfig) : hostConfig;
    },
  });
  const system = new SystemService({
    dataRoot,
    events,
    sources: {
      containerCounts: async (ctx) => {
        const all = await containers!.list(ctx);
        const running = all.filter((c) => c.state.Running && !c.state.Paused).length;
        const paused = all.filter((c) => c.state.Paused).length;
        return { total: all.length, running, paused, stopped: all.length - running - paused };
      },
      imageCount: async (ctx) => images.count(ctx),
      dfImages: async (ctx) => images.diskUsage(ctx),
      dfContainers: async (ctx) => containers!.listView(ctx, { all: true, limit: 0, size: true, filters: undefined }),
      dfVolumes: async (ctx) => volumes.diskUsage(ctx),
      dfBuildCache: async (ctx) => builds!.diskUsage(ctx),
    },
  });
  const ca = await CertificateAuthority.open(join(dataRoot, 'pki'));
  tenants = new TenantService({
    store,
    ca,
    ownsContainers: async (tenant) => (await containers!.list({ tenant, requestId: 'tenancy' })).length > 0,
    ...(options.usernsBase !== undefined ? { usernsBase: options.usernsBase } : {}),
  });
  await tenants.load();
  const tenantEndpoints = options.tenantEndpoints ?? [];
  const quotas = new QuotaService({
    sources: quotaUsageSources({ store, volumes, networks, images, system }),
    quotasOf: (tenant) => tenants!.quotasOf(tenant),
    defaultMemoryOf: (tenant) => tenants!.policyOf(tenant)?.defaultMemory ?? DEFAULT_POLICY.defaultMemory,
  });
  const audit = openAuditLog(dataRoot, options, logger);
  advisor = new AdvisorService({
    db: new AdvisorDb(join(dataRoot, 'advisor.db')),
    records: new AdvisorRecords(store),
    images: {
      inspect: (ctx, ref) => images.inspect(ctx, ref),
      layerPathsOf: (id) => images.layerPathsOf(id),
      storedConfig: (id) => images.storedConfig(id),
      allImageIds: async () => (await store.listAllTenants<{ id: string }>('image')).map((r) => r.value.id),
    },
    containers: {
      lookup: (ctx, ref) => containers!.lookup(ctx, ref),
      listAll: async () => (await store.listAllTenants<ContainerRecord>('container')).map((s) => ({ tenant: s.tenant, record: s.value })),
      upperDir: (id) => join(containers!.containerDir(id), 'upper'),
      mountRootfs: (id) => rootfs.mount(id),
    },
    events,
    dataRoot,
    logger,
  });
  const services: Services = { containers, containerIo, exec, images, events, system, builds, registry, volumes, networks, tenants, tenantEndpoints, quotas, audit: audit.log, advisor };

  await networks.load();
  await networking.load();
  await networks.reconcileBridges();
  // Volumes first, against the records as they were: mounts of containers that ran stay, and
  // the exits containers.reconcile then records release the volumes of those that died.
  await volumes.reconcile();
  await containers.reconcile();
  await networking.reconcile(async (tenant, id) => {
    const record = await containers!.lookup({ tenant, requestId: 'reconcile' }, id).catch(() => undefined);
    return { exists: record !== undefined, running: record?.state.Running === true, pid: record?.state.Pid ?? 0 };
  });
  await registry.reconcile();
  await builds.reconcile();
  await health.resume((await store.listAllTenants<ContainerRecord>('container')).map((s) => ({ tenant: s.tenant, record: s.value })));
  // Images recorded before a crash (or before the advisor existed) are inventoried in the background.
  await advisor.catchUp();
  advisor.startPeriodicScan(options.advisorScanIntervalMs ?? 10 * 60_000);
  const app = await buildDockerApi(services, logger);
  await app.register(overlayAgentRoutes, { overlay, networking });
  await app.ready();
  events.publish(operatorContext(), { Type: 'daemon', Action: 'reload', Actor: { ID: system.daemonId(), Attributes: {} } });

  const close = async (): Promise<void> => {
    containers!.shutdown();
    health.close();
    await app.close().catch(() => undefined);
    await advisor!.close().catch(() => undefined);
    await networking.close().catch((err: unknown) => logger.warn({ err }, 'network cleanup at shutdown failed'));
    await Promise.resolve(events.close()).catch(() => undefined);
    audit.close();
    await audit.log.close().catch(() => undefined);
    await store.close();
  };
  return { app, services, ca, tenants, store, logger, dataRoot, execRoot, close };
}
