import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { OPERATOR_TENANT, type RequestContext } from '../../../common/context.js';
import { requestContext } from '../../docker-api/request-context.js';
import { eventMatches, parseFilterJson, validateEventFilters } from '../../events/filters.js';
import { parseTimeSpec } from '../../events/time-spec.js';
import type { DockerEvent } from '../../events/types.js';
import type { ClusterHost, HostEvent } from '../agent-hub.js';
import type { FrontDeps } from './deps.js';
import { engineError, readAll } from './proxy.js';
import { jsonLines } from '../../../common/json-lines.js';

/**
 * `GET /events` across the cluster: the tenant's event stream of every up host, merged.
 *
 * - Each up host gets the client's own query (since, until, filters), so each engine
 *   replays and filters its journal as it does for `berth up`. A host that comes up while
 *   the stream is open is subscribed from the moment it came up.
 * - Each event once: a cluster network made on every host says `create` on each; those are
 *   one event (eventKey).
 * - Time order as well as streams allow: events are held for a short window and written
 *   sorted by timeNano, so a replay (`--since`) from several hosts comes out interleaved in
 *   order; live events are late by at most that window.
 * - Every event carries the host that emitted it as `node` (Swarm standalone's field).
 * - The operator also sees the hosts' own comings and goings as `node` events
 *   (Action `up`, `down`, `remove`), kept in memory for `--since`.
 * - With `until`, the stream ends once every host's stream has ended.
 */
const HOLD_MS = 50;
const REMEMBERED_KEYS = 10_000;
const HOST_EVENT_HISTORY = 1_000;

export interface NodeField {
  Name: string;
  ID: string;
  Addr: string;
  IP: string;
}

type ClusterEvent = DockerEvent & { node?: NodeField };

/** Orders and deduplicates events of several streams; `write` gets them in time order. */
export class EventMerger {
  private pending: ClusterEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly seen = new Set<string>();
  private closed = false;

  constructor(
    private readonly write: (event: ClusterEvent) => void,
    private readonly holdMs = HOLD_MS,
  ) {}

  add(event: ClusterEvent): void {
    if (this.closed) return;
    const key = eventKey(event);
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.seen.size > REMEMBERED_KEYS) this.seen.delete(this.seen.values().next().value!);
    this.pending.push(event);
    this.timer ??= setTimeout(() => this.flush(), this.holdMs);
  }

  /** Writes everything held, oldest first. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending.sort((a, b) => a.timeNano - b.timeNano);
    this.pending = [];
    for (const event of batch) this.write(event);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = [];
    this.closed = true;
  }
}

/**
 * What makes two events one. A cluster network is made and removed on every host, each
 * saying so within the same second: network events are one per second. Any other event is
 * one host's own, so only a true repeat (same nanosecond) is the same event.
 */
function eventKey(event: ClusterEvent): string {
  const attributes = JSON.stringify(Object.entries(event.Actor?.Attributes ?? {}).sort(([a], [b]) => a.localeCompare(b)));
  const when = event.Type === 'network' ? String(event.time) : String(event.timeNano);
  return [event.Type, event.Action, event.Actor?.ID ?? '', attributes, when].join('\u0000');
}

export const nodeField = (host: ClusterHost): NodeField => ({ Name: host.name, ID: host.id, Addr: host.address, IP: host.address });

/** The operator's record of hosts coming and going, newest last. */
class HostEventLog {
  readonly history: ClusterEvent[] = [];
  private readonly listeners = new Set<(event: ClusterEvent) => void>();

  record(action: string, host: ClusterHost): void {
    const nowMs = Date.now();
    const event: ClusterEvent = {
      Type: 'node',
      Action: action,
      Actor: { ID: host.id, Attributes: { name: host.name, address: host.address } },
      scope: 'swarm',
      time: Math.floor(nowMs / 1000),
      timeNano: nowMs * 1_000_000,
      node: nodeField(host),
    };
    this.history.push(event);
    if (this.history.length > HOST_EVENT_HISTORY) this.history.shift();
    for (const listener of this.listeners) listener(event);
  }

  subscribe(listener: (event: ClusterEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export async function registerEventRoutes(app: FastifyInstance, deps: FrontDeps): Promise<void> {
  const hostEvents = new HostEventLog();
  const hubActions: [HostEvent, string][] = [
    ['host-up', 'up'],
    ['host-down', 'down'],
    ['host-removed', 'remove'],
  ];
  const hubListeners = hubActions.map(([hubEvent, action]) => {
    const listener = (host: ClusterHost): void => hostEvents.record(action, host);
    deps.hub.on(hubEvent, listener);
    return [hubEvent, listener] as const;
  });
  const openStreams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const [hubEvent, listener] of hubListeners) deps.hub.off(hubEvent, listener);
    for (const close of openStreams) close();
  });

