/**
 * Differential test for volumes, mounts and health checks: the same docker CLI scenarios run
 * against Berth and against the real dockerd 20.10, and what the CLI prints must match once
 * ids, volume names, times, durations, sizes and the daemons' roots are normalised away.
 * (The engine core's table is test/integration/differential.test.ts; this one follows its
 * rules: `divergence` reasons must appear in docs/divergences.md.)
 *
 * Scenarios observe what both daemons do alike. Where Berth deliberately differs (nosuid and
 * nodev on volume mounts, the anonymous-volume label and prune of Docker 23+, mount errors at
 * create rather than at start), the scenario observes around it or marks it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, startBerth } from '../support/berth-harness.js';
import { startDockerd } from '../support/dockerd-harness.js';
import { docker, dockerOk, type DockerResult } from '../support/docker-cli.js';
import { busyboxImageTar, SEEDED_IMAGE, seededVolumeImageTar } from '../support/test-images.js';
import { sleep } from '../support/cleanup.js';

const IMAGE = 'berth-test/busybox';
const CURRENT_DOCKER = 'Berth answers as current Docker Engine (25+) where its messages or exit codes changed since dockerd 20.10';

interface Side {
  docker(args: string[]): Promise<DockerResult>;
  ok(args: string[]): Promise<string>;
  scratch: string;
}

interface Scenario {
  name: string;
  run(side: Side): Promise<Record<string, unknown>>;
  /** Containers (rm -f -v) and volumes (volume rm -f) to remove afterwards, pass or fail. */
  containers?: string[];
  volumes?: string[];
  divergence?: { reason: string; keys: string[] };
}

const obs = (r: DockerResult): { code: number; stdout: string; stderr: string } => ({ code: r.code, stdout: r.stdout, stderr: r.stderr });
const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '').sort();

function normalise(text: string, roots: string[]): string {
  let out = text;
  for (const root of roots) out = out.split(root).join('<root>');
  return out
    .replace(/sha256:[0-9a-f]{64}/g, '<digest>')
    .replace(/\b[0-9a-f]{64}\b/g, '<id>')
    .replace(/\b[0-9a-f]{12}\b/g, '<id>')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)/g, '<time>')
    .replace(/\b(Less than a second|About a minute|About an hour|\d+ (seconds?|minutes?|hours?|days?|weeks?|months?|years?))\b/g, '<duration>')
    .replace(/\b\d+(\.\d+)?\s?(B|kB|KB|MB|GB|TB)\b/g, '<size>');
}

function normaliseDeep(value: unknown, roots: string[]): unknown {
  if (typeof value === 'string') return normalise(value, roots);
  if (Array.isArray(value)) return value.map((v) => normaliseDeep(v, roots));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normaliseDeep(v, roots)]));
  return value;
}

/** Mounts of an inspect, sorted by destination (dockerd keeps them in a map). */
async function mountsOf(s: Side, name: string): Promise<unknown[]> {
  const list = JSON.parse(await s.ok(['inspect', '-f', '{{json .Mounts}}', name])) as { Destination: string }[];
  return list.sort((a, b) => a.Destination.localeCompare(b.Destination));
}

