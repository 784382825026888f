import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../../common/context.js';
import type { Logger } from '../../../common/logging.js';
import type { Store } from '../../store/store.js';
import type { Scheduler } from '../../scheduler/scheduler.js';
import type { AgentHub, ClusterHost } from '../agent-hub.js';
import type { PlacementRegistry } from '../placements.js';
import type { TenantService } from '../../tenancy/tenant-service.js';
import type { QuotaService } from '../../tenancy/quota-service.js';

/**
 * What every route module of the cluster's Docker API front is given (the front's own
 * container routes, and the image/network/volume/event routes). Route modules export
 * `register…Routes(app, deps)` and touch hosts only through `forward` and `hosts`, so the
 * tenant header and the error shape are decided in one place (front/proxy.ts).
 *
 * Terms:
 * - host: one machine an agent runs; `hub` knows which are up.
 * - forward: pass the tenant's own request on to one host's engine and its answer back,
 *   unchanged except for the path (when the front resolved a name to an id) and the headers
 *   the control plane owns (the tenant header; the client's own copy is always dropped).
 * - call: a request the front itself makes to a host on behalf of a tenant (fan-out of
 *   lists, image transfer), answered as a stream or as parsed JSON.
 */
export interface FrontDeps {
  hub: AgentHub;
  /** The control plane's store (placements, hosts, tenants, and B2's records). */
  store: Store;
  scheduler: Scheduler;
  /** Tenants and their policies (admission happens at the front, before a host sees a request). */
  tenants: TenantService;
  logger: Logger;
  /** Where each tenant's containers are (kind `placement`, name = container name). */
  placements: PlacementRegistry;
  /**
   * Forwards the request to `hostId` and pipes the answer (or the upgraded stream of attach
   * and exec start) back to the client. The reply is sent when the promise resolves; the
   * handler must not send anything itself.
   */
  forward(request: FastifyRequest, reply: FastifyReply, hostId: string, options?: ForwardOptions): Promise<void>;
  /** The front's own request to a host; see HostClient. */
  hosts: HostClient;
  /**
   * The host that holds the tenant's named volume, when one does (placements of containers
   * mounting it are pinned there). Filled by the composition from the volume routes' records;
   * undefined when the volume exists nowhere yet.
   */
  volumeHostOf?: (ctx: RequestContext, name: string) => Promise<string | undefined>;
  /** Tenants' quotas over the cluster's use (front/quotas.ts); creates run under its guards. */
  quotas?: QuotaService;
}

export interface ForwardOptions {
  /** Path and query to send instead of the client's (e.g. a name replaced by the full id). */
  path?: string;
  /** Body to send instead of the client's (JSON-encoded unless Buffer/string/stream). */
  body?: unknown;
  /** Extra headers for the engine (e.g. x-berth-container-id on create). */
  headers?: Record<string, string>;
  /**
   * Sees the engine's answer before it is piped to the client: may consume a JSON body and
   * return a replacement object (the reply then carries it as JSON with the same status).
   * Return undefined to pipe the original unchanged. Not called for upgrades.
   */
  rewrite?: (status: number, body: Buffer) => unknown;
}

/** One request the front sends to a host's engine itself. */
export interface HostCall {
  method: string;
  /** Path with query, e.g. `/containers/json?all=1`; no API-version prefix needed. */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string | Readable | object;
}

export interface HostClient {
  /** Hosts that are up, in a stable order (by name). */
  up(): ClusterHost[];
  /** The raw answer, any status; the caller reads or drains its body. */
  request(ctx: RequestContext, hostId: string, call: HostCall): Promise<IncomingMessage>;
  /**
   * The answer as parsed JSON (undefined for an empty body). A status of 400 or more throws
   * the BerthError kind matching the status with the engine's own message.
   */
  json<T>(ctx: RequestContext, hostId: string, call: HostCall): Promise<T>;
}
