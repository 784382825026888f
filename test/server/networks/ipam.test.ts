import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCidr, parseCidr } from '../../../src/common/ipv4.js';
import { allocateAddress, chooseSubnet, macFor, parseAddressPool, userPool } from '../../../src/server/networks/ipam.js';
import { BerthError } from '../../../src/common/errors.js';

test('chooseSubnet never overlaps host routes, resolvers or taken subnets', () => {
  const pools = [{ base: '172.17.0.0/16', size: 16 }, { base: '172.18.0.0/15', size: 16 }, { base: '172.20.0.0/14', size: 16 }];
  const taken = [parseCidr('172.17.0.0/16')!];
  for (let i = 0; i < 50; i++) {
    const chosen = formatCidr(chooseSubnet(pools, taken, ['172.18.5.0/24', '172.19.0.53/32'])!);
    assert.match(chosen, /^172\.(20|21|22|23)\.0\.0\/16$/);
  }
  assert.equal(chooseSubnet(pools, taken, ['172.16.0.0/12']), undefined);
});

test('chooseSubnet picks among free candidates at random', () => {
  const pools = [{ base: '10.10.0.0/16', size: 24 }];
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) seen.add(formatCidr(chooseSubnet(pools, [], [])!));
  assert.ok(seen.size > 1);
  for (const s of seen) assert.match(s, /^10\.10\.\d+\.0\/24$/);
});

test('userPool validates --subnet, --gateway and --ip-range with dockerd-like messages', () => {
  const cases: { name: string; raw: Record<string, string>; error?: RegExp }[] = [
    { name: 'plain', raw: { Subnet: '10.1.0.0/16' } },
    { name: 'gateway and range', raw: { Subnet: '10.1.0.0/16', Gateway: '10.1.255.254', IPRange: '10.1.128.0/17' } },
    { name: 'host bits', raw: { Subnet: '10.1.0.5/16' }, error: /invalid subnet/ },
    { name: 'not cidr', raw: { Subnet: 'nope' }, error: /invalid subnet/ },
    { name: 'gateway outside', raw: { Subnet: '10.1.0.0/16', Gateway: '10.2.0.1' }, error: /no matching subnet for gateway/ },
    { name: 'range outside', raw: { Subnet: '10.1.0.0/16', IPRange: '10.2.0.0/24' }, error: /no matching subnet for range/ },
    { name: 'too small', raw: { Subnet: '10.1.0.0/31' }, error: /too small/ },
  ];
  for (const c of cases) {
    if (!c.error) assert.doesNotThrow(() => userPool(c.raw), c.name);
    else assert.throws(() => userPool(c.raw), (err) => err instanceof BerthError && c.error!.test(err.message), c.name);
  }
});

test('allocateAddress hands out the lowest free address of the range, never network, gateway or broadcast', () => {
  const pool = { Subnet: '10.5.0.0/29', Gateway: '10.5.0.1' };
  const used = new Set<string>();
  const got: string[] = [];
  for (let i = 0; i < 5; i++) {
    const ip = allocateAddress(pool, used);
    used.add(ip);
    got.push(ip);
  }
  assert.deepEqual(got, ['10.5.0.2', '10.5.0.3', '10.5.0.4', '10.5.0.5', '10.5.0.6']);
  assert.throws(() => allocateAddress(pool, used), /no available addresses/);
  assert.equal(allocateAddress({ Subnet: '10.6.0.0/24', Gateway: '10.6.0.1', IPRange: '10.6.0.128/25' }, new Set()), '10.6.0.128');
  assert.equal(allocateAddress(pool, new Set(), '10.5.0.6'), '10.5.0.6');
  assert.throws(() => allocateAddress(pool, new Set(['10.5.0.6']), '10.5.0.6'), /Address already in use/);
  assert.throws(() => allocateAddress(pool, new Set(), '10.5.0.1'), /Address already in use/);
  assert.throws(() => allocateAddress(pool, new Set(), '10.9.0.2'), /does not belong/);
});

test('macFor and parseAddressPool', () => {
  assert.equal(macFor('172.17.0.2'), '02:42:ac:11:00:02');
  assert.deepEqual(parseAddressPool('base=10.10.0.0/16,size=24'), { base: '10.10.0.0/16', size: 24 });
  assert.throws(() => parseAddressPool('base=10.10.0.0/16,size=8'), /invalid default address pool/);
});
