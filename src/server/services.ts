import type { ContainerService } from './containers/container-service.js';
import type { ContainerIoService } from './containers/container-io-service.js';
import type { ExecService } from './containers/exec-service.js';
import type { ImageService } from './images/image-service.js';
import type { EventService } from './events/event-service.js';
import type { SystemService } from './system/system-service.js';
import type { RegistryService } from './registry/registry-service.js';
import type { BuildService } from './build/build-service.js';
import type { VolumeService } from './volumes/volume-service.js';
import type { NetworkService } from './networks/network-service.js';
import type { TenantService } from './tenancy/tenant-service.js';
import type { AdvisorService } from './advisor/advisor-service.js';
import type { QuotaService } from './tenancy/quota-service.js';
import type { AuditLog } from './audit/audit-log.js';

/**
 * Everything the Docker API may call. Handlers reach the platform only through these
 * services — never the store, the runtime or the scheduler directly.
 */
export interface Services {
  containers: ContainerService;
  /** Streams and files of containers: attach, logs, top, stats, archive, export, diff. */
  containerIo: ContainerIoService;
  exec: ExecService;
  images: ImageService;
  events: EventService;
  system: SystemService;
  /** Registries: login, pull, push. */
  registry: RegistryService;
  /** docker build (classic builder), docker commit and the build cache. */
  builds: BuildService;
  volumes: VolumeService;
  networks: NetworkService;
  tenants: TenantService;
  /** The Vulnerability Advisor: reports, policy at create, feeds (absent in unit tests' fakes). */
  advisor?: AdvisorService;
  /** Tenant quotas, checked around the requests that add to a tenant's use. */
  quotas: QuotaService;
  /** Every mutating call, for the operator (written by the API's audit hooks). */
  audit: AuditLog;
  /** The tcp:// addresses tenants dial (for the credentials the admin API hands out). */
  tenantEndpoints: string[];
}