async function waitForHealth(s: Side, name: string, want: string): Promise<string> {
  let status = '';
  for (let i = 0; i < 100; i++) {
    status = (await s.ok(['inspect', '-f', '{{.State.Health.Status}}', name])).trim();
    if (status === want) break;
    await sleep(100);
  }
  return status;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'volume create, inspect, ls, rm and their errors',
    volumes: ['dv-one', 'dv-tmp'],
    // dockerd 20.10 capitalises "Invalid filter"; current Docker does not.
    divergence: { reason: CURRENT_DOCKER, keys: ['badFilter'] },
    run: async (s) => ({
      create: obs(await s.docker(['volume', 'create', '--label', 'a=b', 'dv-one'])),
      inspect: obs(await s.docker(['volume', 'inspect', '-f', '{{.Name}} {{.Driver}} {{json .Labels}} {{.Scope}} {{json .Options}} {{.Mountpoint}}', 'dv-one'])),
      again: obs(await s.docker(['volume', 'create', 'dv-one'])),
      ls: obs(await s.docker(['volume', 'ls', '--filter', 'label=a=b', '--format', '{{.Driver}} {{.Name}}'])),
      tmpfs: obs(await s.docker(['volume', 'create', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=1m', 'dv-tmp'])),
      tmpfsOptions: obs(await s.docker(['volume', 'inspect', '-f', '{{json .Options}}', 'dv-tmp'])),
      rm: obs(await s.docker(['volume', 'rm', 'dv-one'])),
      inspectMissing: obs(await s.docker(['volume', 'inspect', 'dv-nosuch'])),
      rmMissing: obs(await s.docker(['volume', 'rm', 'dv-nosuch'])),
      rmMissingForced: obs(await s.docker(['volume', 'rm', '-f', 'dv-nosuch'])),
      badName: obs(await s.docker(['volume', 'create', 'bad@name'])),
      shortName: obs(await s.docker(['volume', 'create', 'x'])),
      badDriver: obs(await s.docker(['volume', 'create', '-d', 'nodriver', 'dv-two'])),
      badOption: obs(await s.docker(['volume', 'create', '-o', 'foo=bar', 'dv-two'])),
      quota: obs(await s.docker(['volume', 'create', '-o', 'size=10m', 'dv-two'])),
      badFilter: obs(await s.docker(['volume', 'ls', '--filter', 'colour=red'])),
    }),
  },
  {
    name: 'a named volume keeps data across containers',
    containers: ['dv-w'],
    volumes: ['dv-keep'],
    run: async (s) => ({
      write: obs(await s.docker(['run', '--name', 'dv-w', '-v', 'dv-keep:/data', IMAGE, 'sh', '-c', 'echo kept > /data/f'])),
      rm: obs(await s.docker(['rm', '-v', 'dv-w'])),
      read: obs(await s.docker(['run', '--rm', '-v', 'dv-keep:/other', IMAGE, 'cat', '/other/f'])),
      ls: obs(await s.docker(['volume', 'ls', '-q', '--filter', 'name=dv-keep'])),
    }),
  },
  {
    name: "an image's VOLUME is seeded with the image's content; rm -v removes it",
    containers: ['dv-seed'],
    run: async (s) => {
      const run = await s.docker(['run', '--name', 'dv-seed', SEEDED_IMAGE, 'sh', '-c', 'ls -lnd /data /data/seed /data/sub | cut -c1-10,15-35; cat /data/seed']);
      const name = (await s.ok(['inspect', '-f', '{{range .Mounts}}{{.Name}}{{end}}', 'dv-seed'])).trim();
      const mounts = await mountsOf(s, 'dv-seed');
      const rm = await s.docker(['rm', '-v', 'dv-seed']);
      return { run: obs(run), mounts, rm: obs(rm), gone: obs(await s.docker(['volume', 'inspect', name])) };
    },
  },
  {
    name: 'a volume in use is not removed, and prune keeps it',
    containers: ['dv-user', 'dv-left'],
    volumes: ['dv-busy'],
    run: async (s) => {
      await s.ok(['volume', 'create', 'dv-busy']);
      await s.ok(['create', '--name', 'dv-user', '-v', 'dv-busy:/d', IMAGE]);
      await s.ok(['run', '--name', 'dv-left', '-v', '/left', IMAGE, 'true']);
      const left = (await s.ok(['inspect', '-f', '{{range .Mounts}}{{.Name}}{{end}}', 'dv-left'])).trim();
      await s.ok(['rm', 'dv-left']);
      const rm = await s.docker(['volume', 'rm', 'dv-busy']);
      const prune = await s.docker(['volume', 'prune', '-f']);
      return {
        rm: obs(rm),
        pruneCode: prune.code,
        unusedAnonymousPruned: prune.stdout.includes(left),
        inUseKept: (await s.ok(['volume', 'ls', '-q'])).split('\n').includes('dv-busy'),
      };
    },
  },
  {
    name: '--mount tmpfs, read-only volume and bind mounts',
    volumes: ['dv-ro'],
    run: async (s) => {
      await writeFile(join(s.scratch, 'host.txt'), 'from host\n');
      return {
        tmpfs: obs(await s.docker(['run', '--rm', '--mount', 'type=tmpfs,destination=/t,tmpfs-size=2m,tmpfs-mode=1770', IMAGE, 'sh', '-c', 'grep " /t " /proc/mounts; stat -c %a /t'])),
        roVolume: obs(await s.docker(['run', '--rm', '-v', 'dv-ro:/ro:ro', IMAGE, 'touch', '/ro/x'])),
        roMount: obs(await s.docker(['run', '--rm', '--mount', 'type=volume,source=dv-ro,target=/ro,readonly', IMAGE, 'touch', '/ro/x'])),
        bind: obs(await s.docker(['run', '--rm', '-v', `${s.scratch}:/host`, IMAGE, 'sh', '-c', 'cat /host/host.txt; echo back > /host/back.txt'])),
        back: await readFile(join(s.scratch, 'back.txt'), 'utf8'),
        roBind: obs(await s.docker(['run', '--rm', '--mount', `type=bind,source=${s.scratch},target=/host,readonly`, IMAGE, 'touch', '/host/x'])),
      };
    },
  },
  {
    name: 'inspect shows Mounts and HostConfig as dockerd does',
    containers: ['dv-shape'],
    volumes: ['dv-named', 'dv-m'],
    run: async (s) => {
      await s.ok(['volume', 'create', 'dv-named']);
      const create = await s.docker([
        'create', '--name', 'dv-shape', '-v', 'dv-named:/named', '-v', `${s.scratch}:/hostdir:ro`, '-v', '/anon',
        '--mount', 'type=tmpfs,dst=/tm,tmpfs-size=2m', '--mount', 'type=volume,src=dv-m,dst=/m', '--mount', `type=bind,src=${s.scratch},dst=/b2,readonly`,
        IMAGE,
      ]);
      return {
        create: create.code,
        mounts: await mountsOf(s, 'dv-shape'),
        binds: lines((JSON.parse(await s.ok(['inspect', '-f', '{{json .HostConfig.Binds}}', 'dv-shape'])) as string[]).join('\n')),
        hostMounts: obs(await s.docker(['inspect', '-f', '{{json .HostConfig.Mounts}}', 'dv-shape'])),
        volumes: obs(await s.docker(['inspect', '-f', '{{json .Config.Volumes}} {{json .HostConfig.VolumesFrom}}', 'dv-shape'])),
        psFilter: obs(await s.docker(['ps', '-a', '--filter', 'volume=dv-named', '--format', '{{.Names}}'])),
      };
    },
  },
  {
    name: '--volumes-from, read-only with :ro',
    containers: ['dv-src'],
    volumes: ['dv-shared'],
    run: async (s) => {
      const src = await s.docker(['run', '--name', 'dv-src', '-v', 'dv-shared:/shared', '-v', '/anon', IMAGE, 'sh', '-c', 'echo s > /shared/f; echo a > /anon/f']);
      return {
        src: src.code,
        rw: obs(await s.docker(['run', '--rm', '--volumes-from', 'dv-src', IMAGE, 'sh', '-c', 'cat /shared/f /anon/f; echo more > /shared/g'])),
        ro: obs(await s.docker(['run', '--rm', '--volumes-from', 'dv-src:ro', IMAGE, 'sh', '-c', 'cat /shared/g; touch /anon/x'])),
        missing: obs(await s.docker(['create', '--volumes-from', 'dv-nosuch', IMAGE])),
        badMode: obs(await s.docker(['create', '--volumes-from', 'dv-src:shared', IMAGE])),
      };
    },
  },
  {
    name: 'bad mount input is refused with the same messages',
    // dockerd 20.10 refuses duplicates when the container starts (so `run` prints the error
    // after creating it); Berth refuses at create and leaves nothing behind.
    divergence: { reason: CURRENT_DOCKER, keys: ['leftovers'] },
    run: async (s) => {
      const before = lines(await s.ok(['ps', '-aq'])).length;
      const result = {
        duplicate: obs(await s.docker(['run', '--rm', '-v', 'dv-b1:/d', '-v', 'dv-b2:/d', IMAGE, 'true'])),
        duplicateTmpfs: obs(await s.docker(['run', '--rm', '--tmpfs', '/d', '-v', 'dv-b1:/d', IMAGE, 'true'])),
        root: obs(await s.docker(['run', '--rm', '-v', 'dv-b1:/', IMAGE, 'true'])),
        mode: obs(await s.docker(['run', '--rm', '-v', '/x:/y:bogus', IMAGE, 'true'])),
        spec: obs(await s.docker(['run', '--rm', '-v', '/x:ro', IMAGE, 'true'])),
        propagation: obs(await s.docker(['run', '--rm', '-v', 'dv-b1:/x:shared', IMAGE, 'true'])),
        badName: obs(await s.docker(['run', '--rm', '-v', 'a b:/x', IMAGE, 'true'])),
        missingSource: obs(await s.docker(['run', '--rm', '--mount', 'type=bind,source=/nonexistent-berth-path,target=/x', IMAGE, 'true'])),
        tmpfsSource: obs(await s.docker(['run', '--rm', '--mount', 'type=tmpfs,source=x,target=/x', IMAGE, 'true'])),
        anonymousReadOnly: obs(await s.docker(['run', '--rm', '--mount', 'type=volume,target=/x,readonly', IMAGE, 'true'])),
        missingTarget: obs(await s.docker(['run', '--rm', '--mount', 'type=volume,source=dv-b1', IMAGE, 'true'])),
      };
      const leftovers = lines(await s.ok(['ps', '-aq'])).length - before;
      for (const id of lines(await s.ok(['ps', '-aq', '--filter', 'status=created']))) await s.docker(['rm', '-f', '-v', id]);
      return { ...result, leftovers };
    },
    volumes: ['dv-b1', 'dv-b2'],
  },
  {
    name: 'health checks: healthy and unhealthy in inspect, ps and filters',
    containers: ['dv-healthy', 'dv-sick'],
    run: async (s) => {
      await s.ok(['run', '-d', '--name', 'dv-healthy', '--health-cmd', 'echo fine', '--health-interval', '200ms', IMAGE, 'sleep', '60']);
      await s.ok(['run', '-d', '--name', 'dv-sick', '--health-cmd', 'echo bad; exit 3', '--health-interval', '200ms', '--health-retries', '1', IMAGE, 'sleep', '60']);
      const healthy = await waitForHealth(s, 'dv-healthy', 'healthy');
      const sick = await waitForHealth(s, 'dv-sick', 'unhealthy');
      const last = async (name: string): Promise<unknown> => {
        const h = JSON.parse(await s.ok(['inspect', '-f', '{{json .State.Health}}', name])) as { Log: { ExitCode: number; Output: string }[] };
        const entry = h.Log.at(-1)!;
        return { ExitCode: entry.ExitCode, Output: entry.Output };
      };
      return {
        healthy,
        sick,
        healthyLast: await last('dv-healthy'),
        sickLast: await last('dv-sick'),
        ps: lines(await s.ok(['ps', '--filter', 'name=dv-', '--format', '{{.Names}} {{.Status}}'])),
        filterHealthy: obs(await s.docker(['ps', '--filter', 'health=healthy', '--filter', 'name=dv-', '--format', '{{.Names}}'])),
        filterUnhealthy: obs(await s.docker(['ps', '--filter', 'health=unhealthy', '--filter', 'name=dv-', '--format', '{{.Names}}'])),
        config: obs(await s.docker(['inspect', '-f', '{{json .Config.Healthcheck}}', 'dv-sick'])),
        badFilter: obs(await s.docker(['ps', '--filter', 'health=great'])),
      };
    },
  },
  {
    name: "an image's HEALTHCHECK and --no-healthcheck",
    containers: ['dv-imgcheck', 'dv-nocheck'],
    run: async (s) => {
      await s.ok(['run', '-d', '--name', 'dv-imgcheck', SEEDED_IMAGE, 'sh', '-c', 'touch /tmp/healthy; sleep 60']);
      await s.ok(['run', '-d', '--name', 'dv-nocheck', '--no-healthcheck', SEEDED_IMAGE, 'sleep', '60']);
      return {
        image: await waitForHealth(s, 'dv-imgcheck', 'healthy'),
        config: obs(await s.docker(['inspect', '-f', '{{json .Config.Healthcheck}}', 'dv-imgcheck'])),
        none: obs(await s.docker(['inspect', '-f', '{{json .State.Health}} {{json .Config.Healthcheck}}', 'dv-nocheck'])),
      };
    },
  },
  {
    name: 'system df lists volumes with their size and links',
    containers: ['dv-df'],
    volumes: ['dv-dfvol'],
    run: async (s) => {
      await s.ok(['run', '--name', 'dv-df', '-v', 'dv-dfvol:/v', IMAGE, 'sh', '-c', 'head -c 5000 /dev/zero > /v/blob']);
      const df = await s.ok(['system', 'df', '-v', '--format', '{{json .Volumes}}']);
      const volumes = JSON.parse(df) as { Name: string; Links: number; Size: string }[];
      return { volume: volumes.filter((v) => v.Name === 'dv-dfvol') };
    },
  },
];

describe('differential: volumes, mounts and health against dockerd', { concurrency: 1 }, () => {
  let subject: { env: NodeJS.ProcessEnv; roots: string[]; stop(): Promise<void> } | undefined;
  let peer: Awaited<ReturnType<typeof startDockerd>> | undefined;
  let scratch = '';
  let divergencesDoc = '';

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'berth-voldiff-'));
    const [s, p, busybox, seeded] = await Promise.allSettled([startBerth(), startDockerd(), busyboxImageTar(), seededVolumeImageTar()]);
    if (s.status === 'fulfilled') subject = { env: s.value.env, roots: [s.value.baseDir], stop: () => s.value.stop() };
    if (p.status === 'fulfilled') peer = p.value;
    for (const r of [s, p, busybox, seeded]) if (r.status === 'rejected') throw r.reason;
    for (const env of [subject!.env, peer!.env]) {
      await dockerOk(env, ['load', '-i', (busybox as PromiseFulfilledResult<string>).value]);
      await dockerOk(env, ['load', '-i', (seeded as PromiseFulfilledResult<string>).value]);
    }
    divergencesDoc = await readFile(join(REPO_ROOT, 'docs/divergences.md'), 'utf8').catch(() => '');
  });

  after(async () => {
    await Promise.allSettled([subject?.stop(), peer?.stop()]);
    if (scratch !== '') await rm(scratch, { recursive: true, force: true });
  });

  for (const scenario of SCENARIOS) {
    test(scenario.name, async (t) => {
      const side = (env: NodeJS.ProcessEnv, name: string): Side => ({
        docker: (args) => docker(env, args),
        ok: (args) => dockerOk(env, args),
        scratch: join(scratch, name),
      });
      const s = side(subject!.env, 'subject');
      const p = side(peer!.env, 'peer');
      await Promise.all([mkdir(s.scratch, { recursive: true }), mkdir(p.scratch, { recursive: true })]);
      const runOn = async (x: Side, env: NodeJS.ProcessEnv): Promise<Record<string, unknown>> => {
        try {
          return await scenario.run(x);
        } finally {
          if (scenario.containers?.length) await docker(env, ['rm', '-f', '-v', ...scenario.containers]);
          if (scenario.volumes?.length) await docker(env, ['volume', 'rm', '-f', ...scenario.volumes]);
        }
      };
      const [got, want] = await Promise.all([runOn(s, subject!.env), runOn(p, peer!.env)]);
      const gotN = normaliseDeep(got, [...subject!.roots, s.scratch]) as Record<string, unknown>;
      const wantN = normaliseDeep(want, [peer!.baseDir, p.scratch]) as Record<string, unknown>;
      if (process.env.BERTH_DIFF_VERBOSE === '1') t.diagnostic(JSON.stringify({ berth: gotN, dockerd: wantN }, null, 1));
      if (scenario.divergence) {
        assert.ok(divergencesDoc.includes(scenario.divergence.reason), `docs/divergences.md must explain: ${scenario.divergence.reason}`);
        for (const key of scenario.divergence.keys) {
          t.diagnostic(`${key}: deliberate divergence: berth ${JSON.stringify(gotN[key])} vs dockerd ${JSON.stringify(wantN[key])}`);
          delete gotN[key];
          delete wantN[key];
        }
      }
      assert.deepEqual(gotN, wantN, 'Berth differs from dockerd');
    });
  }
});
