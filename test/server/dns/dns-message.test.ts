import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildResponse, parseQuestion, reverseNameToIp, TYPE_A, TYPE_PTR } from '../../../src/server/dns/dns-message.js';
import { parseUpstream } from '../../../src/server/dns/embedded-dns.js';

function query(name: string, type: number): Buffer {
  const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, type, 0, 1])]);
}

test('parseQuestion reads the question; responses carry it and the answers', () => {
  const q = parseQuestion(query('web.example', TYPE_A))!;
  assert.equal(q.name, 'web.example');
  assert.equal(q.type, TYPE_A);
  const reply = buildResponse(query('web.example', TYPE_A), q, 0, [{ type: TYPE_A, ip: '10.0.0.7' }]);
  assert.equal(reply.readUInt16BE(0), 0x1234);
  assert.equal(reply.readUInt16BE(2) & 0x8000, 0x8000, 'QR set');
  assert.equal(reply.readUInt16BE(2) & 0x000f, 0, 'NOERROR');
  assert.equal(reply.readUInt16BE(6), 1, 'one answer');
  assert.deepEqual([...reply.subarray(reply.length - 4)], [10, 0, 0, 7]);
  const ptr = buildResponse(query('7.0.0.10.in-addr.arpa', TYPE_PTR), parseQuestion(query('7.0.0.10.in-addr.arpa', TYPE_PTR))!, 0, [{ type: TYPE_PTR, name: 'web.net' }]);
  assert.ok(ptr.includes(Buffer.from([3, 0x77, 0x65, 0x62, 3, 0x6e, 0x65, 0x74, 0])));
});

test('malformed and non-query messages are ignored', () => {
  assert.equal(parseQuestion(Buffer.from([1, 2, 3])), undefined);
  const response = query('a.b', TYPE_A);
  response[2] = 0x81;
  assert.equal(parseQuestion(response), undefined);
  assert.equal(parseQuestion(query('a.b', TYPE_A).subarray(0, 15)), undefined);
});

test('reverse names and upstream addresses', () => {
  assert.equal(reverseNameToIp('4.3.2.1.in-addr.arpa'), '1.2.3.4');
  assert.equal(reverseNameToIp('example.com'), undefined);
  assert.deepEqual(parseUpstream('127.0.0.5:5353'), { host: '127.0.0.5', port: 5353 });
  assert.deepEqual(parseUpstream('10.0.0.53'), { host: '10.0.0.53', port: 53 });
  assert.deepEqual(parseUpstream('[::1]:53'), { host: '::1', port: 53 });
});
