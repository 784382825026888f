/**
 * The same Dockerfiles built by Berth and by a real dockerd (Debian's 20.10, classic builder),
 * driven by the same docker CLI: the images must run the same and carry the same config.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { startDockerd, type DockerdInstance } from '../support/dockerd-harness.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { busyboxImageTar } from '../support/test-images.js';

let berth: BerthInstance;
let dockerd: DockerdInstance;
let work: string;

before(async () => {
  [berth, dockerd] = await Promise.all([startBerth(), startDockerd()]);
  const tar = await busyboxImageTar();
  await Promise.all([dockerOk(berth.env, ['load', '-i', tar]), dockerOk(dockerd.env, ['load', '-i', tar])]);
  work = await mkdtemp(join(tmpdir(), 'berth-build-diff-'));
});

after(async () => {
  await Promise.all([berth?.stop(), dockerd?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

async function context(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(work, name);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

const CONFIG_FIELDS = ['Cmd', 'Entrypoint', 'Env', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'Healthcheck', 'StopSignal', 'OnBuild'];

async function configOf(env: NodeJS.ProcessEnv, ref: string): Promise<Record<string, unknown>> {
  const config = JSON.parse(await dockerOk(env, ['image', 'inspect', ref, '--format', '{{json .Config}}'])) as Record<string, unknown>;
  // Empty and absent mean the same to every client; compare them as absent.
  const picked: Record<string, unknown> = {};
  for (const field of CONFIG_FIELDS) {
    const value = config[field];
    const empty = value === null || value === undefined || value === '' || (typeof value === 'object' && Object.keys(value).length === 0);
    if (!empty) picked[field] = value;
  }
  return picked;
}

const BOTH = (): { name: string; env: NodeJS.ProcessEnv }[] => [
  { name: 'berth', env: berth.env },
  { name: 'dockerd', env: dockerd.env },
];

test('a multi-stage Dockerfile with every config instruction builds the same image config and runs the same', async () => {
  const dir = await context('all', {
    Dockerfile: [
      'ARG BASE=berth-test/busybox',
      'FROM $BASE AS build',
      'ARG WHO=nobody',
      'ENV STAGE=build',
      'RUN mkdir -p /out && echo "built by $WHO in $STAGE" > /out/msg && ln -s msg /out/link',
      'COPY files/ /in/',
      'RUN cat /in/a.txt /in/sub/b.txt >> /out/msg',
      'FROM berth-test/busybox',
      'COPY --from=build /out /out',
      'ENV A=1 B="two words"',
      'WORKDIR /srv',
      'WORKDIR app',
      'USER nobody',
      'EXPOSE 8080 9000-9001/udp',
      'VOLUME ["/data", "/cache"]',
      'LABEL one=1 "two"="2 2"',
      'HEALTHCHECK --interval=30s --timeout=3s --retries=4 CMD wget -q -O- localhost || exit 1',
      'STOPSIGNAL SIGINT',
      'SHELL ["/bin/sh", "-e", "-c"]',
      'ONBUILD RUN echo child',
      'ENTRYPOINT ["/bin/sh", "-c"]',
      'CMD ["cat /out/msg /out/link; pwd; id -u; echo $A $B"]',
      '',
    ].join('\n'),
    'files/a.txt': 'from a\n',
    'files/sub/b.txt': 'from b\n',
  });
  const results = await Promise.all(
    BOTH().map(async ({ name, env }) => {
      await dockerOk(env, ['build', '--build-arg', 'WHO=tester', '-t', 'diff-all', dir], { timeoutMs: 120_000 });
      return { name, config: await configOf(env, 'diff-all'), run: await dockerOk(env, ['run', '--rm', 'diff-all']) };
    }),
  );
  const [ours, theirs] = results;
  assert.deepEqual(ours!.config, theirs!.config);
  assert.equal(ours!.run, theirs!.run);
  assert.equal(ours!.run, 'built by tester in build\nfrom a\nfrom b\nbuilt by tester in build\nfrom a\nfrom b\n/srv/app\n65534\n1 two words\n');
});

test('a failing RUN fails the same way: exit code and message', async () => {
  const dir = await context('fail', { Dockerfile: 'FROM berth-test/busybox\nRUN echo partial output; exit 7\n' });
  const results = await Promise.all(BOTH().map(({ env }) => docker(env, ['build', dir], { timeoutMs: 120_000 })));
  const [ours, theirs] = results;
  assert.equal(ours!.code, theirs!.code);
  assert.equal(ours!.code, 7);
  const message = (stderr: string): string => stderr.split('\n').filter((l) => l.startsWith('The command')).join('\n');
  assert.equal(message(ours!.stderr), message(theirs!.stderr));
  assert.match(ours!.stdout, /partial output/);
  assert.match(theirs!.stdout, /partial output/);
});

test('the step stream has the same shape for RUN steps, cache hits and the final lines', async () => {
  const dir = await context('stream', { Dockerfile: 'FROM berth-test/busybox\nRUN echo hello\nCOPY f /f\nENV X=1\nWORKDIR /w\n', f: 'x\n' });
  const normalise = (out: string): string =>
    out
      .replace(/Sending build context to Docker daemon\s+\S+/g, 'Sending build context')
      .replace(/[0-9a-f]{12}/g, '<id>')
      .replace(/\r/g, '')
      // Divergence (docs/divergences.md): steps that only change the config, and WORKDIR, run
      // no container on Berth, so they print no "Running in"/"Removing intermediate" pair;
      // dockerd prints one around no output. Pairs with nothing between are dropped on both.
      .replace(/ ---> Running in <id>\nRemoving intermediate container <id>\n/g, '');
  const first = await Promise.all(BOTH().map(({ env }) => dockerOk(env, ['build', '-t', 'diff-stream', dir], { timeoutMs: 120_000 })));
  assert.equal(normalise(first[0]!), normalise(first[1]!));
  const second = await Promise.all(BOTH().map(({ env }) => dockerOk(env, ['build', '-t', 'diff-stream', dir], { timeoutMs: 120_000 })));
  assert.equal(normalise(second[0]!), normalise(second[1]!));
  assert.match(second[0]!, / ---> Using cache/);
});
