/**
 * `docker build` (classic builder) and `docker commit` against `berth up`, through the real
 * docker CLI 28 (which falls back to the classic builder since no buildx plugin is installed).
 */
import { execFile, spawn } from 'node:child_process';
import { request } from 'node:http';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { DOCKER_CLI, docker, dockerOk } from '../support/docker-cli.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';
import { tarOf } from '../support/tar-files.js';

const run = promisify(execFile);

let berth: BerthInstance;
let work: string;

before(async () => {
  berth = await startBerth();
  await dockerOk(berth.env, ['load', '-i', await busyboxImageTar()]);
  work = await mkdtemp(join(tmpdir(), 'berth-build-'));
});

after(async () => {
  if (process.env.BERTH_BUILD_TEST_LOG) await writeFile(process.env.BERTH_BUILD_TEST_LOG, berth.logs());
  await berth?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Writes a build context directory from a map of relative paths to contents. */
async function context(name: string, files: Record<string, string | Buffer>): Promise<string> {
  const dir = join(work, name);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

async function build(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return docker(berth.env, ['build', ...args], { timeoutMs: 120_000 });
}

async function buildOk(args: string[]): Promise<string> {
  const result = await build(args);
  assert.equal(result.code, 0, `build failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

async function inspectConfig(ref: string): Promise<Record<string, unknown>> {
  return JSON.parse(await dockerOk(berth.env, ['image', 'inspect', ref, '--format', '{{json .Config}}'])) as Record<string, unknown>;
}

/** Mounts and runc containers of this Berth: a failed step must leave none. */
async function leftovers(): Promise<{ mounts: string[]; runc: string[]; containers: string }> {
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(berth.dataRoot));
  const { stdout } = await run('runc', ['--root', join(berth.execRoot, 'runc'), 'list', '-q']).catch(() => ({ stdout: '' }));
  const containers = await dockerOk(berth.env, ['ps', '-aq']);
  return { mounts, runc: stdout.split('\n').filter((l) => l !== ''), containers };
}

test('the CLI uses the classic builder and prints its step stream', async () => {
  const dir = await context('basic', { Dockerfile: `FROM ${BUSYBOX_IMAGE}\nRUN echo built > /hello\nCMD ["cat", "/hello"]\n` });
  const result = await build(['-t', 'build-basic', '-t', 'build-basic:two', dir]);
  assert.equal(result.code, 0, result.stderr);
  // CLI 28 without buildx: the legacy builder, with its deprecation notice.
  assert.match(result.stderr, /legacy builder is deprecated/);
  // The CLI pins the tag (FROM berth-test/busybox:latest) as it rewrites FROM lines for content trust.
  assert.match(result.stdout, /^Step 1\/3 : FROM berth-test\/busybox(:latest)?$/m);
  assert.match(result.stdout, /^Step 2\/3 : RUN echo built > \/hello\n ---> Running in [0-9a-f]{12}\nRemoving intermediate container [0-9a-f]{12}\n ---> [0-9a-f]{12}$/m);
  assert.match(result.stdout, /^Successfully built [0-9a-f]{12}\nSuccessfully tagged build-basic:latest\nSuccessfully tagged build-basic:two$/m);
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-basic:two']), 'built\n');
  // DOCKER_BUILDKIT=0 asks for the classic builder explicitly: the same path, another notice.
  const explicit = await docker({ ...berth.env, DOCKER_BUILDKIT: '0' }, ['build', '-q', dir], { timeoutMs: 120_000 });
  assert.equal(explicit.code, 0, explicit.stderr);
  assert.match(explicit.stderr, /BuildKit is currently disabled/);
  assert.equal((await leftovers()).containers, '');
});

test('multi-stage build: COPY --from, ARG and --build-arg, ADD of a tar, .dockerignore, config instructions', async () => {
  const tgz = await makeTarGz({ 'pkg/one.txt': 'one\n', 'pkg/two.txt': 'two\n' });
  const dir = await context('multistage', {
    Dockerfile: [
      'ARG BASE=berth-test/busybox',
      'FROM ${BASE} AS build',
      'ARG GREETING=hi',
      'RUN mkdir -p /out && echo "$GREETING from ${GREETING:-nobody}" > /out/msg \\',
      '    && echo continued > /out/cont',
      'ADD pkg.tgz /opt/',
      'COPY src/ /src/',
      'COPY --chown=1000:1000 src/*.txt /globbed/',
      'FROM scratch',
      'COPY --from=build /out/ /out/',
      'COPY --from=build /opt /opt',
      'COPY --from=build /src /src',
      'COPY --from=build /globbed /globbed',
      'COPY --from=berth-test/busybox /bin/busybox /bin/busybox',
      'ENV PATH=/bin MODE=prod',
      'WORKDIR /work',
      'USER 1000:1000',
      'EXPOSE 80 53/udp',
      'VOLUME ["/data"]',
      'LABEL org.example.a=b "with space"="x y"',
      'HEALTHCHECK --interval=5s --retries=2 CMD ["busybox", "true"]',
      'STOPSIGNAL SIGQUIT',
      'ENTRYPOINT ["/bin/busybox"]',
      'CMD ["cat", "/out/msg"]',
      '',
    ].join('\n'),
    'pkg.tgz': tgz,
    'src/a.txt': 'a\n',
    'src/b.txt': 'b\n',
    'src/skip.log': 'ignored\n',
    'secret.env': 'TOKEN=x\n',
    '.dockerignore': 'secret.env\n**/*.log\n',
  });
  await buildOk(['--build-arg', 'GREETING=hello', '-t', 'build-multi', dir]);
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-multi']), 'hello from hello\n');
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-multi', 'cat', '/out/cont', '/opt/pkg/one.txt', '/opt/pkg/two.txt']), 'continued\none\ntwo\n');
  const listing = await dockerOk(berth.env, ['run', '--rm', 'build-multi', 'find', '/src', '/globbed', '-type', 'f']);
  assert.deepEqual(listing.trim().split('\n').sort(), ['/globbed/a.txt', '/globbed/b.txt', '/src/a.txt', '/src/b.txt']);
  // COPY --from without --chown gives root the files, as dockerd's classic builder does.
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-multi', 'stat', '-c', '%u:%g', '/globbed/a.txt', '/src/a.txt']), '0:0\n0:0\n');
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-multi', 'pwd']), '/work\n');

  const config = await inspectConfig('build-multi');
  assert.deepEqual(config.Env, ['PATH=/bin', 'MODE=prod']);
  assert.equal(config.User, '1000:1000');
  assert.equal(config.WorkingDir, '/work');
  assert.deepEqual(config.ExposedPorts, { '53/udp': {}, '80/tcp': {} });
  assert.deepEqual(config.Volumes, { '/data': {} });
  assert.deepEqual(config.Labels, { 'org.example.a': 'b', 'with space': 'x y' });
  assert.deepEqual(config.Healthcheck, { Test: ['CMD', 'busybox', 'true'], Interval: 5_000_000_000, Retries: 2 });
  assert.equal(config.StopSignal, 'SIGQUIT');
  assert.deepEqual(config.Entrypoint, ['/bin/busybox']);
  assert.deepEqual(config.Cmd, ['cat', '/out/msg']);

  // --target stops at a named stage.
  await buildOk(['--target', 'build', '-t', 'build-multi-target', dir]);
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-multi-target', 'cat', '/out/msg']), 'hi from hi\n');
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-multi-target', 'stat', '-c', '%u:%g', '/globbed/a.txt', '/src/a.txt']), '1000:1000\n0:0\n');
  const missing = await build(['--target', 'nope', dir]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /failed to reach build target nope in Dockerfile/);
});

test('ADD unpacks local tar archives, plain, gzip, bzip2 and xz; other files are copied as they are', async () => {
  const files: Record<string, string | Buffer> = { 'notes.txt': 'not an archive\n' };
  for (const [name, flag] of [['plain.tar', ''], ['gz.tgz', 'z'], ['bz.tar.bz2', 'j'], ['xz.tar.xz', 'J']] as const) {
    files[name] = await makeArchive(flag, { [`${name.split('.')[0]}/inside.txt`]: `${name}\n` });
  }
  const dir = await context('add', { ...files, Dockerfile: `FROM ${BUSYBOX_IMAGE}\nADD plain.tar gz.tgz bz.tar.bz2 xz.tar.xz notes.txt /add/\n` });
  await buildOk(['-t', 'build-add', dir]);
  const out = await dockerOk(berth.env, ['run', '--rm', 'build-add', 'sh', '-c', 'cat /add/plain/inside.txt /add/gz/inside.txt /add/bz/inside.txt /add/xz/inside.txt /add/notes.txt']);
  assert.equal(out, 'plain.tar\ngz.tgz\nbz.tar.bz2\nxz.tar.xz\nnot an archive\n');
});

test('a rebuild uses the cache and starts no container; --no-cache runs every step again', async () => {
  const dir = await context('cache', {
    Dockerfile: `FROM ${BUSYBOX_IMAGE}\nRUN echo one > /one\nCOPY file.txt /file.txt\nRUN cat /file.txt /one > /both\n`,
    'file.txt': 'v1\n',
  });
  const first = await buildOk(['-t', 'build-cache', dir]);
  assert.equal((first.match(/Running in/g) ?? []).length, 2);
  const firstId = /Successfully built ([0-9a-f]{12})/.exec(first)![1];

  const since = (Date.now() / 1000).toFixed(3);
  const second = await buildOk(['-t', 'build-cache', dir]);
  assert.equal((second.match(/ ---> Using cache/g) ?? []).length, 3);
  assert.doesNotMatch(second, /Running in/);
  assert.equal(/Successfully built ([0-9a-f]{12})/.exec(second)![1], firstId);
  const until = (Date.now() / 1000 + 0.5).toFixed(3);
  const creates = await dockerOk(berth.env, ['events', '--since', since, '--until', until, '--filter', 'type=container', '--filter', 'event=create']);
  assert.equal(creates, '', 'a cached build created containers');

  // A changed file misses the cache from its COPY on.
  await writeFile(join(dir, 'file.txt'), 'v2\n');
  const third = await buildOk(['-t', 'build-cache', dir]);
  assert.equal((third.match(/ ---> Using cache/g) ?? []).length, 1);
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-cache', 'cat', '/both']), 'v2\none\n');

  const noCache = await buildOk(['--no-cache', '-t', 'build-cache', dir]);
  assert.doesNotMatch(noCache, /Using cache/);
  assert.equal((noCache.match(/Running in/g) ?? []).length, 2);
});

test('a failing RUN reports its exit code and output and leaves nothing behind', async () => {
  const dir = await context('fail', { Dockerfile: `FROM ${BUSYBOX_IMAGE}\nRUN echo about to fail && exit 3\n` });
  const before = (await dockerOk(berth.env, ['images', '-q'])).trim().split('\n').length;
  const result = await build(['-t', 'build-fail', dir]);
  assert.equal(result.code, 3);
  assert.match(result.stdout, /about to fail/);
  assert.match(result.stderr, /The command '\/bin\/sh -c echo about to fail && exit 3' returned a non-zero code: 3/);
  const left = await leftovers();
  assert.equal(left.containers, '');
  assert.deepEqual(left.runc, []);
  assert.deepEqual(left.mounts, []);
  assert.equal((await dockerOk(berth.env, ['images', '-q'])).trim().split('\n').length, before);
  assert.equal((await docker(berth.env, ['image', 'inspect', 'build-fail'])).code, 1);
});

test('deletions in a RUN become OCI whiteouts and a recreated directory an opaque one', async () => {
  const dir = await context('whiteouts', {
    Dockerfile: `FROM ${BUSYBOX_IMAGE}\nRUN mkdir /d && touch /d/a /d/b && echo keep > /keep\nRUN rm -rf /d && mkdir /d && touch /d/c && rm /etc/group /keep\n`,
  });
  await buildOk(['-t', 'build-whiteouts', dir]);
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-whiteouts', 'sh', '-c', 'ls /d; test -e /etc/group || echo no-group; test -e /keep || echo no-keep']), 'c\nno-group\nno-keep\n');
  // The top layer as `docker save` ships it: OCI whiteout files, no overlayfs devices.
  const saved = join(work, 'whiteouts.tar');
  await dockerOk(berth.env, ['save', '-o', saved, 'build-whiteouts']);
  const unpacked = join(work, 'whiteouts');
  await mkdir(unpacked, { recursive: true });
  await run('tar', ['-xf', saved, '-C', unpacked]);
  const manifest = JSON.parse(await readFile(join(unpacked, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
  const top = manifest[0]!.Layers[manifest[0]!.Layers.length - 1]!;
  const { stdout } = await run('tar', ['-tvf', join(unpacked, top)]);
  const names = stdout.trim().split('\n').map((line) => line.split(/\s+/).slice(5).join(' '));
  for (const expected of ['d/', 'd/.wh..wh..opq', 'd/c', 'etc/.wh.group', '.wh.keep']) assert.ok(names.includes(expected), `${expected} missing from ${names.join(', ')}`);
  assert.ok(!stdout.split('\n').some((line) => line.startsWith('c')), 'a character device leaked into the layer');
});

test('a client that goes away mid-RUN cancels the build: the step container is killed and removed', async () => {
  const dir = await context('cancel', { Dockerfile: `FROM ${BUSYBOX_IMAGE}\nRUN echo started && sleep 120\n` });
  const cli = spawn(DOCKER_CLI, ['build', dir], { env: berth.env, stdio: 'ignore' });
  const exited = new Promise((resolve) => cli.on('close', resolve));
  await waitFor(async () => (await dockerOk(berth.env, ['ps', '-q'])).trim() !== '', 30_000);
  const started = Date.now();
  // The docker CLI dies as with a user's Ctrl-C: its connection closes.
  cli.kill('SIGKILL');
  await exited;
  await waitFor(async () => (await leftovers()).containers === '', 30_000);
  assert.ok(Date.now() - started < 30_000);
  const left = await leftovers();
  assert.deepEqual(left.runc, []);
  assert.deepEqual(left.mounts, []);
});

test('bad input gets a clear error: syntax, missing COPY source, unknown instruction in ONBUILD, not a tar', async () => {
  const syntax = await context('bad-syntax', { Dockerfile: `FROM ${BUSYBOX_IMAGE}\nFOO bar\n` });
  let result = await build([syntax]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /dockerfile parse error on line 2: unknown instruction: FOO/);

  const missing = await context('bad-copy', { Dockerfile: `FROM ${BUSYBOX_IMAGE}\nCOPY nothere.txt /x\n` });
  result = await build([missing]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /COPY failed: file not found in build context or excluded by \.dockerignore: stat nothere\.txt: file does not exist/);

  // The CLI checks for the Dockerfile itself; an SDK sending a context without one hears from Berth.
  const noDockerfile = await rawBuild(await tarOf({ 'other.txt': 'x' }));
  assert.equal(noDockerfile.status, 400);
  assert.match(noDockerfile.body, /Cannot locate specified Dockerfile: Dockerfile/);

  const url = await context('bad-url', { Dockerfile: `FROM ${BUSYBOX_IMAGE}\nADD http://example.invalid/x /x\n` });
  result = await build([url]);
  assert.match(result.stderr, /ADD from a URL is not supported/);

  // A missing base image is pulled, as dockerd does; from a registry nobody serves (loopback
  // port 9) that fails with the registry's error, and so does --pull of an image named there.
  const absent = await context('bad-base', { Dockerfile: 'FROM 127.0.0.1:9/no-such-base-image:1\n' });
  result = await build([absent]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /127\.0\.0\.1:9/);
  await dockerOk(berth.env, ['tag', BUSYBOX_IMAGE, '127.0.0.1:9/busybox-here:1']);
  const pulling = await context('pull-base', { Dockerfile: 'FROM 127.0.0.1:9/busybox-here:1\n' });
  assert.equal((await build([pulling])).code, 0);
  result = await build(['--pull', pulling]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /127\.0\.0\.1:9/);

  // BuildKit sessions and remote contexts are refused in Docker's error shape.
  const buildkit = await rawBuild(await tarOf({ Dockerfile: `FROM ${BUSYBOX_IMAGE}\n` }), 'version=2');
  assert.equal(buildkit.status, 501);
  assert.match(buildkit.body, /"message":"BuildKit builds are not supported by Berth/);
  const remote = await rawBuild(Buffer.alloc(0), 'remote=https://example.invalid/repo.git');
  assert.equal(remote.status, 501);

  const cacheBefore = await buildCacheCount();
  const notTar = await rawBuild(Buffer.from('this is not a tar archive, not even close'.repeat(20)));
  assert.equal(notTar.status, 400);
  assert.match(notTar.body, /"message":".*not a valid tar archive/);
  assert.equal(await buildCacheCount(), cacheBefore);
});

test('predefined proxy args reach RUN without an ARG line and stay out of the history; --platform', async () => {
  const dir = await context('proxy', { Dockerfile: `FROM --platform=linux/amd64 ${BUSYBOX_IMAGE}\nRUN echo "proxy=$HTTP_PROXY other=$FOO" > /p\n` });
  const out = await buildOk(['--build-arg', 'HTTP_PROXY=http://proxy.invalid:3128', '--build-arg', 'FOO=x', '-t', 'build-proxy', dir]);
  assert.match(out, /\[Warning\] One or more build-args \[FOO\] were not consumed/);
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-proxy', 'cat', '/p']), 'proxy=http://proxy.invalid:3128 other=\n');
  assert.doesNotMatch(await dockerOk(berth.env, ['history', '--no-trunc', 'build-proxy']), /proxy\.invalid/);
  const arm = await context('platform', { Dockerfile: `FROM --platform=linux/arm64 ${BUSYBOX_IMAGE}\n` });
  const refused = await build([arm]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /does not match the specified platform: wanted linux\/arm64, actual: linux\/amd64/);
});

test('COPY through a symlink in the image stays inside the image', async () => {
  const hostPath = join(work, `host-target-${Date.now()}`);
  const dir = await context('symlink', {
    Dockerfile: `FROM ${BUSYBOX_IMAGE}\nRUN mkdir -p ${hostPath} && ln -s ${hostPath} /link && ln -s ../../../../../../${hostPath} /rel\nCOPY f.txt /link/\nCOPY f.txt /rel/g.txt\n`,
    'f.txt': 'payload\n',
  });
  await buildOk(['-t', 'build-symlink', dir]);
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-symlink', 'cat', `${hostPath}/f.txt`, `${hostPath}/g.txt`]), 'payload\npayload\n');
  await assert.rejects(readFile(join(hostPath, 'f.txt')), /ENOENT/);
  await assert.rejects(readFile(join(hostPath, 'g.txt')), /ENOENT/);
});

test('ONBUILD triggers run in the child build', async () => {
  const parent = await context('onbuild-parent', { Dockerfile: `FROM ${BUSYBOX_IMAGE}\nONBUILD COPY marker.txt /marker.txt\nONBUILD RUN echo triggered >> /marker.txt\n` });
  await buildOk(['-t', 'build-onbuild-parent', parent]);
  assert.deepEqual((await inspectConfig('build-onbuild-parent')).OnBuild, ['COPY marker.txt /marker.txt', 'RUN echo triggered >> /marker.txt']);
  const child = await context('onbuild-child', { Dockerfile: 'FROM build-onbuild-parent\nCMD ["cat", "/marker.txt"]\n', 'marker.txt': 'child context\n' });
  const out = await buildOk(['-t', 'build-onbuild-child', child]);
  assert.match(out, /# Executing 2 build triggers/);
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-onbuild-child']), 'child context\ntriggered\n');
  assert.ok(!(await inspectConfig('build-onbuild-child')).OnBuild, 'triggers are not inherited by the child image');
});

test('-q prints only the id, --iidfile gets it, -f names another Dockerfile, escape directive and SHELL', async () => {
  const dir = await context('quiet', {
    'build/Other.dockerfile': '# escape=`\nFROM berth-test/busybox\nSHELL ["/bin/sh", "-e", "-c"]\nRUN echo a `\n  b > /ab\n',
  });
  const iid = join(work, 'iid');
  const out = await buildOk(['-q', '--iidfile', iid, '-f', join(dir, 'build/Other.dockerfile'), dir]);
  assert.match(out, /^sha256:[0-9a-f]{64}\n$/);
  assert.equal((await readFile(iid, 'utf8')).trim(), out.trim());
  assert.equal(await dockerOk(berth.env, ['run', '--rm', out.trim(), 'cat', '/ab']), 'a b\n');
  const history = await dockerOk(berth.env, ['history', '--no-trunc', '--format', '{{.CreatedBy}}', out.trim()]);
  assert.match(history, /^\/bin\/sh -e -c echo a\s+b > \/ab$/m);
});

test('a Dockerfile from stdin (-f -) with a context directory, and a context from stdin', async () => {
  const dir = await context('stdin', { 'data.txt': 'from the context\n' });
  const out = await docker(berth.env, ['build', '-t', 'build-stdin', '-f', '-', dir], { input: `FROM ${BUSYBOX_IMAGE}\nCOPY data.txt /data.txt\n`, timeoutMs: 120_000 });
  assert.equal(out.code, 0, out.stderr);
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-stdin', 'cat', '/data.txt']), 'from the context\n');
  const bare = await docker(berth.env, ['build', '-t', 'build-stdin-bare', '-'], { input: `FROM ${BUSYBOX_IMAGE}\nENV ONLY=dockerfile\n`, timeoutMs: 120_000 });
  assert.equal(bare.code, 0, bare.stderr);
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-stdin-bare', 'sh', '-c', 'echo $ONLY']), 'dockerfile\n');
});

test('commit with --change, -m and -a makes an image whose top layer is the container diff', async () => {
  await dockerOk(berth.env, ['run', '-d', '--name', 'build-commit-src', BUSYBOX_IMAGE, 'sh', '-c', 'echo data > /new && rm /etc/group && sleep 300']);
  try {
    await waitFor(async () => (await docker(berth.env, ['exec', 'build-commit-src', 'cat', '/new'])).stdout === 'data\n');
    const id = (await dockerOk(berth.env, ['commit', '-c', 'CMD ["cat", "/new"]', '-c', 'ENV COMMITTED=yes', '-m', 'a message', '-a', 'Ann <ann@example.com>', 'build-commit-src', 'build-committed:v1'])).trim();
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    // --pause (the default) paused and resumed it.
    assert.equal(await dockerOk(berth.env, ['inspect', '-f', '{{.State.Status}}', 'build-commit-src']), 'running\n');
    assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-committed:v1']), 'data\n');
    assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-committed:v1', 'sh', '-c', 'echo $COMMITTED; test -e /etc/group || echo gone']), 'yes\ngone\n');
    const meta = await dockerOk(berth.env, ['image', 'inspect', 'build-committed:v1', '--format', '{{.Comment}}|{{.Author}}|{{len .RootFS.Layers}}']);
    assert.equal(meta, 'a message|Ann <ann@example.com>|2\n');
    const bad = await docker(berth.env, ['commit', '-c', 'RUN echo no', 'build-commit-src']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /run is not a valid change command/);
    const none = await docker(berth.env, ['commit', 'build-no-such-container']);
    assert.match(none.stderr, /No such container: build-no-such-container/);
  } finally {
    await docker(berth.env, ['rm', '-f', 'build-commit-src']);
  }
});

test('build cache shows in system df and builder prune drops it without breaking images or containers', async () => {
  const dir = await context('prune', { Dockerfile: `FROM ${BUSYBOX_IMAGE}\nRUN echo kept > /kept\nRUN echo more > /more\n` });
  const out = await buildOk(['-t', 'build-prune', dir]);
  const intermediate = [...out.matchAll(/ ---> ([0-9a-f]{12})\n/g)].map((m) => m[1]!)[1]!;
  assert.ok((await buildCacheCount()) > 0);
  // A container running an intermediate image keeps that entry and its layers through a prune.
  await dockerOk(berth.env, ['run', '-d', '--name', 'build-prune-user', intermediate, 'sleep', '300']);
  try {
    const pruned = await dockerOk(berth.env, ['builder', 'prune', '-f']);
    assert.match(pruned, /Total reclaimed space/);
    assert.equal(await buildCacheCount(), 1);
    assert.equal(await dockerOk(berth.env, ['exec', 'build-prune-user', 'cat', '/kept']), 'kept\n');
  } finally {
    await dockerOk(berth.env, ['rm', '-f', 'build-prune-user']);
  }
  await dockerOk(berth.env, ['builder', 'prune', '-f']);
  assert.equal(await buildCacheCount(), 0);
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-prune', 'cat', '/kept', '/more']), 'kept\nmore\n');
  // Rebuilding after the prune runs the steps again (cache gone) and still works.
  const again = await buildOk(['-t', 'build-prune', dir]);
  assert.doesNotMatch(again, /Using cache/);
  // image prune leaves the build cache alone (as dockerd does) and the image keeps working.
  assert.ok((await buildCacheCount()) > 0);
  await dockerOk(berth.env, ['image', 'prune', '-f']);
  assert.ok((await buildCacheCount()) > 0);
  assert.equal(await dockerOk(berth.env, ['run', '--rm', 'build-prune', 'cat', '/more']), 'more\n');
});

async function buildCacheCount(): Promise<number> {
  const df = JSON.parse(await dockerOk(berth.env, ['system', 'df', '--format', '{{json .}}']).then((s) => `[${s.trim().split('\n').join(',')}]`)) as { Type: string; TotalCount: string }[];
  return Number(df.find((row) => row.Type === 'Build Cache')!.TotalCount);
}


async function makeTarGz(files: Record<string, string>): Promise<Buffer> {
  return makeArchive('z', files);
}

/** A tar of `files` compressed by GNU tar's flag (''/z/j/J). */
async function makeArchive(flag: '' | 'z' | 'j' | 'J', files: Record<string, string>): Promise<Buffer> {
  const dir = await mkdtemp(join(work, 'tgz-'));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  const out = join(work, `${Math.random().toString(16).slice(2)}.tgz`);
  await run('tar', [`-c${flag}f`, out, '-C', dir, '--owner=0', '--group=0', ...Object.keys(files).map((p) => p.split('/')[0]!).filter((v, i, a) => a.indexOf(v) === i)]);
  return readFile(out);
}

/** POST /build with a raw body, as an SDK would send it. */
function rawBuild(body: Buffer, query = 't=raw-bad'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: berth.socket, path: `/v1.47/build?${query}`, method: 'POST', headers: { 'Content-Type': 'application/x-tar', 'Content-Length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function waitFor(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('condition not met in time');
}

test('a build cut short by a SIGKILL of Berth leaves no container, mount or runc state after the restart', async () => {
  const dir = await context('crash', { Dockerfile: `FROM ${BUSYBOX_IMAGE}\nCOPY big /big\nRUN echo started && sleep 300\n`, big: 'x'.repeat(1024 * 1024) });
  const building = build(['-t', 'build-crash', dir]);
  await waitFor(async () => (await dockerOk(berth.env, ['ps', '-q'])).trim() !== '', 30_000);
  await berth.kill();
  const cut = await building;
  assert.notEqual(cut.code, 0);
  await berth.restart();
  const left = await leftovers();
  assert.equal(left.containers, '');
  assert.deepEqual(left.runc, []);
  assert.deepEqual(left.mounts, []);
  assert.equal((await docker(berth.env, ['image', 'inspect', 'build-crash'])).code, 1);
  // The cache kept what finished (FROM and COPY), so the next build reuses it.
  await writeFile(join(dir, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nCOPY big /big\nRUN echo finished\n`);
  const out = await buildOk(['-t', 'build-crash', dir]);
  assert.match(out, /Step 2\/3 : COPY big \/big\n ---> Using cache/);
});
