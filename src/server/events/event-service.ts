import { join } from 'node:path';
import type { RequestContext } from '../../common/context.js';
import { invalidArgument } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { EventJournal } from './event-journal.js';
import { eventMatches, validateEventFilters, type FilterArgs } from './filters.js';
import { parseTimeSpec } from './time-spec.js';
import type { DockerEvent, EventPublisher } from './types.js';

/**
 * EventService records what happens to a tenant's objects and streams it to `GET /events`.
 *
 * Terms:
 * - history: the last events of one tenant, oldest first, bounded by count
 *   (`maxEventsPerTenant`, default 10,000) and age (`maxAgeMs`, default one day). It is
 *   what `docker events --since/--until` replays. dockerd keeps 256 events in memory; Berth
 *   keeps more and keeps them across restarts.
 * - journal: where history is kept when `dataRoot` is given — one JSON-lines file per tenant,
 *   `<dataRoot>/events/<tenant>.jsonl` (see EventJournal). Without it history lives in memory only.
 * - subscription: one reader of one tenant's events: the matching history first (only when
 *   since or until was given, as in dockerd), then live events, until `until` passes, the
 *   reader closes it, or the service closes.
 *
 * Invariants: a tenant never sees another tenant's events. publish never throws on account
 * of the journal (a failed write is logged; the event is still delivered and kept in memory)
 * because the operation it reports has already happened. A subscriber that falls more than
 * `subscriberQueueLimit` events behind is ended rather than left to grow without bound.
 */
export class EventService implements EventPublisher {
  private readonly tenants = new Map<string, TenantEvents>();
  private readonly maxEvents: number;
  private readonly maxAgeNs: bigint;
  private readonly queueLimit: number;
  private readonly now: () => bigint;
  private closed = false;

  constructor(private readonly options: EventServiceOptions = {}) {
    this.maxEvents = options.maxEventsPerTenant ?? 10_000;
    this.maxAgeNs = BigInt(options.maxAgeMs ?? 24 * 3600 * 1000) * 1_000_000n;
    this.queueLimit = options.subscriberQueueLimit ?? 10_000;
    this.now = options.clock ?? wallClockNanos;
  }

  /** Stamps the event as dockerd does, records it in the tenant's history and hands it to live subscribers. */
  publish(ctx: RequestContext, input: Pick<DockerEvent, 'Type' | 'Action' | 'Actor'>): DockerEvent {
    const nowNs = this.now();
    const event: DockerEvent = {
      Type: input.Type,
      Action: input.Action,
      Actor: { ID: input.Actor.ID, Attributes: { ...input.Actor.Attributes } },
      scope: 'local',
      time: Number(nowNs / 1_000_000_000n),
      timeNano: Number(nowNs),
    };
    // The pre-1.22 fields older clients still read; dockerd fills them for these two types only.
    if (input.Type === 'container') {
      event.status = input.Action;
      event.id = input.Actor.ID;
      const image = input.Actor.Attributes.image;
      if (image !== undefined) event.from = image;
    } else if (input.Type === 'image') {
      event.status = input.Action;
      event.id = input.Actor.ID;
    }
    const tenant = this.tenant(ctx.tenant);
    tenant.history.push(event);
    this.trim(tenant, nowNs);
    if (tenant.journal) {
      try {
        tenant.journal.append(event, () => tenant.history);
      } catch (err) {
        this.options.logger?.error({ err, tenant: ctx.tenant }, 'could not record event in the journal');
      }
    }
    for (const sub of tenant.subscribers) sub.deliver(event);
    return event;
  }

  /**
   * Opens a subscription. `since` and `until` take Docker's forms (see parseTimeSpec);
   * `filters` Docker's filter keys (see eventMatches). Bad input is InvalidArgument and opens
   * nothing, so callers may validate by subscribing before they answer.
   */
  subscribe(ctx: RequestContext, query: EventQuery = {}): EventSubscription {
    const nowNs = this.now();
    const since = parseTimeSpec(query.since, nowNs);
    const until = parseTimeSpec(query.until, nowNs);
    const filters = query.filters ?? {};
    validateEventFilters(filters);
    if (since !== undefined && until !== undefined && until < since) {
      throw invalidArgument(`\`since\` time (${query.since}) cannot be after \`until\` time (${query.until})`);
    }
    const tenant = this.tenant(ctx.tenant);
    const matches = (e: DockerEvent): boolean => eventMatches(filters, e);
    const replay =
      since === undefined && until === undefined
        ? []
        : tenant.history.filter((e) => {
            const t = BigInt(e.timeNano);
            return (since === undefined || t >= since) && (until === undefined || t <= until) && matches(e);
          });
    const sub = new Subscription(replay, matches, until, this.queueLimit, () => tenant.subscribers.delete(sub), this.now);
    if (this.closed || (until !== undefined && until <= nowNs)) {
      sub.close();
    } else {
      tenant.subscribers.add(sub);
      sub.armUntil();
    }
    return sub;
  }

  /** Live subscriptions across tenants (`NEventsListener` in /info). */
  listenerCount(): number {
    let n = 0;
    for (const t of this.tenants.values()) n += t.subscribers.size;
    return n;
  }

