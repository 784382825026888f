import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalisePortBindings, PortReservations, wantedBindings } from '../../../src/server/networks/port-bindings.js';

test('normalisePortBindings keeps what the CLI sends, normalised, and refuses bad specs', () => {
  assert.deepEqual(normalisePortBindings({ '80': [{ HostIp: '', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }] }), {
    '80/tcp': [{ HostIp: '', HostPort: '8080' }],
    '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }],
  });
  assert.throws(() => normalisePortBindings({ 'x/tcp': [] }), /invalid port specification/);
  assert.throws(() => normalisePortBindings({ '80/tcp': [{ HostPort: '9-1' }] }), /invalid host port range/);
  assert.throws(() => normalisePortBindings({ '80/tcp': [{ HostIp: '::1', HostPort: '1' }] }), /IPv6/);
  assert.throws(() => normalisePortBindings({ '80/tcp': [{ HostIp: 'nope', HostPort: '1' }] }), /invalid IP address/);
});

test('wantedBindings: explicit bindings, then -P for exposed ports without one', () => {
  const wanted = wantedBindings({ '80/tcp': [{ HostIp: '', HostPort: '8000-8005' }] }, { '80/tcp': {}, '81/tcp': {}, '82/udp': {} }, true);
  assert.deepEqual(wanted, [
    { proto: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPorts: [8000, 8005] },
    { proto: 'tcp', containerPort: 81, hostIp: '0.0.0.0' },
    { proto: 'udp', containerPort: 82, hostIp: '0.0.0.0' },
  ]);
  assert.deepEqual(wantedBindings({}, { '81/tcp': {} }, false), []);
});

test('PortReservations: a held port is refused with Docker\'s message, all or nothing, released on release', async () => {
  const ports = new PortReservations();
  const [first] = await ports.reserve('a', [{ proto: 'tcp', containerPort: 80, hostIp: '127.0.0.1' }], 'a (ep)');
  assert.ok(first!.hostPort > 0);
  await assert.rejects(
    ports.reserve('b', [{ proto: 'udp', containerPort: 53, hostIp: '127.0.0.1' }, { proto: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPorts: [first!.hostPort, first!.hostPort] }], 'b (ep)'),
    new RegExp(`endpoint b \\(ep\\): Bind for 0\\.0\\.0\\.0:${first!.hostPort} failed: port is already allocated`),
  );
  assert.equal(ports.all().length, 1, 'the udp port taken before the failure was given back');
  ports.release('a');
  const [again] = await ports.reserve('b', [{ proto: 'tcp', containerPort: 80, hostIp: '127.0.0.1', hostPorts: [first!.hostPort, first!.hostPort] }]);
  assert.equal(again!.hostPort, first!.hostPort);
  ports.releaseAll();
});
