import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BerthError } from '../../../src/common/errors.js';
import { parseSize, planLocalMount } from '../../../src/agent/volumes/local-volumes.js';

test('planLocalMount accepts plain, tmpfs and bind volumes', () => {
  assert.equal(planLocalMount({}), undefined);
  assert.deepEqual(planLocalMount({ type: 'tmpfs', device: 'tmpfs', o: 'size=64m,uid=1000' }), { kind: 'tmpfs', data: ['size=64m', 'uid=1000'] });
  assert.deepEqual(planLocalMount({ type: 'tmpfs', size: '1m' }), { kind: 'tmpfs', data: ['size=1048576'] });
  assert.deepEqual(planLocalMount({ type: 'none', o: 'bind,ro', device: '/srv' }), { kind: 'bind', device: '/srv', readonly: true });
});

test('planLocalMount refuses with dockerd\'s messages, or says what Berth does not offer', () => {
  const cases: { opts: Record<string, string>; kind: string; message: RegExp }[] = [
    { opts: { foo: 'bar' }, kind: 'InvalidArgument', message: /^invalid option: "foo"$/ },
    { opts: { size: '10m' }, kind: 'InvalidArgument', message: /^quota size requested but no quota support$/ },
    { opts: { device: '/dev/sda1' }, kind: 'InvalidArgument', message: /missing required option: "type"/ },
    { opts: { type: 'ext4', device: '/dev/sda1' }, kind: 'NotImplemented', message: /type "ext4" are not supported/ },
    { opts: { type: 'none', o: 'bind', device: 'relative' }, kind: 'InvalidArgument', message: /absolute host path/ },
    { opts: { type: 'tmpfs', o: 'exec,suid' }, kind: 'InvalidArgument', message: /invalid tmpfs volume option "suid"/ },
  ];
  for (const c of cases) {
    assert.throws(() => planLocalMount(c.opts), (err) => err instanceof BerthError && err.kind === c.kind && c.message.test(err.message), JSON.stringify(c.opts));
  }
});

test('parseSize reads sizes as dockerd does', () => {
  assert.equal(parseSize('1024'), 1024);
  assert.equal(parseSize('64m'), 64 * 1024 * 1024);
  assert.equal(parseSize('1g'), 1024 ** 3);
  assert.equal(parseSize('2kb'), 2048);
  assert.throws(() => parseSize('lots'));
});
