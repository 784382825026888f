import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { requestContext } from './request-context.js';
import type { EventService, EventSubscription } from '../events/event-service.js';
import { parseFilterJson } from '../events/filters.js';
import type { SystemService } from '../system/system-service.js';
import type { QuotaService } from '../tenancy/quota-service.js';
import { quotaLabels } from '../tenancy/quotas.js';

/**
 * The services system routes call. `Services` (src/server/services.ts) is a superset, so
 * server.ts passes its own; tests pass just these two.
 */
export interface SystemRouteServices {
  events: EventService;
  system: SystemService;
  /** A tenant's quotas, shown in /info (absent in tests of the system routes alone). */
  quotas?: Pick<QuotaService, 'usage'>;
}

const contextOf = requestContext;

const eventsQuery = {
  type: 'object',
  properties: { since: { type: 'string' }, until: { type: 'string' }, filters: { type: 'string' } },
} as const;

const dfQuery = {
  type: 'object',
  properties: { type: { type: 'array', items: { type: 'string' } } },
} as const;

/**
 * Docker's system operations: SystemPing, SystemVersion, SystemInfo, SystemEvents and
 * SystemDataUsage. Handlers parse, call one service, and shape the answer.
 */
export async function systemRoutes(app: FastifyInstance, opts: { services: SystemRouteServices }): Promise<void> {
  const { events, system } = opts.services;
  // Event streams never end by themselves; end them when the server closes so close() does
  // not wait on them forever.
  const openStreams = new Set<EventSubscription>();
  app.addHook('preClose', async () => {
    for (const subscription of openStreams) subscription.close();
  });

  // SystemPingHead: declared before the GET so fastify does not derive its own HEAD route.
  app.head('/_ping', async (_request, reply) => {
    pingHeaders(reply).header('Content-Length', '0');
    return reply.code(200).send();
  });

  // SystemPing: the CLI reads the headers to negotiate the API version and the builder.
  app.get('/_ping', async (_request, reply) => pingHeaders(reply).send('OK'));

  // SystemVersion
  app.get('/version', async () => system.version());

  // SystemInfo
  app.get('/info', async (request) => {
    const info = await system.info(contextOf(request));
    // A tenant reads its quotas and their use as daemon labels (docker info prints them).
    if (!opts.services.quotas) return info;
    const { quotas, usage } = await opts.services.quotas.usage(contextOf(request));
    return { ...info, Labels: [...info.Labels, ...quotaLabels(quotas, usage)] };
  });

  // SystemDataUsage
  app.get<{ Querystring: { type?: string[] } }>('/system/df', { schema: { querystring: dfQuery } }, async (request) =>
    system.diskUsage(contextOf(request), request.query.type),
  );

  // SystemEvents: newline-delimited JSON, each event flushed as it happens, until `until`
  // passes or the client goes away.
  app.get<{ Querystring: { since?: string; until?: string; filters?: string } }>(
    '/events',
    { schema: { querystring: eventsQuery } },
    async (request, reply) => {
      // Subscribing validates since/until/filters: bad input is answered before the stream starts.
      const subscription = events.subscribe(contextOf(request), {
        since: request.query.since,
        until: request.query.until,
        filters: parseFilterJson(request.query.filters),
      });
      openStreams.add(subscription);
      reply.hijack();
      const res = reply.raw;
      const closeOnHangup = (): void => subscription.close();
      request.raw.socket.once('close', closeOnHangup);
      try {
        // Headers set earlier (Api-Version, Ostype, ...) travel with the hijacked response.
        for (const [name, value] of Object.entries(reply.getHeaders())) {
          if (value !== undefined) res.setHeader(name, typeof value === 'number' ? String(value) : value);
        }
        res.setHeader('Content-Type', 'application/json');
        res.writeHead(200);
        // Clients wait for the headers to know the subscription is in place before they act.
        res.flushHeaders();
        for await (const event of subscription) {
          if (res.destroyed) break;
          if (!res.write(`${JSON.stringify(event)}\n`)) await drained(res);
        }
      } catch (err) {
        request.log.debug({ err }, 'event stream ended by an error');
      } finally {
        subscription.close();
        openStreams.delete(subscription);
        request.raw.socket.off('close', closeOnHangup);
        if (!res.destroyed) res.end();
      }
    },
  );
}

/** Resolves when the response can take more, or when the connection is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/** The headers of dockerd's /_ping answers, which clients read (builder version, swarm state). */
export function pingHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('Builder-Version', '1')
    .header('Swarm', 'inactive')
    .header('Cache-Control', 'no-cache, no-store, must-revalidate')
    .header('Pragma', 'no-cache')
    .type('text/plain; charset=utf-8');
}
