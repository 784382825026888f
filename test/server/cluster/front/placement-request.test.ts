import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { namedVolumesOf, parseSize, placementRequestOf, requestedResources, survivesHostLoss } from '../../../../src/server/cluster/front/placement-request.js';
import { inspectOnHost, mergeSummaries, summaryOnHost } from '../../../../src/server/cluster/front/container-views.js';
import type { ClusterHost } from '../../../../src/server/cluster/agent-hub.js';

describe('placement requests from create bodies', () => {
  const cases = [
    { name: 'no limits ask for nothing', hostConfig: {}, want: { milliCpus: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 } },
    { name: '--cpus 1.5 -m 256m', hostConfig: { NanoCpus: 1_500_000_000, Memory: 268435456 }, want: { milliCpus: 1500, memoryBytes: 268435456, diskBytes: 0, gpus: 0 } },
    { name: '--cpu-quota/--cpu-period', hostConfig: { CpuQuota: 50_000, CpuPeriod: 100_000 }, want: { milliCpus: 500, memoryBytes: 0, diskBytes: 0, gpus: 0 } },
    { name: '--storage-opt size=2G', hostConfig: { StorageOpt: { size: '2G' } }, want: { milliCpus: 0, memoryBytes: 0, diskBytes: 2 * 1024 ** 3, gpus: 0 } },
    { name: '--gpus 2 and --gpus all', hostConfig: { DeviceRequests: [{ Count: 2 }, { Count: -1 }] }, want: { milliCpus: 0, memoryBytes: 0, diskBytes: 0, gpus: 3 } },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(requestedResources({ HostConfig: c.hostConfig }), c.want));
  }

  it('refuses a size it cannot read', () => assert.throws(() => parseSize('2 parsecs'), /invalid size/));

  it('pins to the volumes\' host with a rule only the scheduler sees', () => {
    const body = { Image: 'busybox', Env: ['A=1', 'constraint:region==eu'], Labels: { role: 'db' } };
    const request = placementRequestOf('acme', 'f'.repeat(64), 'db-1', body, ['host-9']);
    assert.deepEqual(request.env, ['A=1', 'constraint:region==eu', 'constraint:node==host-9']);
    assert.deepEqual(body.Env, ['A=1', 'constraint:region==eu'], 'the container\'s env is untouched');
    assert.deepEqual(request.labels, { role: 'db' });
  });

  it('needs an image', () => assert.throws(() => placementRequestOf('acme', 'x', 'y', {}), /Config.Image must be specified/));

  it('finds named volumes in -v and --mount, not bind mounts', () => {
    assert.deepEqual(
      namedVolumesOf({ HostConfig: { Binds: ['data:/data', '/srv:/srv:ro'], Mounts: [{ Type: 'volume', Source: 'logs' }, { Type: 'bind', Source: '/x' }, { Type: 'volume' }] } }).sort(),
      ['data', 'logs'],
    );
  });

  it('moves containers with a restart policy only', () => {
    assert.deepEqual(['always', 'unless-stopped', 'on-failure', 'no', ''].map(survivesHostLoss), [true, true, true, false, false]);
  });
});

describe('container views at the host that runs them', () => {
  const host: ClusterHost = {
    id: 'h1', name: 'node-1', address: '100.64.0.2', labels: { region: 'eu' },
    capacity: { cpus: 4, memoryBytes: 8, diskBytes: 1, devices: [] },
    state: 'up', cordoned: false, lastSeen: 0, imageIds: [], engineVersion: 'v',
  };

  it('inspect: Node as Swarm showed it, ports bound to every address shown at the host\'s', () => {
    const view = inspectOnHost({ Id: 'c', NetworkSettings: { Ports: { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }, { HostIp: '::', HostPort: '8080' }], '53/udp': null, '9/tcp': [{ HostIp: '127.0.0.1', HostPort: '9' }] } } }, host);
    assert.deepEqual(view.Node, { ID: 'h1', IP: '100.64.0.2', Addr: '100.64.0.2:2376', Name: 'node-1', Cpus: 4, Memory: 8, Labels: { region: 'eu' } });
    assert.deepEqual((view.NetworkSettings as { Ports: unknown }).Ports, {
      '80/tcp': [{ HostIp: '100.64.0.2', HostPort: '8080' }],
      '53/udp': null,
      '9/tcp': [{ HostIp: '127.0.0.1', HostPort: '9' }],
    });
  });

  it('ps: published ports at the host\'s address, unpublished ones untouched', () => {
    const summary = summaryOnHost({ Ports: [{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }, { IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }, { PrivatePort: 443, Type: 'tcp' }] }, host);
    assert.deepEqual(summary.Ports, [{ IP: '100.64.0.2', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }, { PrivatePort: 443, Type: 'tcp' }]);
  });

  it('ps of several hosts: newest first, then the limit', () => {
    const merged = mergeSummaries([[{ Id: 'a', Created: 1 }, { Id: 'c', Created: 3 }], [{ Id: 'b', Created: 2 }]], 2);
    assert.deepEqual(merged.map((s) => s.Id), ['c', 'b']);
  });
});
