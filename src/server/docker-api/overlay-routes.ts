import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalidArgument, notFound } from '../../common/errors.js';
import { TENANT_HEADER } from '../cluster/agent-hub.js';
import type { ContainerNetworkingService } from '../networks/container-networking.js';
import type { OverlayAgent, OverlayNetwork, OverlayState, RemoteEndpoint } from '../networks/overlay-agent.js';
import { isTrustedUpstream } from './upstream-trust.js';

/**
 * The agent's internal routes for networks that span hosts, served only to the control plane
 * (a tunnel connection, no tenant): anyone else gets the 404 of an unknown path.
 *
 * - GET /berth/agent/overlay/endpoints: this host's live interfaces on user networks;
 * - PUT /berth/agent/overlay: the desired VXLAN state of this host (OverlayState), applied whole.
 */
export async function overlayAgentRoutes(app: FastifyInstance, opts: { overlay: OverlayAgent; networking: ContainerNetworkingService }): Promise<void> {
  const guard = (request: FastifyRequest): void => {
    if (!isTrustedUpstream(request.raw.socket) || request.headers[TENANT_HEADER] !== undefined) throw notFound('page not found');
  };
  app.get('/berth/agent/overlay/endpoints', async (request) => {
    guard(request);
    return opts.networking.liveEndpoints();
  });
  app.put('/berth/agent/overlay', async (request, reply) => {
    guard(request);
    await opts.overlay.apply(parseOverlayState(request.body));
    return reply.code(204).send();
  });
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Checks every field: the values end up on `ip` and `bridge` command lines. */
export function parseOverlayState(body: unknown): OverlayState {
  const b = body as { local?: unknown; networks?: unknown } | null;
  if (typeof b !== 'object' || b === null || typeof b.local !== 'string' || !IPV4.test(b.local) || !Array.isArray(b.networks)) {
    throw invalidArgument('overlay state needs local (IPv4) and networks');
  }
  return { local: b.local, networks: b.networks.map(parseNetwork) };
}

function parseNetwork(raw: unknown): OverlayNetwork {
  const n = raw as Partial<OverlayNetwork> | null;
  if (typeof n !== 'object' || n === null || typeof n.id !== 'string' || !/^[0-9a-f]{64}$/.test(n.id)) throw invalidArgument('overlay network needs a 64-hex id');
  if (typeof n.vni !== 'number' || !Number.isInteger(n.vni) || n.vni < 1 || n.vni > 0xffffff) throw invalidArgument('overlay network needs a VNI in 1..16777215');
  if (n.ipRange !== undefined && (typeof n.ipRange !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(n.ipRange))) throw invalidArgument('bad ipRange');
  if (!Array.isArray(n.remotes)) throw invalidArgument('overlay network needs remotes');
  return { id: n.id, vni: n.vni, ...(n.ipRange ? { ipRange: n.ipRange } : {}), remotes: n.remotes.map(parseRemote) };
}

function parseRemote(raw: unknown): RemoteEndpoint {
  const r = raw as Partial<RemoteEndpoint> | null;
  const ok =
    typeof r === 'object' &&
    r !== null &&
    typeof r.ip === 'string' &&
    IPV4.test(r.ip) &&
    typeof r.mac === 'string' &&
    MAC.test(r.mac) &&
    typeof r.host === 'string' &&
    IPV4.test(r.host) &&
    typeof r.containerName === 'string' &&
    Array.isArray(r.names) &&
    r.names.every((x) => typeof x === 'string');
  if (!ok) throw invalidArgument('bad remote endpoint');
  return { ip: r.ip!, mac: r.mac!, host: r.host!, containerName: r.containerName!, names: r.names! };
}
