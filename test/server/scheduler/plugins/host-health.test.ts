import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterState } from '../../../../src/server/scheduler/cluster-state.js';
import { HostHealth, REASON_CORDONED, REASON_DOWN } from '../../../../src/server/scheduler/plugins/host-health.js';
import { CycleState } from '../../../../src/server/scheduler/types.js';
import { makeHost, makeRequest, placeOn, schedulerWith } from '../../../support/scheduler-fixtures.js';

test('host-health filter: healthy and uncordoned fits; down and cordoned carry their reason', () => {
  const cases = [
    { name: 'healthy', host: makeHost('h'), want: null },
    { name: 'down', host: makeHost('h', { healthy: false }), want: REASON_DOWN },
    { name: 'cordoned', host: makeHost('h', { cordoned: true }), want: REASON_CORDONED },
    { name: 'down and cordoned reports down', host: makeHost('h', { healthy: false, cordoned: true }), want: REASON_DOWN },
  ];
  for (const c of cases) {
    const cluster = new ClusterState();
    cluster.upsertHost(c.host);
    assert.equal(new HostHealth().filter(new CycleState(), makeRequest(), cluster.host('h')!), c.want, c.name);
  }
});

test('a cordon reported later takes the host out of placement; uncordon brings it back', async () => {
  const scheduler = await schedulerWith([makeHost('a'), makeHost('b', { healthy: false })]);
  assert.equal(placeOn(scheduler, makeRequest()), 'a');
  scheduler.cluster.upsertHost(makeHost('a', { cordoned: true }));
  assert.equal(placeOn(scheduler, makeRequest()), 'error: no host fits: 1 host cordoned, 1 down');
  scheduler.cluster.upsertHost(makeHost('a'));
  assert.equal(placeOn(scheduler, makeRequest()), 'a');
});
