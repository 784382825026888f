import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventMatches, familiarName, parseFilterJson, validateEventFilters, type FilterArgs } from '../../../src/server/events/filters.js';
import type { DockerEvent } from '../../../src/server/events/types.js';
import { isKind } from '../../../src/common/errors.js';

const CID = 'a'.repeat(64);
const IMG = `sha256:${'b'.repeat(64)}`;

function event(e: Partial<DockerEvent> & Pick<DockerEvent, 'Type' | 'Action'>, attrs: Record<string, string> = {}, id = CID): DockerEvent {
  return { scope: 'local', time: 1, timeNano: 1e9, Actor: { ID: id, Attributes: attrs }, ...e };
}

const createWeb = event({ Type: 'container', Action: 'create' }, { name: 'web', image: 'busybox:latest', tier: 'front', env: 'prod' });
const startWeb = event({ Type: 'container', Action: 'start' }, { name: 'web', image: 'busybox:latest', tier: 'front' });
const execStart = event({ Type: 'container', Action: 'exec_start: sh -c true' }, { name: 'web', image: 'busybox:latest' });
const pullImage = event({ Type: 'image', Action: 'pull' }, { name: 'docker.io/library/busybox:1.36' }, 'docker.io/library/busybox:1.36');
const tagImage = event({ Type: 'image', Action: 'tag' }, { name: 'localhost:5000/app:v2' }, IMG);
const netConnect = event({ Type: 'network', Action: 'connect' }, { name: 'bridge', container: CID }, 'n'.repeat(64));
const volCreate = event({ Type: 'volume', Action: 'create' }, { driver: 'local' }, 'data');

describe('eventMatches', () => {
  const cases: { name: string; filters: FilterArgs; event: DockerEvent; want: boolean }[] = [
    { name: 'no filters match everything', filters: {}, event: netConnect, want: true },
    { name: 'type matches', filters: { type: ['container'] }, event: createWeb, want: true },
    { name: 'type excludes', filters: { type: ['image'] }, event: createWeb, want: false },
    { name: 'OR within a key', filters: { type: ['image', 'container'] }, event: createWeb, want: true },
    { name: 'AND across keys', filters: { type: ['container'], event: ['start'] }, event: createWeb, want: false },
    { name: 'event exact', filters: { event: ['create'] }, event: createWeb, want: true },
    { name: 'event is not a prefix match', filters: { event: ['cre'] }, event: createWeb, want: false },
    { name: 'exec_start matches with its suffix', filters: { event: ['exec_start'] }, event: execStart, want: true },
    { name: 'container by name', filters: { container: ['web'] }, event: createWeb, want: true },
    { name: 'container by id prefix', filters: { container: ['aaaa'] }, event: createWeb, want: true },
    { name: 'container by other name', filters: { container: ['db'] }, event: createWeb, want: false },
    { name: 'container filter drops other kinds as dockerd does', filters: { container: ['web'] }, event: netConnect, want: false },
    { name: 'image by container image attribute', filters: { image: ['busybox:latest'] }, event: createWeb, want: true },
    { name: 'image without tag', filters: { image: ['busybox'] }, event: createWeb, want: true },
    { name: 'image event by familiar name', filters: { image: ['busybox'] }, event: pullImage, want: true },
    { name: 'image event by id', filters: { image: [IMG] }, event: tagImage, want: true },
    { name: 'image event by registry name', filters: { image: ['localhost:5000/app'] }, event: tagImage, want: true },
    { name: 'image mismatch', filters: { image: ['alpine'] }, event: createWeb, want: false },
    { name: 'label key present', filters: { label: ['tier'] }, event: createWeb, want: true },
    { name: 'label key=value', filters: { label: ['tier=front'] }, event: createWeb, want: true },
    { name: 'label wrong value', filters: { label: ['tier=back'] }, event: createWeb, want: false },
    { name: 'labels are ANDed', filters: { label: ['tier=front', 'env=prod'] }, event: startWeb, want: false },
    { name: 'labels all present', filters: { label: ['tier=front', 'env=prod'] }, event: createWeb, want: true },
    { name: 'volume by name', filters: { volume: ['data'] }, event: volCreate, want: true },
    { name: 'network by name', filters: { network: ['bridge'] }, event: netConnect, want: true },
    { name: 'scope local', filters: { scope: ['local'] }, event: createWeb, want: true },
    { name: 'scope swarm', filters: { scope: ['swarm'] }, event: createWeb, want: false },
    { name: 'daemon filter drops container events', filters: { daemon: ['x'] }, event: createWeb, want: false },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(eventMatches(c.filters, c.event), c.want));
  }
});

describe('parseFilterJson', () => {
  const cases: { name: string; input: string | undefined; want: FilterArgs }[] = [
    { name: 'absent', input: undefined, want: {} },
    { name: 'empty', input: '', want: {} },
    { name: 'map form', input: '{"type":{"container":true},"event":{"start":true,"die":true}}', want: { type: ['container'], event: ['start', 'die'] } },
    { name: 'legacy array form', input: '{"label":["a=b","c"]}', want: { label: ['a=b', 'c'] } },
    { name: 'false entries are not filters', input: '{"type":{"container":false}}', want: { type: [] } },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(parseFilterJson(c.input), c.want));
  }
  for (const input of ['{', '[]', '"x"', '{"type":"container"}', '{"type":[1]}']) {
    it(`rejects ${input}`, () => assert.throws(() => parseFilterJson(input), (err: unknown) => isKind(err, 'InvalidArgument')));
  }
});

describe('validateEventFilters', () => {
  it('accepts every documented key', () => {
    validateEventFilters({ config: ['x'], container: ['x'], daemon: ['x'], event: ['x'], image: ['x'], label: ['x'], network: ['x'], node: ['x'], plugin: ['x'], scope: ['local'], secret: ['x'], service: ['x'], type: ['container'], volume: ['x'] });
  });
  const bad: { name: string; filters: FilterArgs; message: string }[] = [
    { name: 'unknown key', filters: { colour: ['red'] }, message: "invalid filter 'colour'" },
    { name: 'unknown type', filters: { type: ['widget'] }, message: "invalid filter 'type=widget'" },
    { name: 'unknown scope', filters: { scope: ['global'] }, message: "invalid filter 'scope=global'" },
  ];
  for (const c of bad) {
    it(`rejects ${c.name}`, () =>
      assert.throws(() => validateEventFilters(c.filters), (err: unknown) => isKind(err, 'InvalidArgument') && err.message === c.message));
  }
});

describe('familiarName', () => {
  const cases: [string, string][] = [
    ['busybox', 'busybox'],
    ['busybox:latest', 'busybox'],
    ['docker.io/library/busybox:1.36', 'busybox'],
    ['docker.io/user/app', 'user/app'],
    ['localhost:5000/app:v2', 'localhost:5000/app'],
    ['localhost:5000/app', 'localhost:5000/app'],
    [`app@sha256:${'c'.repeat(64)}`, 'app'],
    [IMG, IMG],
  ];
  for (const [input, want] of cases) it(`${input} → ${want}`, () => assert.equal(familiarName(input), want));
});
