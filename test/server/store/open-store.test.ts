import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BerthError } from '../../../src/common/errors.js';
import { EtcdKeys, prefixEnd } from '../../../src/server/store/etcd/etcd-keys.js';
import { parseEtcdUrl } from '../../../src/server/store/open-store.js';

test('etcd URLs: endpoints, optional prefix, bad forms refused as InvalidArgument', () => {
  const cases: { url: string; want?: { endpoints: string[]; prefix: string } }[] = [
    { url: 'etcd://127.0.0.1:2379', want: { endpoints: ['127.0.0.1:2379'], prefix: '/berth/' } },
    { url: 'etcd://a:1,b.example:2,[::1]:3', want: { endpoints: ['a:1', 'b.example:2', '[::1]:3'], prefix: '/berth/' } },
    { url: 'etcd://h:2379/site-a', want: { endpoints: ['h:2379'], prefix: '/site-a/' } },
    { url: 'etcd://h:2379/site-a/', want: { endpoints: ['h:2379'], prefix: '/site-a/' } },
    { url: 'http://h:2379' },
    { url: 'etcd://' },
    { url: 'etcd://h' },
    { url: 'etcd://h:0' },
    { url: 'etcd://h:70000' },
    { url: 'etcd://h:1,,h:2' },
  ];
  for (const { url, want } of cases) {
    if (want) assert.deepEqual(parseEtcdUrl(url), want, url);
    else assert.throws(() => parseEtcdUrl(url), (err) => err instanceof BerthError && err.kind === 'InvalidArgument', url);
  }
});

test('key layout: segments are encoded, record keys parse back, prefix ranges end right', () => {
  const keys = new EtcdKeys('/berth/');
  assert.equal(keys.record('container', 'acme', 'abc'), '/berth/r/container/acme/abc');
  assert.equal(keys.name('container', 'a/b', 'n m'), '/berth/n/container/a%2Fb/n%20m');
  assert.deepEqual(keys.parseRecord(keys.record('k/1', 't/2', 'i/3')), { kind: 'k/1', tenant: 't/2', id: 'i/3' });
  assert.equal(keys.parseRecord(keys.name('k', 't', 'n')), undefined);
  assert.equal(keys.parseRecord('/other/r/k/t/i'), undefined);
  assert.deepEqual(prefixEnd(Buffer.from('ab')), Buffer.from('ac'));
  assert.deepEqual(prefixEnd(Buffer.from([0x61, 0xff])), Buffer.from([0x62]));
  assert.deepEqual(prefixEnd(Buffer.from([0xff, 0xff])), Buffer.from([0]));
});
