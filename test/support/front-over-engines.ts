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
import { unavailable } from '../../src/common/errors.js';
import type { AgentHub, ClusterHost, HostEvent } from '../../src/server/cluster/agent-hub.js';
import type { FrontDeps } from '../../src/server/cluster/front/deps.js';
import { startBerth, type BerthInstance } from './berth-harness.js';
import { removeTree } from './cleanup.js';
import { serveResourceFront, type ResourceFront } from './resource-front.js';

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
  let front: ResourceFront | undefined;
  const stop = async (): Promise<void> => {
    await front?.close();
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
    front = await serveResourceFront({ hub, dir });
    return {
      engines,
      hostIds: [...hub.byId.keys()],
      env: { ...engines[0]!.env, DOCKER_HOST: front.dockerHost },
      setHostState(hostId, state) {
        const entry = hub.byId.get(hostId)!;
        entry.host = { ...entry.host, state };
        hub.emit(state === 'up' ? 'host-up' : 'host-down', entry.host);
      },
      deps: front.deps,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
