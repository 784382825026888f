import assert from 'node:assert/strict';
import { test } from 'node:test';
import { humanDuration } from '../../../src/common/human-time.js';
import { selectContainers, statusText } from '../../../src/server/containers/container-views.js';
import { parseFilters } from '../../../src/server/list-filters.js';
import { ZERO_TIME, type ContainerRecord } from '../../../src/server/containers/model.js';

function record(overrides: { id: string; name: string; created: string; status?: ContainerRecord['state']['Status']; exitCode?: number; labels?: Record<string, string>; imageId?: string }): ContainerRecord {
  const running = overrides.status === 'running';
  return {
    id: overrides.id,
    name: overrides.name,
    created: overrides.created,
    image: 'busybox',
    imageId: overrides.imageId ?? 'sha256:aaa',
    path: 'sh',
    args: [],
    config: { Labels: overrides.labels ?? {} } as ContainerRecord['config'],
    hostConfig: {} as ContainerRecord['hostConfig'],
    state: {
      Status: overrides.status ?? 'created', Running: running, Paused: false, Restarting: false, OOMKilled: false, Dead: false,
      Pid: 0, ExitCode: overrides.exitCode ?? 0, Error: '', StartedAt: '2026-01-01T00:00:00Z', FinishedAt: overrides.status === 'exited' ? '2026-01-01T00:00:05Z' : ZERO_TIME,
    },
    restartCount: 0, manuallyStopped: false, logPath: '', hostnamePath: '', hostsPath: '', resolvConfPath: '',
  };
}

const records = [
  record({ id: 'a1', name: 'web', created: '2026-01-01T00:00:01Z', status: 'running', labels: { tier: 'front' } }),
  record({ id: 'b2', name: 'db', created: '2026-01-01T00:00:02Z', status: 'exited', exitCode: 3, labels: { tier: 'back', keep: '' } }),
  record({ id: 'c3', name: 'job', created: '2026-01-01T00:00:03Z', status: 'created', imageId: 'sha256:bbb' }),
];

test('selectContainers applies ps semantics', () => {
  const ids = (all: boolean, filters: Record<string, string[]>, limit = 0): string[] =>
    selectContainers(records, { all, limit, filters, imageIdsFor: (ref) => (ref === 'other' ? ['sha256:bbb'] : []) }).map((r) => r.id);
  const cases: { name: string; got: string[]; want: string[] }[] = [
    { name: 'running only by default', got: ids(false, {}), want: ['a1'] },
    { name: 'all, newest first', got: ids(true, {}), want: ['c3', 'b2', 'a1'] },
    { name: 'limit implies all', got: ids(false, {}, 2), want: ['c3', 'b2'] },
    { name: 'status filter', got: ids(false, { status: ['exited', 'created'] }), want: ['c3', 'b2'] },
    { name: 'exited code', got: ids(true, { exited: ['3'] }), want: ['b2'] },
    { name: 'label key', got: ids(true, { label: ['tier'] }), want: ['b2', 'a1'] },
    { name: 'label key=value', got: ids(true, { label: ['tier=back'] }), want: ['b2'] },
    { name: 'labels are ANDed', got: ids(true, { label: ['tier', 'keep'] }), want: ['b2'] },
    { name: 'name regexp', got: ids(true, { name: ['^w'] }), want: ['a1'] },
    { name: 'id prefix', got: ids(true, { id: ['b'] }), want: ['b2'] },
    { name: 'ancestor by image id', got: ids(true, { ancestor: ['other'] }), want: ['c3'] },
    { name: 'before', got: ids(true, { before: ['job'] }), want: ['b2', 'a1'] },
    { name: 'since', got: ids(true, { since: ['web'] }), want: ['c3', 'b2'] },
  ];
  for (const c of cases) assert.deepEqual(c.got, c.want, c.name);
  assert.throws(() => ids(true, { bogus: ['x'] }), /invalid filter 'bogus'/);
  assert.throws(() => ids(true, { status: ['sleeping'] }), /invalid filter 'status=sleeping'/);
});

test('parseFilters accepts both filter encodings', () => {
  assert.deepEqual(parseFilters('{"label":["a=b"]}'), { label: ['a=b'] });
  assert.deepEqual(parseFilters('{"label":{"a=b":true}}'), { label: ['a=b'] });
  assert.throws(() => parseFilters('not json'), /invalid filter/);
});

test('status text reads like dockerd', () => {
  assert.equal(statusText(records[0]!, Date.parse('2026-01-01T00:00:05Z')), 'Up 5 seconds');
  assert.equal(statusText(records[1]!, Date.parse('2026-01-01T00:02:05Z')), 'Exited (3) 2 minutes ago');
  assert.equal(statusText(records[2]!), 'Created');
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(61_000), 'About a minute');
  assert.equal(humanDuration(3 * 3600_000), '3 hours');
});
