/**
 * The cluster's Docker API front (B2's image, network, volume and event routes) in the test
 * process, over real engines: each "host" is a `berth up` started by berth-harness, and a
 * small AgentHub opens each stream as a fresh connection to that engine's unix socket. So
 * the routes meet real engines and the docker CLI drives the front, without the agents'
 * tunnel (the cluster tests with real agents use cluster-harness.ts).
 *
 * Limits of this stand-in: the engines' unix sockets are the operator's, so every call runs
 * as the operator and the control plane's x-berth-* headers are not trusted (network ids
 * differ per host here).
 *
 * Lifecycle: startFrontOverEngines(n) → setHostState()* → stop(). stop() closes the front,
 * stops every engine and removes the temp dir; call it from `after()`.
 */
import { EventEmitter } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { OPERATOR_TENANT } from '../../src/common/context.js';
import { unavailable } from '../../src/common/errors.js';
import { createLogger } from '../../src/common/logging.js';
import type { AgentHub, ClusterHost, HostEvent } from '../../src/server/cluster/agent-hub.js';
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
import { startBerth, type BerthInstance } from './berth-harness.js';
import { removeTree } from './cleanup.js';

class SocketHub extends EventEmitter implements AgentHub {
  readonly byId = new Map<string, { host: ClusterHost; socket: string }>();

  hosts(): ClusterHost[] {
    return [...this.byId.values()].map((entry) => entry.host);
  }

  host(ref: string): ClusterHost | undefined {
    return this.byId.get(ref)?.host ?? this.hosts().find((host) => host.name === ref);
  }

  openStream(hostId: string): Promise<Duplex> {
    const entry = this.byId.get(hostId);
    if (entry === undefined || entry.host.state !== 'up') return Promise.reject(unavailable(`host ${hostId} is not connected`));
    return new Promise((resolve, reject) => {
      const socket = connect(entry.socket);
      socket.once('connect', () => resolve(socket));
      socket.once('error', reject);
    });
  }

  override on(event: HostEvent, listener: (host: ClusterHost) => void): this {
    return super.on(event, listener);
  }

  override off(event: HostEvent, listener: (host: ClusterHost) => void): this {
    return super.off(event, listener);
  }
}

export interface FrontOverEngines {
  engines: BerthInstance[];
  hostIds: string[];
  /** DOCKER_HOST (the front's socket) and a private DOCKER_CONFIG for the docker CLI. */
  env: NodeJS.ProcessEnv;
  /** Marks a host up or down, emitting the hub's host-up / host-down. */
  setHostState(hostId: string, state: 'up' | 'down'): void;
  deps: FrontDeps;
  stop(): Promise<void>;
}

export async function startFrontOverEngines(count: number): Promise<FrontOverEngines> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-front-'));
  const engines: BerthInstance[] = [];
  let app: FastifyInstance | undefined;
  let store: SqliteStore | undefined;
  const stop = async (): Promise<void> => {
    await app?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    await Promise.all(engines.map((engine) => engine.stop()));
    await removeTree(dir);
  };
  try {
    for (const started of await Promise.all(Array.from({ length: count }, () => startBerth()))) engines.push(started);
    const hub = new SocketHub();
    engines.forEach((engine, index) => {
      const id = `host${index}`.padEnd(12, '0');
      hub.byId.set(id, {
        socket: engine.socket,
        host: {
          id,
          name: `host-${index}`,
          address: '127.0.0.1',
          labels: {},
          capacity: { cpus: 2, memoryBytes: 8 * 2 ** 30, diskBytes: 10 * 2 ** 30, devices: [] },
          state: 'up',
          cordoned: false,
          lastSeen: Date.now(),
          imageIds: [],
          engineVersion: 'test',
        },
      });
    });
    const logger = createLogger('front-test');
    logger.level = process.env.BERTH_LOG_LEVEL ?? 'warn';
    store = new SqliteStore(join(dir, 'front.db'));
    const proxy = new HostProxy(hub, logger);
    const deps: FrontDeps = {
      hub,
      store,
      scheduler: new Scheduler(),
      // The image, network, volume and event routes never consult tenants (admission is the
      // container routes' job); every call here is the operator's.
      tenants: {} as TenantService,
      logger,
      placements: new PlacementRegistry(store),
      forward: (request, reply, hostId, options) => proxy.forward(request, reply, hostId, options),
      hosts: proxy,
    };
    deps.volumeHostOf = (ctx, name) => volumeHostOf(deps, ctx, name);
    app = createDockerApp(logger);
    app.decorateRequest('tenant', OPERATOR_TENANT);
    const front = app;
    await front.register(async (scope) => {
      await registerImageRoutes(scope, deps);
      await registerNetworkRoutes(scope, deps);
      await registerVolumeRoutes(scope, deps);
      await registerEventRoutes(scope, deps);
    });
    const socket = join(dir, 'front.sock');
    await front.listen({ path: socket });
    return {
      engines,
      hostIds: [...hub.byId.keys()],
      env: { ...engines[0]!.env, DOCKER_HOST: `unix://${socket}` },
      setHostState(hostId, state) {
        const entry = hub.byId.get(hostId)!;
        entry.host = { ...entry.host, state };
        hub.emit(state === 'up' ? 'host-up' : 'host-down', entry.host);
      },
      deps,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