  // SystemEvents
  app.get('/events', async (request, reply) => {
    const ctx = requestContext(request);
    const query = request.query as Record<string, string | undefined>;
    const filters = parseFilterJson(query.filters);
    validateEventFilters(filters);
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const sinceNs = parseTimeSpec(query.since, nowNs);
    const untilNs = parseTimeSpec(query.until, nowNs);

    // Every host's stream opens before the answer starts, so bad input gets the engine's error.
    const hosts = deps.hosts.up();
    const opened = await Promise.allSettled(hosts.map((host) => subscribe(deps, ctx, host, request.url)));
    const upstreams: { host: ClusterHost; stream: IncomingMessage }[] = [];
    let refusal: Error | undefined;
    for (const [index, result] of opened.entries()) {
      if (result.status === 'rejected') {
        deps.logger.warn({ err: result.reason, host: hosts[index]!.name }, 'a host did not open its event stream');
        continue;
      }
      const stream = result.value;
      if ((stream.statusCode ?? 500) >= 400) refusal ??= engineError(stream.statusCode ?? 500, await readAll(stream));
      else upstreams.push({ host: hosts[index]!, stream });
    }
    if (refusal) {
      for (const { stream } of upstreams) stream.destroy();
      throw refusal;
    }

    reply.hijack();
    const res = reply.raw;
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) res.setHeader(name, typeof value === 'number' ? String(value) : value);
    }
    res.setHeader('Content-Type', 'application/json');
    res.writeHead(200);
    res.flushHeaders();

    const merger = new EventMerger((event) => {
      if (!res.destroyed) res.write(`${JSON.stringify(event)}\n`);
    });
    const live = new Set<IncomingMessage>();
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      merger.flush();
      merger.close();
      for (const stream of live) stream.destroy();
      unsubscribeHosts();
      deps.hub.off('host-up', onHostUp);
      openStreams.delete(finish);
      if (!res.destroyed) res.end();
    };
    openStreams.add(finish);
    res.once('close', finish);

    const pump = (host: ClusterHost, stream: IncomingMessage): void => {
      live.add(stream);
      void (async () => {
        try {
          // A malformed line is skipped: a truncated line of a host that went away.
          for await (const event of jsonLines<DockerEvent>(stream)) merger.add({ ...event, node: nodeField(host) });
        } catch (err) {
          deps.logger.debug({ err, host: host.name }, 'a host event stream ended with an error');
        } finally {
          live.delete(stream);
          // With `until`, the stream is over once every host has said all it had to say.
          if (untilNs !== undefined && live.size === 0) finish();
        }
      })();
    };

    // The operator's own view of the cluster: hosts coming and going.
    const wantsHostEvents = ctx.tenant === OPERATOR_TENANT;
    const inWindow = (event: ClusterEvent): boolean =>
      (sinceNs === undefined || BigInt(event.timeNano) >= sinceNs) && (untilNs === undefined || BigInt(event.timeNano) <= untilNs) && eventMatches(filters, event);
    let unsubscribeHosts = (): void => undefined;
    if (wantsHostEvents) {
      if (sinceNs !== undefined) for (const event of hostEvents.history) if (inWindow(event)) merger.add(event);
      unsubscribeHosts = hostEvents.subscribe((event) => {
        if (inWindow(event)) merger.add(event);
      });
    }

    const onHostUp = (host: ClusterHost): void => {
      if (finished || (untilNs !== undefined && untilNs < BigInt(Date.now()) * 1_000_000n)) return;
      const since = (Date.now() / 1000 - 1).toFixed(3);
      const params = new URLSearchParams();
      params.set('since', since);
      if (query.until !== undefined) params.set('until', query.until);
      if (query.filters !== undefined) params.set('filters', query.filters);
      subscribe(deps, ctx, host, `/events?${params.toString()}`)
        .then((stream) => {
          if (finished || (stream.statusCode ?? 500) >= 400) stream.destroy();
          else pump(host, stream);
        })
        .catch((err: unknown) => deps.logger.warn({ err, host: host.name }, 'could not follow the events of a host that came up'));
    };
    deps.hub.on('host-up', onHostUp);

    for (const { host, stream } of upstreams) pump(host, stream);
    if (untilNs !== undefined && upstreams.length === 0) finish();
  });
}

function subscribe(deps: FrontDeps, ctx: RequestContext, host: ClusterHost, path: string): Promise<IncomingMessage> {
  return deps.hosts.request(ctx, host.id, { method: 'GET', path });
}

