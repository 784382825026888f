import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { renderRuleset } from '../../../src/agent/network/firewall.js';

const run = promisify(execFile);

const model = {
  networks: [
    { bridge: 'br-aaaaaa111111', subnet: '10.1.0.0/24', gateway: '10.1.0.1', internal: false },
    { bridge: 'br-aaaaaa222222', subnet: '10.2.0.0/24', gateway: '10.2.0.1', internal: true },
  ],
  ports: [
    { proto: 'tcp' as const, hostIp: '0.0.0.0', hostPort: 8080, containerIp: '10.1.0.2', containerPort: 80 },
    { proto: 'udp' as const, hostIp: '127.0.0.1', hostPort: 5353, containerIp: '10.1.0.2', containerPort: 53 },
  ],
};

test('the ruleset replaces only its own table, in one transaction', () => {
  const text = renderRuleset('berth_abcdef', model);
  const lines = text.split('\n');
  assert.deepEqual(lines.slice(0, 3), ['table ip berth_abcdef {}', 'delete table ip berth_abcdef', 'table ip berth_abcdef {']);
  assert.equal(text.match(/^table /gm)?.length, 2, 'no other table is named');
});

test('rules: DNAT per port, masquerade only for networks with a way out, isolation and internal drops', () => {
  const text = renderRuleset('berth_abcdef', model);
  assert.match(text, /^ {4}tcp dport 8080 dnat to 10\.1\.0\.2:80$/m);
  assert.match(text, /^ {4}ip daddr 127\.0\.0\.1 udp dport 5353 dnat to 10\.1\.0\.2:53$/m);
  assert.match(text, /ip saddr 10\.1\.0\.0\/24 oifname != "br-aaaaaa111111" masquerade/);
  assert.doesNotMatch(text, /ip saddr 10\.2\.0\.0\/24 oifname != "br-aaaaaa222222" masquerade/);
  assert.match(text, /iifname "br-aaaaaa222222" oifname != "br-aaaaaa222222" drop/);
  assert.match(text, /oifname "br-aaaaaa222222" iifname != "br-aaaaaa222222" drop/);
  assert.match(text, /iifname "br-aaaaaa111111" oifname \{ "br-aaaaaa222222" \} drop/);
});

test('rules: containers reach only the embedded DNS and ping on the host itself', () => {
  const text = renderRuleset('berth_abcdef', model);
  const input = text.slice(text.indexOf('chain input'));
  assert.match(input, /iifname "br-aaaaaa111111" ip daddr 10\.1\.0\.1 udp dport 53 accept/);
  assert.match(input, /iifname "br-aaaaaa111111" ip daddr 10\.1\.0\.1 tcp dport 53 accept/);
  assert.match(input, /iifname \{ "br-aaaaaa111111", "br-aaaaaa222222" \} drop\n {2}\}/);
});

test('nft accepts the ruleset (check mode, nothing applied)', { skip: process.getuid?.() !== 0 ? 'needs root for nft -c' : false }, async () => {
  const child = run('nft', ['-c', '-f', '-']);
  child.child.stdin!.end(renderRuleset('berth_abcdef', model));
  await child;
});
