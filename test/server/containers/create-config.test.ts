import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BerthError } from '../../../src/common/errors.js';
import { mergeContainerConfig, mergeEnv, normaliseHostConfig, processEnv } from '../../../src/server/containers/create-config.js';

const ID = 'a'.repeat(64);
const image = { Cmd: ['sh'], Entrypoint: ['/init'], Env: ['PATH=/bin', 'A=1'], WorkingDir: '/app', User: 'daemon', Labels: { from: 'image' } };

test('mergeContainerConfig applies Docker merge rules', () => {
  const cases: { name: string; body: Record<string, unknown>; want: { Entrypoint: string[] | null; Cmd: string[] | null } }[] = [
    { name: 'image defaults', body: { Image: 'x' }, want: { Entrypoint: ['/init'], Cmd: ['sh'] } },
    { name: 'user cmd keeps image entrypoint', body: { Image: 'x', Cmd: ['ls'] }, want: { Entrypoint: ['/init'], Cmd: ['ls'] } },
    { name: 'user entrypoint drops image cmd', body: { Image: 'x', Entrypoint: ['/bin/echo'] }, want: { Entrypoint: ['/bin/echo'], Cmd: null } },
    { name: 'empty entrypoint clears it', body: { Image: 'x', Entrypoint: [''], Cmd: ['ls'] }, want: { Entrypoint: null, Cmd: ['ls'] } },
    { name: 'string cmd is a one-element list', body: { Image: 'x', Cmd: 'ls' }, want: { Entrypoint: ['/init'], Cmd: ['ls'] } },
  ];
  for (const c of cases) {
    const config = mergeContainerConfig(c.body, image, ID);
    assert.deepEqual({ Entrypoint: config.Entrypoint, Cmd: config.Cmd }, c.want, c.name);
  }
  const config = mergeContainerConfig({ Image: 'x', Env: ['A=2', 'B=3'], Labels: { mine: 'yes' } }, image, ID);
  assert.deepEqual(config.Env, ['A=2', 'B=3', 'PATH=/bin']);
  assert.deepEqual(config.Labels, { from: 'image', mine: 'yes' });
  assert.equal(config.Hostname, ID.slice(0, 12));
  assert.equal(config.WorkingDir, '/app');
  assert.equal(config.User, 'daemon');
});

test('mergeContainerConfig refuses what dockerd refuses', () => {
  const refuses = (body: Record<string, unknown>, message: RegExp, img = image): void => {
    assert.throws(() => mergeContainerConfig(body, img, ID), (err) => err instanceof BerthError && err.kind === 'InvalidArgument' && message.test(err.message));
  };
  refuses({ Image: 'x' }, /No command specified/, {} as typeof image);
  refuses({ Image: 'x', WorkingDir: 'rel' }, /needs to be an absolute path/);
  refuses({ Image: 'x', Env: 5 }, /invalid Env/);
});

test('mergeEnv puts the user first and keeps image entries the user did not set', () => {
  assert.deepEqual(mergeEnv(['A=1', 'B=2'], ['B=3', 'C']), ['B=3', 'C', 'A=1']);
  assert.deepEqual(mergeEnv(['A=1'], []), ['A=1']);
});

test('processEnv drops names without a value', () => {
  assert.deepEqual(processEnv(['A=1', 'B', 'C=x=y', 'D=']), ['A=1', 'C=x=y', 'D=']);
});

test('normaliseHostConfig validates resources and refuses unsupported options', () => {
  const cases: { name: string; hc: Record<string, unknown>; error?: RegExp; kind?: string }[] = [
    { name: 'empty is fine', hc: {} },
    { name: 'tiny memory', hc: { Memory: 1024 }, error: /Minimum memory limit allowed is 6MB/, kind: 'InvalidArgument' },
    { name: 'swap below memory', hc: { Memory: 64 << 20, MemorySwap: 32 << 20 }, error: /memoryswap limit should be larger/, kind: 'InvalidArgument' },
    { name: 'nano cpus and quota', hc: { NanoCpus: 1e9, CpuQuota: 50000 }, error: /Nano CPUs and CPU Period/, kind: 'InvalidArgument' },
    { name: 'too many cpus', hc: { NanoCpus: 1e12 }, error: /Range of CPUs/, kind: 'InvalidArgument' },
    { name: 'restart with rm', hc: { AutoRemove: true, RestartPolicy: { Name: 'always' } }, error: /AutoRemove/, kind: 'InvalidArgument' },
    { name: 'binds are accepted (planned by server/mounts)', hc: { Binds: ['/etc:/host'], VolumesFrom: ['other:ro'] } },
    { name: 'Mounts must be a list', hc: { Mounts: { Type: 'bind' } }, error: /HostConfig.Mounts of type/, kind: 'InvalidArgument' },
    { name: 'published ports', hc: { PortBindings: { '80/tcp': [{ HostPort: '8080' }] } } },
    { name: 'bad port key', hc: { PortBindings: { '80/xyz': [{ HostPort: '8080' }] } }, error: /invalid port specification/, kind: 'InvalidArgument' },
    { name: 'bad host port', hc: { PortBindings: { '80/tcp': [{ HostPort: '70000' }] } }, error: /invalid host port/, kind: 'InvalidArgument' },
    { name: 'sctp', hc: { PortBindings: { '80/sctp': [{ HostPort: '8080' }] } }, error: /sctp/, kind: 'InvalidArgument' },
    { name: 'ports with container network', hc: { NetworkMode: 'container:x', PortBindings: { '80/tcp': [{ HostPort: '8080' }] } }, error: /conflicting options/, kind: 'InvalidArgument' },
    { name: 'privileged', hc: { Privileged: true }, error: /--privileged/, kind: 'NotImplemented' },
    { name: 'host pid', hc: { PidMode: 'host' }, error: /PidMode/, kind: 'NotImplemented' },
    { name: 'host network', hc: { NetworkMode: 'host' } },
    { name: 'relative tmpfs', hc: { Tmpfs: { tmp: '' } }, error: /mount path must be absolute/, kind: 'InvalidArgument' },
  ];
  for (const c of cases) {
    if (!c.error) {
      assert.doesNotThrow(() => normaliseHostConfig(c.hc), c.name);
      continue;
    }
    assert.throws(() => normaliseHostConfig(c.hc), (err) => err instanceof BerthError && err.kind === c.kind && c.error!.test(err.message), c.name);
  }
});
