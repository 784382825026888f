import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventService, type EventSubscription } from '../../../src/server/events/event-service.js';
import type { DockerEvent } from '../../../src/server/events/types.js';
import type { RequestContext } from '../../../src/common/context.js';
import { isKind } from '../../../src/common/errors.js';

const alice: RequestContext = { tenant: 'alice', requestId: 't' };
const bob: RequestContext = { tenant: 'bob', requestId: 't' };
const S = 1_000_000_000n;

/** A clock the test moves by hand, starting at a round second. */
function fakeClock(start = 1_700_000_000n * S): { now: () => bigint; advance: (ns: bigint) => void } {
  let t = start;
  return { now: () => t, advance: (ns) => (t += ns) };
}

const container = (action: string, name = 'web', image = 'busybox:latest', id = 'c'.repeat(64)) =>
  ({ Type: 'container', Action: action, Actor: { ID: id, Attributes: { name, image } } }) as const;

/** Takes what the subscription yields until it ends or `count` events arrived. */
async function take(sub: EventSubscription, count = Infinity): Promise<DockerEvent[]> {
  const out: DockerEvent[] = [];
  if (count === 0) return out;
  for await (const e of sub) {
    out.push(e);
    if (out.length >= count) break;
  }
  return out;
}

const tmpRoots: string[] = [];
function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-events-'));
  tmpRoots.push(dir);
  return dir;
}
after(() => {
  for (const dir of tmpRoots) rmSync(dir, { recursive: true, force: true });
});

describe('EventService.publish', () => {
  it('stamps time, scope and the deprecated fields of a container event', () => {
    const clock = fakeClock(1_700_000_000_123_456_789n);
    const ev = new EventService({ clock: clock.now }).publish(alice, container('create'));
    assert.equal(ev.scope, 'local');
    assert.equal(ev.time, 1_700_000_000);
    assert.equal(BigInt(ev.timeNano) / 1000n, 1_700_000_000_123_456n); // a double keeps microseconds
    assert.equal(ev.status, 'create');
    assert.equal(ev.id, 'c'.repeat(64));
    assert.equal(ev.from, 'busybox:latest');
  });

  it('fills status and id but not from for an image event', () => {
    const ev = new EventService().publish(alice, { Type: 'image', Action: 'pull', Actor: { ID: 'busybox:latest', Attributes: { name: 'busybox:latest' } } });
    assert.deepEqual([ev.status, ev.id, ev.from], ['pull', 'busybox:latest', undefined]);
  });

  it('leaves the deprecated fields off other types', () => {
    const ev = new EventService().publish(alice, { Type: 'volume', Action: 'create', Actor: { ID: 'data', Attributes: { driver: 'local' } } });
    assert.equal('status' in ev || 'id' in ev || 'from' in ev, false);
  });

  it('copies the attributes so a later change by the caller does not rewrite history', async () => {
    const svc = new EventService();
    const attrs: Record<string, string> = { name: 'web' };
    svc.publish(alice, { Type: 'container', Action: 'create', Actor: { ID: 'x', Attributes: attrs } });
    attrs.name = 'changed';
    const [replayed] = await take(svc.subscribe(alice, { since: '0', until: String(Date.now() / 1000 + 60) }), 1);
    assert.equal(replayed?.Actor.Attributes.name, 'web');
  });
});

