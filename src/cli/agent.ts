import { hostname } from 'node:os';
import { createLogger } from '../common/logging.js';
import { invalidArgument, isKind } from '../common/errors.js';
import { listenOn, parseListenAddress } from './listen.js';
import { keyValuePairs } from './options.js';
import { startEngine, type EngineOptions } from './engine.js';
import { installProcessGuards, onTermination } from './up.js';
import { loadIdentity, saveIdentity, type AgentIdentity } from '../agent/connect/identity.js';
import { joinCluster } from '../agent/connect/join.js';
import { AgentTunnel } from '../agent/connect/tunnel.js';
import { measureCapacity } from '../agent/connect/host-status.js';
import { readBuildInfo } from '../server/system/build-info.js';
import type { HostStatus } from '../common/agent-protocol.js';
import { sharedRecent } from '../common/single-flight.js';

export interface AgentOptions extends Omit<EngineOptions, 'tenantEndpoints' | 'logger'> {
  /** The control plane's agent listener, HOST:PORT. */
  server: string;
  /** Needed on the first start only; afterwards the identity in the data root is used. */
  joinToken?: string;
  name?: string;
  /** Where tenants reach this host's published ports; default: our end of the connection. */
  advertiseAddress?: string;
  label?: string[];
  /** Optional unix sockets for the operator on this host (never TCP: tenants come via the server). */
  host?: string[];
  heartbeatMs?: number;
}

/** Joins through the first server that answers; a refusal (bad token) is final. */
async function joinAny(servers: string[], request: Omit<Parameters<typeof joinCluster>[0], 'server'>): Promise<AgentIdentity> {
  let lastError: unknown;
  for (const server of servers) {
    try {
      return await joinCluster({ ...request, server });
    } catch (err) {
      if (!isKind(err, 'Unavailable')) throw err;
      lastError = err;
    }
  }
  throw lastError;
}

/**
 * `berth agent`: the single-host engine, served to the control plane through the tunnel the
 * agent dials (docs/cluster.md). The first start joins with the token; later starts reconnect
 * as the same host with the identity kept in the data root.
 */
export async function runAgent(options: AgentOptions): Promise<void> {
  const logger = createLogger('berth-agent');
  const name = options.name ?? hostname();
  // A flag without '=' is refused, as docker's --label would be.
  const labels = keyValuePairs(options.label ?? [], (flag) => `invalid --label ${flag}: use key=value`);
  const sockets = (options.host ?? []).map(parseListenAddress);
  if (sockets.some((a) => a.kind !== 'unix')) throw invalidArgument('berth agent serves the Docker API on unix sockets only: tenants reach it through the control plane');

  // Several servers (an HA control plane): one tunnel to each, each reconnecting on its own.
  const servers = options.server.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (servers.length === 0) throw invalidArgument('--server names no server');
  let identity = await loadIdentity(options.dataRoot);
  if (!identity) {
    if (!options.joinToken) throw invalidArgument('this agent has not joined a cluster yet: pass --join-token (from `berth host join-token` on the control plane)');
    identity = await joinAny(servers, { token: options.joinToken, name, address: options.advertiseAddress ?? '', labels });
    await saveIdentity(options.dataRoot, identity);
    logger.info({ hostId: identity.hostId, server: options.server }, 'joined the cluster');
  } else if (identity.server !== options.server) {
    identity = { ...identity, server: options.server };
    await saveIdentity(options.dataRoot, identity);
  }

  const engine = await startEngine({ ...options, logger, cgroupHostTag: identity.hostId.slice(0, 12) });
  const engineVersion = readBuildInfo().version;
  const heartbeatMs = options.heartbeatMs ?? 1000;
  // Measuring the host (statfs, /dev, every tenant's images and containers) is the costly part
  // of a heartbeat and runs on the engine's event loop: one measurement, shared by the tunnels
  // of every server (HA) asking within half an interval, rather than one per tunnel. Half, so
  // what a server is told stays fresh; a tunnel that connects still reports at once.
  const measure = sharedRecent(async () => {
    const [capacity, images, containers] = await Promise.all([
      measureCapacity(engine.dataRoot),
      engine.store.listAllTenants<{ id: string }>('image'),
      engine.store.listAllTenants<unknown>('container'),
    ]);
    return { capacity, imageIds: [...new Set(images.map((i) => i.value.id))], containerCount: containers.length };
  }, heartbeatMs / 2);
  const status = async (link: { localAddress: string }): Promise<HostStatus> => {
    const { capacity, imageIds, containerCount } = await measure();
    return {
      name,
      address: options.advertiseAddress ?? link.localAddress,
      labels,
      capacity,
      imageIds,
      containerCount,
      engineVersion,
    };
  };
  const listeners = await listenOn(engine.app.server, sockets);
  installProcessGuards(logger);
  const shutdown = async (): Promise<void> => {
    await Promise.all(tunnels.map((tunnel) => tunnel.close()));
    for (const listener of listeners) listener.close();
    await engine.close();
  };
  const tunnels = servers.map(
    (server) =>
      new AgentTunnel({
        identity: { ...identity, server },
        engine: engine.app.server,
        status,
        heartbeatMs,
        logger,
        onRefused: (reason) => {
          process.stderr.write(`berth agent: the control plane refused this host: ${reason}\n`);
          void shutdown().finally(() => process.exit(3));
        },
      }),
  );
  for (const tunnel of tunnels) tunnel.start();
  logger.info({ hostId: identity.hostId, name, server: options.server, dataRoot: engine.dataRoot }, 'berth agent is up');
  onTermination(logger, shutdown);
}
