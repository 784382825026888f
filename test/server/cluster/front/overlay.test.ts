/**
 * Logic of networks across hosts that needs no kernel: the per-host address slices the control
 * plane hands out, and the agent route's validation of the state it is pushed (its values end
 * up on `ip` and `bridge` command lines). The proof of the feature is
 * test/integration/cluster/overlay.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sliceOf } from '../../../../src/server/cluster/front/overlay.js';
import { parseOverlayState } from '../../../../src/server/docker-api/overlay-routes.js';
import type { ClusterNetworkValue } from '../../../../src/server/cluster/front/networks.js';

const network = (config: Record<string, string>): ClusterNetworkValue => ({ name: 'n', body: { IPAM: { Config: [config] } }, created: '', labels: {} });

describe('overlay address slices', () => {
  test('a /16 is cut in 16 disjoint /20s, one per host slot', () => {
    const value = network({ Subnet: '172.20.0.0/16', Gateway: '172.20.0.1' });
    assert.equal(sliceOf(value, 0), '172.20.0.0/20');
    assert.equal(sliceOf(value, 1), '172.20.16.0/20');
    assert.equal(sliceOf(value, 15), '172.20.240.0/20');
  });
  test('a tenant IPRange is what gets cut; a /24 gives /28s; too small a pool is not cut', () => {
    assert.equal(sliceOf(network({ Subnet: '10.9.0.0/16', IPRange: '10.9.8.0/24' }), 2), '10.9.8.32/28');
    assert.equal(sliceOf(network({ Subnet: '10.1.2.0/24' }), 3), '10.1.2.48/28');
    assert.equal(sliceOf(network({ Subnet: '10.1.2.0/28' }), 1), '10.1.2.4/30');
    assert.equal(sliceOf(network({ Subnet: '10.1.2.0/30' }), 0), undefined);
  });
});

describe('overlay state validation', () => {
  const id = 'a'.repeat(64);
  const good = { local: '100.64.1.2', networks: [{ id, vni: 4096, ipRange: '172.20.0.0/20', remotes: [{ ip: '172.20.16.2', mac: '02:42:ac:14:10:02', host: '100.64.1.3', containerName: 'web', names: ['web', 'abc'] }] }] };
  test('a well-formed state passes unchanged', () => {
    assert.deepEqual(parseOverlayState(good), good);
  });
  test('anything that could reach a command line badly is refused', () => {
    const bad: unknown[] = [
      null,
      { ...good, local: '100.64.1.2; rm -rf /' },
      { ...good, networks: [{ ...good.networks[0], id: 'x' }] },
      { ...good, networks: [{ ...good.networks[0], vni: 0 }] },
      { ...good, networks: [{ ...good.networks[0], vni: 1 << 24 }] },
      { ...good, networks: [{ ...good.networks[0], ipRange: 'a b' }] },
      { ...good, networks: [{ ...good.networks[0], remotes: [{ ...good.networks[0]!.remotes[0], mac: 'zz' }] }] },
      { ...good, networks: [{ ...good.networks[0], remotes: [{ ...good.networks[0]!.remotes[0], host: 'evil host' }] }] },
      { ...good, networks: [{ ...good.networks[0], remotes: [{ ...good.networks[0]!.remotes[0], names: [1] }] }] },
    ];
    for (const body of bad) assert.throws(() => parseOverlayState(body), /overlay|bad|VNI|id/, JSON.stringify(body));
  });
});
