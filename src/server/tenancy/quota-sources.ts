import { CONTAINER_KIND } from '../containers/container-service.js';
import type { ContainerRecord } from '../containers/model.js';
import type { Store } from '../store/store.js';
import type { ImageService } from '../images/image-service.js';
import type { NetworkService } from '../networks/network-service.js';
import type { SystemService } from '../system/system-service.js';
import type { VolumeService } from '../volumes/volume-service.js';
import type { QuotaUsageSources } from './quota-service.js';

const PREDEFINED_NETWORKS = new Set(['bridge', 'host', 'none']);

/** A tenant's use, read from the services that own each kind of object (all tenant-scoped). */
export function quotaUsageSources(services: {
  /** Container records are read straight from it: a count needs no wait for host cleanups. */
  store: Store;
  volumes: VolumeService;
  networks: NetworkService;
  images: ImageService;
  system: SystemService;
}): QuotaUsageSources {
  const { store, volumes, networks, images, system } = services;
  return {
    containers: async (ctx) =>
      (await store.list<ContainerRecord>(ctx, CONTAINER_KIND)).map(({ value: c }) => ({
        id: c.id,
        name: c.name,
        Memory: c.hostConfig.Memory,
        NanoCpus: c.hostConfig.NanoCpus,
        CpuQuota: c.hostConfig.CpuQuota,
        CpuPeriod: c.hostConfig.CpuPeriod,
        CpusetCpus: c.hostConfig.CpusetCpus,
      })),
    volumeNames: async (ctx) => (await volumes.list(ctx, undefined)).Volumes.map((v) => v.Name),
    networkCount: async (ctx) => (await networks.list(ctx, undefined)).filter((n) => !PREDEFINED_NETWORKS.has(String(n.Name))).length,
    imageCount: async (ctx) => images.count(ctx),
    hasImage: async (ctx, ref) =>
      images.find(ctx, ref).then(
        () => true,
        () => false,
      ),
    // The figures `docker system df` shows the tenant (build cache aside): walking volume and
    // container directories costs, so this runs only for tenants with a disk quota.
    diskBytes: async (ctx) => {
      const df = await system.diskUsage(ctx, ['image', 'container', 'volume']);
      const containerBytes = (df.Containers ?? []).reduce((sum, c) => sum + (typeof c.SizeRw === 'number' ? c.SizeRw : 0), 0);
      const volumeBytes = (df.Volumes ?? []).reduce((sum, v) => sum + Math.max(v.UsageData.Size, 0), 0);
      return df.LayersSize + containerBytes + volumeBytes;
    },
  };
}
