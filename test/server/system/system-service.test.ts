import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SystemService } from '../../../src/server/system/system-service.js';
import { parseRuncVersion, parseTiniVersion, hostFactsProbe } from '../../../src/server/system/host-facts.js';
import { readBuildInfo, readGitCommit } from '../../../src/server/system/build-info.js';
import { operatorContext } from '../../../src/common/context.js';
import { isKind } from '../../../src/common/errors.js';
import { fakeBuild, fakeHost, fakeSources } from './fakes.js';

const roots: string[] = [];
function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-system-'));
  roots.push(dir);
  return dir;
}
after(() => {
  for (const dir of roots) rmSync(dir, { recursive: true, force: true });
});

const ctx = operatorContext('test');

describe('SystemService.info', () => {
  it('reports counts, host facts and Berth choices as docker info reads them', async () => {
    const dataRoot = tmp();
    const svc = new SystemService({ dataRoot, sources: fakeSources(), host: fakeHost(), build: fakeBuild, events: { listenerCount: () => 4 } });
    const info = await svc.info(ctx);
    assert.deepEqual(
      [info.Containers, info.ContainersRunning, info.ContainersPaused, info.ContainersStopped, info.Images],
      [3, 1, 1, 1, 2],
    );
    assert.equal(info.ServerVersion, '0.1.0');
    assert.equal(info.Name, 'node-1');
    assert.equal(info.OSType, 'linux');
    assert.equal(info.Architecture, 'x86_64');
    assert.equal(info.CgroupVersion, '1');
    assert.equal(info.CgroupDriver, 'cgroupfs');
    assert.equal(info.Driver, 'overlayfs');
    assert.equal(info.LoggingDriver, 'k8s-file');
    assert.equal(info.DockerRootDir, dataRoot);
    assert.equal(info.DefaultRuntime, 'runc');
    assert.deepEqual(Object.keys(info.Runtimes), ['runc']);
    assert.equal(info.RuncCommit.ID, '1.1.5+ds1-1+deb12u1');
    assert.equal(info.Swarm.LocalNodeState, 'inactive');
    assert.deepEqual(info.SecurityOptions, ['name=seccomp,profile=builtin', 'name=no-new-privileges']);
    assert.equal(info.NEventsListener, 4);
    assert.deepEqual(info.Warnings, []);
    assert.match(info.ID, /^[0-9a-f-]{36}$/);
  });

  it('keeps the ID stable per data root', async () => {
    const dataRoot = tmp();
    const open = () => new SystemService({ dataRoot, sources: fakeSources(), host: fakeHost(), build: fakeBuild });
    const first = (await open().info(ctx)).ID;
    assert.equal((await open().info(ctx)).ID, first);
    assert.equal(readFileSync(join(dataRoot, 'engine-id'), 'utf8').trim(), first);
    assert.notEqual((await new SystemService({ dataRoot: tmp(), sources: fakeSources(), host: fakeHost(), build: fakeBuild }).info(ctx)).ID, first);
  });

  it('scopes counts by tenant', async () => {
    const svc = new SystemService({ dataRoot: tmp(), sources: fakeSources(), host: fakeHost(), build: fakeBuild });
    const info = await svc.info({ tenant: 'other', requestId: 't' });
    assert.deepEqual([info.Containers, info.Images], [0, 0]);
  });

  const warningCases = [
    { name: 'runc missing', over: { runc: undefined }, want: 'WARNING: runc could not be run; containers cannot start' },
    { name: 'no swap limit', over: { swapLimit: false }, want: 'WARNING: No swap limit support' },
    { name: 'no forwarding', over: { ipv4Forwarding: false }, want: 'WARNING: IPv4 forwarding is disabled' },
  ];
  for (const c of warningCases) {
    it(`warns: ${c.name}`, async () => {
      const svc = new SystemService({ dataRoot: tmp(), sources: fakeSources(), host: fakeHost(c.over), build: fakeBuild });
      assert.deepEqual((await svc.info(ctx)).Warnings, [c.want]);
    });
  }
});

