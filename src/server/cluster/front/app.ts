import type { FastifyInstance } from 'fastify';
import { installAuthentication } from '../../docker-api/auth.js';
import { createDockerApp, ROUTE_LOG_LEVEL } from '../../docker-api/server.js';
import { tenantAdminRoutes } from '../../admin-api/tenants.js';
import { quotaAdminRoutes } from '../../admin-api/quotas.js';
import { auditAdminRoutes } from '../../admin-api/audit.js';
import { installAudit } from '../../docker-api/audit-hooks.js';
import type { AuditLog } from '../../audit/audit-log.js';
import type { SystemService } from '../../system/system-service.js';
import type { Logger } from '../../../common/logging.js';
import type { ContainerPlacer } from './container-placer.js';
import { containerRoutes } from './containers.js';
import type { FrontDeps } from './deps.js';
import { ExecDirectory, execRoutes } from './exec-directory.js';
import { systemRoutes } from './system.js';

/** A route module of the front: the image, network, volume and event routes, the hosts admin API. */
export type FrontRoutes = (app: FastifyInstance, deps: FrontDeps) => Promise<void> | void;

export interface FrontApiOptions {
  deps: FrontDeps;
  placer: ContainerPlacer;
  system: SystemService;
  logger: Logger;
  /** tcp:// addresses tenants reach the control plane at (shown with their credentials). */
  tenantEndpoints: string[];
  strategyOf: (tenant: string) => string;
  /** Further route modules, each in its own encapsulated context. */
  routes: FrontRoutes[];
  /** Every mutating call is recorded here, as on the engine (docker-api/audit-hooks.ts). */
  audit: AuditLog;
}

/**
 * The control plane's Docker API: the same app base, authentication and error shape as the
 * single-host engine (docker-api/server.ts), with routes that place and forward instead of
 * running containers here.
 */
export async function buildFrontApi(options: FrontApiOptions): Promise<FastifyInstance> {
  const { deps } = options;
  const app = createDockerApp(options.logger);
  installAuthentication(app, deps.tenants);
  installAudit(app, options.audit);
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ message: `page not found` });
    request.log.debug({ url: request.url }, 'no route');
  });
  const execs = new ExecDirectory(deps);
  await app.register(systemRoutes, { deps, system: options.system, strategyOf: options.strategyOf, logLevel: ROUTE_LOG_LEVEL });
  await app.register(containerRoutes, { deps, placer: options.placer, execs, logLevel: ROUTE_LOG_LEVEL });
  await app.register(execRoutes, { deps, execs, logLevel: ROUTE_LOG_LEVEL });
  await app.register(tenantAdminRoutes, { tenants: deps.tenants, endpoints: options.tenantEndpoints, logLevel: ROUTE_LOG_LEVEL });
  if (deps.quotas) await app.register(quotaAdminRoutes, { tenants: deps.tenants, quotas: deps.quotas, logLevel: ROUTE_LOG_LEVEL });
  await app.register(auditAdminRoutes, { audit: options.audit, logLevel: ROUTE_LOG_LEVEL });
  for (const routes of options.routes) {
    await app.register(async (child) => routes(child, deps), { logLevel: ROUTE_LOG_LEVEL });
  }
  return app;
}