  /** Ends every subscription and closes the journals; later publishes are kept in memory only. */
  close(): void {
    this.closed = true;
    for (const t of this.tenants.values()) {
      for (const sub of [...t.subscribers]) sub.close();
      t.journal?.close();
      t.journal = undefined;
    }
  }

  private tenant(name: string): TenantEvents {
    let t = this.tenants.get(name);
    if (t) return t;
    t = { history: [], subscribers: new Set() };
    if (this.options.dataRoot !== undefined && !this.closed) {
      const dir = join(this.options.dataRoot, 'events');
      t.journal = new EventJournal(EventJournal.fileFor(dir, name), 2 * this.maxEvents);
      try {
        t.history = t.journal.load();
      } catch (err) {
        this.options.logger?.error({ err, tenant: name }, 'could not read the event journal; starting empty');
      }
      this.trim(t, this.now());
    }
    this.tenants.set(name, t);
    return t;
  }

  private trim(t: TenantEvents, nowNs: bigint): void {
    const oldest = Number(nowNs - this.maxAgeNs);
    let drop = 0;
    while (drop < t.history.length && t.history[drop]!.timeNano < oldest) drop++;
    const excess = t.history.length - drop - this.maxEvents;
    if (excess > 0) drop += excess;
    if (drop > 0) t.history.splice(0, drop);
  }
}

export interface EventServiceOptions {
  /** Berth's data root: journals go to `<dataRoot>/events/`. Omit to keep history in memory only. */
  dataRoot?: string;
  maxEventsPerTenant?: number;
  maxAgeMs?: number;
  subscriberQueueLimit?: number;
  /** Nanoseconds since the epoch; tests pass a fake. */
  clock?: () => bigint;
  logger?: Logger;
}

export interface EventQuery {
  since?: string;
  until?: string;
  filters?: FilterArgs;
}

/** A stream of one tenant's events; iterate it, and close it when the reader goes away. */
export interface EventSubscription extends AsyncIterable<DockerEvent> {
  close(): void;
}

interface TenantEvents {
  history: DockerEvent[];
  journal?: EventJournal | undefined;
  subscribers: Set<Subscription>;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

class Subscription implements EventSubscription {
  private readonly queue: DockerEvent[];
  private done = false;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    replay: DockerEvent[],
    private readonly matches: (e: DockerEvent) => boolean,
    private readonly until: bigint | undefined,
    private readonly limit: number,
    private readonly detach: () => void,
    private readonly now: () => bigint,
  ) {
    this.queue = replay;
  }

  deliver(event: DockerEvent): void {
    if (this.done || !this.matches(event)) return;
    if (this.until !== undefined && BigInt(event.timeNano) > this.until) return;
    if (this.queue.length >= this.limit) {
      // The reader fell too far behind; what it has queued is still delivered, then it ends.
      this.close();
      return;
    }
    this.queue.push(event);
    this.signal();
  }

  /** Ends the stream when `until` passes (node timers cap at ~24 days, so re-arm as needed). */
  armUntil(): void {
    if (this.until === undefined || this.done) return;
    const remainingMs = Number((this.until - this.now()) / 1_000_000n) + 1;
    if (remainingMs <= 0) {
      this.close();
      return;
    }
    this.timer = setTimeout(() => this.armUntil(), Math.min(remainingMs, MAX_TIMER_MS));
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.detach();
    this.signal();
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<DockerEvent> {
    return {
      next: async (): Promise<IteratorResult<DockerEvent>> => {
        for (;;) {
          const event = this.queue.shift();
          if (event) return { value: event, done: false };
          if (this.done) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (this.wake = resolve));
        }
      },
      return: async (): Promise<IteratorResult<DockerEvent>> => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }
}

let anchorWallNs = 0n;
let anchorMonoNs = 0n;

/**
 * Pins the monotonic clock to the wall clock at the instant a millisecond turns, so the anchor
 * is accurate to about a microsecond instead of a whole millisecond (Date.now() truncates).
 * Busy-waits at most ~1 ms; runs at start-up and after clock steps or drift.
 */
function anchorClock(): void {
  const start = Date.now();
  const giveUp = process.hrtime.bigint() + 2_000_000n;
  for (;;) {
    const wall = Date.now();
    const mono = process.hrtime.bigint();
    if (wall !== start || mono > giveUp) {
      anchorWallNs = BigInt(wall) * 1_000_000n;
      anchorMonoNs = mono;
      return;
    }
  }
}

/**
 * Wall-clock time with sub-millisecond resolution: the monotonic clock measured from a
 * wall-clock anchor. It never reads earlier than Date.now(), so an event is never stamped
 * before a time a client read from the same clock just before causing it; when it falls
 * behind or runs more than 2 ms ahead (an NTP step or slew) it is re-anchored.
 */
export function wallClockNanos(): bigint {
  const wall = BigInt(Date.now()) * 1_000_000n;
  let estimate = anchorWallNs + (process.hrtime.bigint() - anchorMonoNs);
  if (anchorWallNs === 0n || estimate < wall || estimate > wall + 2_000_000n) {
    anchorClock();
    estimate = anchorWallNs + (process.hrtime.bigint() - anchorMonoNs);
  }
  return estimate;
}