describe('SystemService.version', () => {
  it('names the engine, runc and tini with their versions', async () => {
    const svc = new SystemService({ dataRoot: tmp(), sources: fakeSources(), host: fakeHost(), build: fakeBuild });
    const v = await svc.version();
    assert.equal(v.Platform.Name, 'Berth');
    assert.deepEqual([v.Version, v.ApiVersion, v.MinAPIVersion, v.Os, v.Arch], ['0.1.0', '1.47', '1.24', 'linux', 'amd64']);
    assert.deepEqual(v.Components.map((c) => `${c.Name} ${c.Version}`), ['Engine 0.1.0', 'runc 1.1.5+ds1', 'tini 0.19.0']);
    const engine = v.Components[0]!.Details;
    assert.equal(engine.GoVersion, 'node v20.20.2');
    assert.equal(engine.BuildTime, '2026-01-02T03:04:05.000Z');
  });
});

describe('SystemService.diskUsage', () => {
  const cases: { name: string; types: string[] | undefined; asked: string[]; nulls: string[] }[] = [
    { name: 'everything by default', types: undefined, asked: ['image', 'container', 'volume'], nulls: [] },
    { name: 'only containers', types: ['container'], asked: ['container'], nulls: ['Images', 'Volumes', 'BuildCache'] },
    { name: 'only build cache', types: ['build-cache'], asked: [], nulls: ['Images', 'Containers', 'Volumes'] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const sources = fakeSources();
      const svc = new SystemService({ dataRoot: tmp(), sources, host: fakeHost(), build: fakeBuild });
      const df = await svc.diskUsage(ctx, c.types);
      assert.deepEqual(sources.asked.sort(), [...c.asked].sort());
      const nullKeys = Object.entries(df).filter(([, v]) => v === null).map(([k]) => k);
      assert.deepEqual(nullKeys.sort(), [...c.nulls].sort());
      if (df.Images) assert.equal(df.LayersSize, 4_000_000);
    });
  }

  it('rejects an unknown type', async () => {
    const svc = new SystemService({ dataRoot: tmp(), sources: fakeSources(), host: fakeHost(), build: fakeBuild });
    await assert.rejects(svc.diskUsage(ctx, ['widgets']), (err: unknown) => isKind(err, 'InvalidArgument') && err.message === 'unknown object type: widgets');
  });
});

describe('host facts', () => {
  it('parses runc --version', () => {
    const out = 'runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\nlibseccomp: 2.5.4\n';
    assert.deepEqual(parseRuncVersion(out), { version: '1.1.5+ds1', commit: '1.1.5+ds1-1+deb12u1' });
  });
  it('parses tini --version', () => {
    assert.equal(parseTiniVersion('tini version 0.19.0\n'), '0.19.0');
    assert.equal(parseTiniVersion('tini version 0.19.0 - git.de40ad0\n'), '0.19.0 - git.de40ad0');
  });
  it('probes this machine', async () => {
    const facts = await hostFactsProbe({ runc: '/nonexistent/runc' })();
    assert.equal(facts.runc, undefined);
    assert.ok(facts.ncpu >= 1 && facts.memTotal > 0 && facts.kernelVersion !== '');
    assert.ok(facts.cgroupVersion === '1' || facts.cgroupVersion === '2');
  });
});

describe('build info', () => {
  it('reads version, commit and build time from the package around the module', () => {
    const root = tmp();
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'berth', version: '9.8.7' }));
    mkdirSync(join(root, '.git', 'refs', 'heads'), { recursive: true });
    writeFileSync(join(root, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(join(root, '.git', 'refs', 'heads', 'main'), `${'f'.repeat(40)}\n`);
    mkdirSync(join(root, 'dist', 'src'), { recursive: true });
    const mod = join(root, 'dist', 'src', 'x.js');
    writeFileSync(mod, '');
    utimesSync(mod, new Date('2026-02-03T04:05:06Z'), new Date('2026-02-03T04:05:06Z'));
    const info = readBuildInfo(pathToFileURL(mod).href);
    assert.deepEqual(info, { version: '9.8.7', gitCommit: 'fffffff', buildTime: '2026-02-03T04:05:06.000Z', runtimeVersion: `node ${process.version}` });
  });
  it('reads a packed ref', () => {
    const git = join(tmp(), '.git');
    mkdirSync(git);
    writeFileSync(join(git, 'HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(join(git, 'packed-refs'), `# pack-refs\n${'e'.repeat(40)} refs/heads/main\n`);
    assert.equal(readGitCommit(git), 'eeeeeee');
  });
});