describe('EventService.subscribe', () => {
  it('replays history between since and until, inclusive, with filters applied', async () => {
    const clock = fakeClock();
    const svc = new EventService({ clock: clock.now });
    const times: bigint[] = [];
    for (const action of ['create', 'start', 'die', 'destroy']) {
      times.push(BigInt(svc.publish(alice, container(action)).timeNano));
      clock.advance(S);
    }
    const sec = (ns: bigint): string => `${ns / S}.${String(ns % S).padStart(9, '0')}`;
    const cases: { name: string; since?: string; until?: string; filters?: Record<string, string[]>; want: string[] }[] = [
      { name: 'since only, then live', since: sec(times[1]!), until: sec(clock.now()), want: ['start', 'die', 'destroy'] },
      { name: 'window', since: sec(times[1]!), until: sec(times[2]!), want: ['start', 'die'] },
      { name: 'until only replays from the start', until: sec(times[0]!), want: ['create'] },
      { name: 'filtered', since: '0', until: sec(clock.now()), filters: { event: ['die', 'create'] }, want: ['create', 'die'] },
      { name: 'duration since', since: '2500ms', until: sec(clock.now()), want: ['die', 'destroy'] },
    ];
    for (const c of cases) {
      const got = await take(svc.subscribe(alice, { since: c.since, until: c.until, filters: c.filters }));
      assert.deepEqual(got.map((e) => e.Action), c.want, c.name);
    }
  });

  it('replays nothing without since or until, and streams live events', async () => {
    const svc = new EventService();
    svc.publish(alice, container('create'));
    const sub = svc.subscribe(alice, { filters: { event: ['start'] } });
    svc.publish(alice, container('kill'));
    svc.publish(alice, container('start'));
    const got = await take(sub, 1);
    assert.deepEqual(got.map((e) => e.Action), ['start']);
    assert.equal(svc.listenerCount(), 0, 'breaking out of the loop closes the subscription');
  });

  it('keeps tenants apart', async () => {
    const svc = new EventService();
    svc.publish(bob, container('create', 'bobs'));
    const sub = svc.subscribe(alice, { since: '0' });
    svc.publish(bob, container('start', 'bobs'));
    svc.publish(alice, container('start', 'alices'));
    const got = await take(sub, 1);
    assert.deepEqual(got.map((e) => e.Actor.Attributes.name), ['alices']);
  });

  it('ends when until passes', async () => {
    const svc = new EventService();
    const untilSec = (Date.now() + 150) / 1000;
    const sub = svc.subscribe(alice, { until: untilSec.toFixed(3) });
    assert.equal(svc.listenerCount(), 1);
    setTimeout(() => svc.publish(alice, container('start')), 20);
    const started = Date.now();
    const got = await take(sub);
    assert.deepEqual(got.map((e) => e.Action), ['start']);
    assert.ok(Date.now() - started < 2000);
    assert.equal(svc.listenerCount(), 0);
  });

  it('ends at once when until is in the past', async () => {
    const clock = fakeClock();
    const svc = new EventService({ clock: clock.now });
    svc.publish(alice, container('create'));
    clock.advance(2n * S);
    const got = await take(svc.subscribe(alice, { until: '1s' }));
    assert.deepEqual(got.map((e) => e.Action), ['create']);
    assert.equal(svc.listenerCount(), 0);
  });

  it('ends a subscriber that falls too far behind, after what it has queued', async () => {
    const svc = new EventService({ subscriberQueueLimit: 2 });
    const sub = svc.subscribe(alice);
    for (const action of ['a', 'b', 'c', 'd']) svc.publish(alice, container(action));
    assert.deepEqual((await take(sub)).map((e) => e.Action), ['a', 'b']);
  });

  it('close ends every stream', async () => {
    const svc = new EventService();
    const pending = take(svc.subscribe(alice));
    svc.close();
    assert.deepEqual(await pending, []);
  });

  const bad: { name: string; query: { since?: string; until?: string; filters?: Record<string, string[]> }; message: string }[] = [
    { name: 'since after until', query: { since: '200', until: '100' }, message: '`since` time (200) cannot be after `until` time (100)' },
    { name: 'unparsable since', query: { since: 'soon' }, message: 'failed to parse value as time or duration: "soon"' },
    { name: 'unknown filter', query: { filters: { colour: ['red'] } }, message: "invalid filter 'colour'" },
  ];
  for (const c of bad) {
    it(`rejects ${c.name} and opens nothing`, () => {
      const svc = new EventService();
      assert.throws(() => svc.subscribe(alice, c.query), (err: unknown) => isKind(err, 'InvalidArgument') && err.message === c.message);
      assert.equal(svc.listenerCount(), 0);
    });
  }
});

describe('EventService history bounds and journal', () => {
  it('keeps at most maxEventsPerTenant', async () => {
    const svc = new EventService({ maxEventsPerTenant: 3 });
    for (let i = 0; i < 10; i++) svc.publish(alice, container(`a${i}`));
    const got = await take(svc.subscribe(alice, { since: '0', until: '0s' }));
    assert.deepEqual(got.map((e) => e.Action), ['a7', 'a8', 'a9']);
  });

  it('drops events older than maxAgeMs', async () => {
    const clock = fakeClock();
    const svc = new EventService({ clock: clock.now, maxAgeMs: 60_000 });
    svc.publish(alice, container('old'));
    clock.advance(61n * S);
    svc.publish(alice, container('new'));
    const got = await take(svc.subscribe(alice, { since: '0', until: `${clock.now() / S}` }));
    assert.deepEqual(got.map((e) => e.Action), ['new']);
  });

  it('replays across a restart from the journal, per tenant', async () => {
    const dir = tmp();
    const first = new EventService({ dataRoot: dir });
    first.publish(alice, container('create'));
    first.publish(bob, container('create', 'bobs'));
    first.publish(alice, container('start'));
    first.close();
    const second = new EventService({ dataRoot: dir });
    const got = await take(second.subscribe(alice, { since: '0', until: '0s' }));
    assert.deepEqual(got.map((e) => e.Action), ['create', 'start']);
    assert.deepEqual(got[0], JSON.parse(readFileSync(join(dir, 'events', 'alice.jsonl'), 'utf8').split('\n')[0]!));
    second.close();
  });

  it('skips a torn last line left by a crash', async () => {
    const dir = tmp();
    const first = new EventService({ dataRoot: dir });
    first.publish(alice, container('create'));
    first.close();
    appendFileSync(join(dir, 'events', 'alice.jsonl'), '{"Type":"contai');
    const second = new EventService({ dataRoot: dir });
    const got = await take(second.subscribe(alice, { since: '0', until: '0s' }));
    assert.deepEqual(got.map((e) => e.Action), ['create']);
    second.close();
  });

  it('compacts the journal so it stays bounded', async () => {
    const dir = tmp();
    const svc = new EventService({ dataRoot: dir, maxEventsPerTenant: 5 });
    for (let i = 0; i < 23; i++) svc.publish(alice, container(`a${i}`));
    svc.close();
    const lines = readFileSync(join(dir, 'events', 'alice.jsonl'), 'utf8').trim().split('\n');
    assert.ok(lines.length <= 10, `journal has ${lines.length} lines`);
    const again = new EventService({ dataRoot: dir, maxEventsPerTenant: 5 });
    const got = await take(again.subscribe(alice, { since: '0', until: '0s' }));
    assert.deepEqual(got.map((e) => e.Action), ['a18', 'a19', 'a20', 'a21', 'a22']);
    again.close();
  });

  it('names journals safely for any tenant name', () => {
    const dir = tmp();
    const svc = new EventService({ dataRoot: dir });
    svc.publish({ tenant: '../evil.x', requestId: 't' }, container('create'));
    svc.close();
    assert.ok(readFileSync(join(dir, 'events', '%2E%2E%2Fevil%2Ex.jsonl'), 'utf8').includes('"create"'));
  });
});
