/**
 * A control plane inside the test process: the store, CA and agent hub that `berth server`
 * composes, with the hosts admin API on a unix socket. For tests of the transport itself
 * (join, tunnel, heartbeats, hosts admin) that need no Docker front; they can also reach into
 * the hub (openStream) directly.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify from 'fastify';
import pino from 'pino';
import { SqliteStore } from '../../src/server/store/sqlite/sqlite-store.js';
import { CertificateAuthority } from '../../src/server/tenancy/pki.js';
import { TenantService } from '../../src/server/tenancy/tenant-service.js';
import { startAgentHub, type RunningAgentHub } from '../../src/server/cluster/hub/start-agent-hub.js';
import { hostAdminRoutes } from '../../src/server/admin-api/hosts.js';
import { installAuthentication } from '../../src/server/docker-api/auth.js';
import { dockerErrorHandler } from '../../src/server/docker-api/errors.js';
import type { Logger } from '../../src/common/logging.js';
import type { ClusterHost } from '../../src/server/cluster/agent-hub.js';

export interface InProcessControlPlane {
  hub: RunningAgentHub;
  /** unix socket of the hosts admin API (for the berth CLI's -H). */
  socket: string;
  ca: CertificateAuthority;
  /** HOST:PORT agents dial. */
  agentAddress: string;
  stop(): Promise<void>;
}

export async function startInProcessControlPlane(options: {
  dataRoot: string;
  agentListenHost: string;
  /** 0 (default): any free port; a restart passes the port it had. */
  agentListenPort?: number;
  downTimeoutMs: number;
  onDrain?: (host: ClusterHost) => Promise<void>;
}): Promise<InProcessControlPlane> {
  await mkdir(options.dataRoot, { recursive: true });
  const logger = pino({ level: process.env.BERTH_TEST_HUB_LOG ?? 'silent' }) as unknown as Logger;
  const store = new SqliteStore(join(options.dataRoot, 'berth.db'));
  const ca = await CertificateAuthority.open(join(options.dataRoot, 'pki'));
  const tenants = new TenantService({ store, ca, ownsContainers: async () => false });
  await tenants.load();
  const hub = await startAgentHub({
    store,
    ca,
    listen: `tcp://${options.agentListenHost}:${options.agentListenPort ?? 0}`,
    logger,
    downTimeoutMs: options.downTimeoutMs,
    ...(options.onDrain ? { onDrain: options.onDrain } : {}),
  });
  const app = Fastify({ logger: false });
  app.setErrorHandler(dockerErrorHandler);
  installAuthentication(app, tenants);
  await app.register(hostAdminRoutes, { hosts: hub.admin });
  const socket = join(options.dataRoot, 'admin.sock');
  await app.listen({ path: socket });
  return {
    hub,
    socket,
    ca,
    agentAddress: `${hub.address.host}:${hub.address.port}`,
    stop: async () => {
      await app.close();
      await hub.close();
      await store.close();
    },
  };
}
