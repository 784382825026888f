import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { operatorContext } from '../../../common/context.js';
import { isKind } from '../../../common/errors.js';
import { requireOperator } from '../../docker-api/auth.js';
import type { Store } from '../../store/store.js';
import type { AgentHub } from '../agent-hub.js';
import type { PlacementRegistry } from '../placements.js';
import type { Leadership } from './leadership.js';

export interface ControlPlaneStatus {
  server: string;
  role: 'leader' | 'follower';
  leader: string | null;
  store: { kind: 'etcd' | 'sqlite'; healthy: boolean; error?: string };
  hosts: { up: number; down: number };
}

interface StatusDeps {
  server: string;
  storeKind: 'etcd' | 'sqlite';
  store: Store;
  hub: AgentHub;
  placements: PlacementRegistry;
  leadership: Leadership;
}

/** Whether the store answers a read now (a missing record is an answer). */
async function storeHealth(store: Store): Promise<{ healthy: boolean; error?: string }> {
  try {
    await store.get(operatorContext('health'), 'health-probe', 'probe');
    return { healthy: true };
  } catch (err) {
    if (isKind(err, 'NotFound')) return { healthy: true };
    return { healthy: false, error: err instanceof Error ? err.message : String(err) };
  }
}

export async function controlPlaneStatus(deps: StatusDeps): Promise<ControlPlaneStatus> {
  const [health, leader] = await Promise.all([storeHealth(deps.store), deps.leadership.leader()]);
  const hosts = deps.hub.hosts();
  return {
    server: deps.server,
    role: deps.leadership.isLeader ? 'leader' : 'follower',
    leader: leader ?? null,
    store: { kind: deps.storeKind, ...health },
    hosts: { up: hosts.filter((h) => h.state === 'up').length, down: hosts.filter((h) => h.state !== 'up').length },
  };
}

/**
 * The control plane's own state for the operator: `GET /berth/v1/control-plane` (what
 * `berth status` prints) and `GET /metrics` (Prometheus text, prom-client). Operator only:
 * both reveal the cluster's shape.
 */
export function controlPlaneRoutes(deps: StatusDeps): { routes: (app: FastifyInstance) => void; instrument: (server: HttpServer) => void } {
  const registry = new Registry();
  const isLeader = new Gauge({ name: 'berth_server_is_leader', help: '1 when this server leads the control plane', registers: [registry] });
  const storeUp = new Gauge({ name: 'berth_store_up', help: '1 when the store answers a read', labelNames: ['kind'], registers: [registry] });
  const hosts = new Gauge({ name: 'berth_hosts', help: 'hosts by state, as this server sees them', labelNames: ['state'], registers: [registry] });
  const placements = new Gauge({ name: 'berth_placements', help: 'containers placed on hosts', registers: [registry] });
  const requests = new Histogram({
    name: 'berth_http_request_duration_seconds',
    help: 'API request durations',
    labelNames: ['method', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  const leaderChanges = new Counter({ name: 'berth_leader_changes_total', help: 'times this server was elected or deposed', registers: [registry] });
  deps.leadership.on('elected', () => leaderChanges.inc());
  deps.leadership.on('deposed', () => leaderChanges.inc());

  // Every request of every listener, timed at the HTTP server (the routes live in many
  // encapsulated plugins, which a hook added here would not see).
  const instrument = (server: HttpServer): void => {
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const end = requests.startTimer({ method: request.method ?? 'GET' });
      response.once('finish', () => end({ status: String(response.statusCode) }));
    });
  };
  const routes = (app: FastifyInstance): void => {
    app.get('/berth/v1/control-plane', async (request) => {
      requireOperator(request);
      return controlPlaneStatus(deps);
    });
    app.get('/metrics', async (request, reply) => {
      requireOperator(request);
      const status = await controlPlaneStatus(deps);
      isLeader.set(status.role === 'leader' ? 1 : 0);
      storeUp.set({ kind: status.store.kind }, status.store.healthy ? 1 : 0);
      hosts.set({ state: 'up' }, status.hosts.up);
      hosts.set({ state: 'down' }, status.hosts.down);
      placements.set((await deps.placements.all().catch(() => [])).length);
      return reply.type(registry.contentType).send(await registry.metrics());
    });
  };
  return { routes, instrument };
}
