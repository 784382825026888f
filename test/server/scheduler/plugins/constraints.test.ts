import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONSTRAINTS_LABEL } from '../../../../src/server/scheduler/expressions.js';
import { feasibleHosts, makeHost, makeRequest, placeOn, schedulerWith } from '../../../support/scheduler-fixtures.js';

const hosts = [
  makeHost('h-eu-ssd', { name: 'node-1', labels: { region: 'eu', storage: 'ssd' } }),
  makeHost('h-eu-hdd', { name: 'node-2', labels: { region: 'eu', storage: 'hdd' } }),
  makeHost('h-us', { name: 'node-3', labels: { region: 'us-east', storage: 'ssd' } }),
  makeHost('h-bare', { name: 'other' }),
];

test('hard constraints keep only the hosts that satisfy every rule', async () => {
  const cases: { name: string; env?: string[]; labels?: Record<string, string>; want: string[] }[] = [
    { name: 'label ==', env: ['constraint:region==eu'], want: ['h-eu-hdd', 'h-eu-ssd'] },
    { name: 'label != keeps hosts without the label', env: ['constraint:region!=eu'], want: ['h-bare', 'h-us'] },
    { name: 'glob', env: ['constraint:region==us*'], want: ['h-us'] },
    { name: 'negated glob', env: ['constraint:region!=us*'], want: ['h-bare', 'h-eu-hdd', 'h-eu-ssd'] },
    { name: 'regexp', env: ['constraint:node==/node-[12]/'], want: ['h-eu-hdd', 'h-eu-ssd'] },
    { name: 'node by name', env: ['constraint:node==node-3'], want: ['h-us'] },
    { name: 'node by id', env: ['constraint:node==h-bare'], want: ['h-bare'] },
    { name: 'two rules AND', env: ['constraint:region==eu', 'constraint:storage==ssd'], want: ['h-eu-ssd'] },
    { name: 'from the swarm label', labels: { [CONSTRAINTS_LABEL]: '["storage==ssd","region!=eu"]' }, want: ['h-us'] },
    { name: 'env and label together', env: ['constraint:storage==ssd'], labels: { [CONSTRAINTS_LABEL]: '["node!=node-1"]' }, want: ['h-us'] },
  ];
  for (const c of cases) {
    const scheduler = await schedulerWith(hosts);
    assert.deepEqual(feasibleHosts(scheduler, makeRequest({ env: c.env ?? [], labels: c.labels ?? {} })), c.want, c.name);
  }
});

test('an unsatisfiable constraint names itself in the summary', async () => {
  const scheduler = await schedulerWith(hosts);
  assert.equal(placeOn(scheduler, makeRequest({ env: ['constraint:region==ap'] })), 'error: no host fits: 4 hosts excluded by constraint region==ap');
  assert.equal(
    placeOn(scheduler, makeRequest({ env: ['constraint:region==eu', 'constraint:storage==nvme'] })),
    'error: no host fits: 2 hosts excluded by constraint region==eu, 2 excluded by constraint storage==nvme',
  );
});

test('soft constraints prefer matching hosts and never refuse', async () => {
  const scheduler = await schedulerWith(hosts);
  for (let i = 0; i < 5; i++) assert.equal(placeOn(scheduler, makeRequest({ env: ['constraint:node==~node-3'] })), 'h-us');
  assert.notEqual(placeOn(scheduler, makeRequest({ env: ['constraint:region==~ap'] })).startsWith('error'), true);
  // Soft and hard together: the hard rule filters, the soft one chooses among the rest.
  for (let i = 0; i < 5; i++) {
    assert.equal(placeOn(scheduler, makeRequest({ env: ['constraint:region==eu', 'constraint:storage!=~ssd'] })), 'h-eu-hdd');
  }
});
