import type { BuildInfo, HostFacts, SystemSources } from '../../../src/server/system/types.js';

/** Host facts of an imaginary machine, so expectations do not depend on the test host. */
export function fakeHost(over: Partial<HostFacts> = {}): () => Promise<HostFacts> {
  const facts: HostFacts = {
    hostname: 'node-1',
    kernelVersion: '6.1.0-test',
    operatingSystem: 'Debian GNU/Linux 12 (bookworm)',
    osVersion: '12',
    machine: 'x86_64',
    goArch: 'amd64',
    ncpu: 2,
    memTotal: 24 * 1024 ** 3,
    cgroupVersion: '1',
    swapLimit: true,
    ipv4Forwarding: true,
    runc: { version: '1.1.5+ds1', commit: '1.1.5+ds1-1+deb12u1' },
    init: { binary: 'tini', version: '0.19.0' },
    ...over,
  };
  return async () => facts;
}

export const fakeBuild: BuildInfo = {
  version: '0.1.0',
  gitCommit: 'abc1234',
  buildTime: '2026-01-02T03:04:05.000Z',
  runtimeVersion: 'node v20.20.2',
};

/** Sources answering per tenant, with a record of which df parts were asked for. */
export function fakeSources(): SystemSources & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async containerCounts(ctx) {
      return ctx.tenant === 'default' ? { total: 3, running: 1, paused: 1, stopped: 1 } : { total: 0, running: 0, paused: 0, stopped: 0 };
    },
    async imageCount(ctx) {
      return ctx.tenant === 'default' ? 2 : 0;
    },
    async dfImages() {
      asked.push('image');
      return {
        layersSize: 4_000_000,
        images: [
          { Id: `sha256:${'1'.repeat(64)}`, ParentId: '', RepoTags: ['busybox:latest'], RepoDigests: [], Created: 1_700_000_000, Size: 2_000_000, SharedSize: 0, Labels: {}, Containers: 2 },
        ],
      };
    },
    async dfContainers() {
      asked.push('container');
      return [
        { Id: 'c'.repeat(64), Names: ['/web'], Image: 'busybox', ImageID: `sha256:${'1'.repeat(64)}`, Command: 'sh', Created: 1_700_000_000, State: 'running', Status: 'Up 1 minute', SizeRw: 12, SizeRootFs: 2_000_012, Labels: {}, Mounts: [] },
      ];
    },
    async dfVolumes() {
      asked.push('volume');
      return [{ Name: 'data', Driver: 'local', Mountpoint: '/var/lib/berth/volumes/data/_data', Labels: null, Scope: 'local', Options: null, UsageData: { Size: 100, RefCount: 1 } }];
    },
  };
}
