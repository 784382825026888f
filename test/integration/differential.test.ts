/**
 * Differential test: the same docker CLI scenarios run against Berth and against the real
 * dockerd 20.10, and what the CLI prints (exit code, stdout, stderr) must match once ids,
 * times, durations and sizes are normalised away.
 *
 * Both daemons are started here on private roots, with the busybox test image loaded. Each
 * scenario is one test; it names its own containers and removes them afterwards, so scenarios
 * do not see each other.
 *
 * A scenario on which Berth deliberately differs carries a `divergence` reason, which must also
 * appear in docs/divergences.md; it still runs (and reports both outputs) but does not fail.
 *
 * BERTH_DIFF_SUBJECT=dockerd runs the table against a second dockerd instead of Berth: a
 * self-check that every scenario is deterministic after normalisation.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, startBerth } from '../support/berth-harness.js';
import { startDockerd } from '../support/dockerd-harness.js';
import { docker, dockerOk, type DockerOptions, type DockerResult } from '../support/docker-cli.js';
import { busyboxImageTar } from '../support/test-images.js';

const IMAGE = 'berth-test/busybox';

/** One daemon as a scenario sees it. */
interface Side {
  docker(args: string[], options?: DockerOptions): Promise<DockerResult>;
  /** A host scratch dir private to this side (for cp). */
  scratch: string;
}

interface Scenario {
  name: string;
  /** Returns the observations to compare; every string in them is normalised before comparing. */
  run(side: Side): Promise<unknown>;
  /** Containers to remove (rm -f) after the scenario, pass or fail. */
  containers?: string[];
  /**
   * Where Berth deliberately differs: the observations under `keys` are reported but not
   * compared (all of them when `keys` is absent). `reason` must appear in docs/divergences.md.
   */
  divergence?: { reason: string; keys?: string[] };
  /**
   * A known Berth bug, not a deliberate difference. Without `keys` the whole scenario runs as
   * a `todo` test (it reports but does not fail the suite); with `keys`, the rest of the
   * observations are still compared strictly, and only a difference under those keys turns
   * the test into a todo. Remove the mark once the bug is fixed (the test says so).
   */
  knownBug?: { reason: string; keys?: string[] };
}

/** Answers that changed in Docker Engine after 20.10; Berth gives the current ones. */
const CURRENT_DOCKER = 'Berth answers as current Docker Engine (25+) where its messages or exit codes changed since dockerd 20.10';

/** Exit code and output of one CLI call (normalised later, with everything else). */
function obs(result: DockerResult): { code: number; stdout: string; stderr: string } {
  return { code: result.code, stdout: result.stdout, stderr: result.stderr };
}

/** Sorted lines, for output whose order the daemon does not define. */
function sortedLines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '').sort();
}

/**
 * Replaces what legitimately differs between two daemons: ids, timestamps, human durations,
 * sizes, host paths of the roots, pids in `top`.
 */
function normalise(text: string, roots: string[]): string {
  let out = text;
  for (const root of roots) out = out.split(root).join('<root>');
  return out
    .replace(/sha256:[0-9a-f]{64}/g, '<digest>')
    .replace(/\b[0-9a-f]{64}\b/g, '<id>')
    .replace(/\b[0-9a-f]{12}\b/g, '<id>')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)/g, '<time>')
    .replace(
      /\b(Less than a second|About a minute|About an hour|\d+ (seconds?|minutes?|hours?|days?|weeks?|months?|years?))\b/g,
      '<duration>',
    )
    .replace(/\b\d+(\.\d+)?\s?(B|kB|KB|MB|GB|TB)\b/g, '<size>');
}

function normaliseDeep(value: unknown, roots: string[]): unknown {
  if (typeof value === 'string') return normalise(value, roots);
  if (Array.isArray(value)) return value.map((v) => normaliseDeep(v, roots));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normaliseDeep(v, roots)]));
  }
  return value;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The scenario table: what a docker user does most, and the errors they meet most. */
const SCENARIOS: Scenario[] = [
  {
    name: 'run --rm prints the command output',
    run: async (s) => obs(await s.docker(['run', '--rm', IMAGE, 'echo', 'hi'])),
  },
  {
    name: 'run passes the exit code through',
    containers: ['diff-exit3'],
    run: async (s) => ({
      run: obs(await s.docker(['run', '--name', 'diff-exit3', IMAGE, 'sh', '-c', 'exit 3'])),
      state: obs(await s.docker(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}', 'diff-exit3'])),
    }),
  },
  {
    name: 'run -e sets the environment',
    run: async (s) => {
      const r = await s.docker(['run', '--rm', '-e', 'A=1', '-e', 'B', '--env', 'C=x=y', IMAGE, 'env']);
      return { code: r.code, env: sortedLines(r.stdout), stderr: r.stderr };
    },
  },
  {
    name: 'run with -w, -u, --hostname, --entrypoint',
    run: async (s) => ({
      pwd: obs(await s.docker(['run', '--rm', '-w', '/tmp/made', IMAGE, 'pwd'])),
      id: obs(await s.docker(['run', '--rm', '-u', '1000:1000', IMAGE, 'id'])),
      hostname: obs(await s.docker(['run', '--rm', '--hostname', 'box1', IMAGE, 'hostname'])),
      entrypoint: obs(await s.docker(['run', '--rm', '--entrypoint', 'echo', IMAGE, 'via', 'entrypoint'])),
    }),
  },
  {
    name: 'run reads stdin with -i',
    run: async (s) => obs(await s.docker(['run', '--rm', '-i', IMAGE, 'sh', '-c', 'tr a-z A-Z'], { input: 'hello\n' })),
  },
  {
    name: 'ps -a shows image, command and status',
    containers: ['diff-ps-up', 'diff-ps-exited', 'diff-ps-created'],
    run: async (s) => {
      const up = await s.docker(['run', '-d', '--name', 'diff-ps-up', IMAGE, 'sleep', '60']);
      const exited = await s.docker(['run', '--name', 'diff-ps-exited', IMAGE, 'true']);
      const created = await s.docker(['create', '--name', 'diff-ps-created', IMAGE, 'echo', 'x']);
      const ps = await s.docker(['ps', '-a', '--filter', 'name=diff-ps-', '--format', '{{.Names}}|{{.Image}}|{{.Command}}|{{.Status}}']);
      const running = await s.docker(['ps', '--filter', 'name=diff-ps-', '--format', '{{.Names}}']);
      const quiet = await s.docker(['ps', '-aq', '--filter', 'name=diff-ps-']);
      return {
        codes: [up.code, exited.code, created.code, ps.code, running.code],
        ps: sortedLines(ps.stdout),
        running: sortedLines(running.stdout),
        quietCount: sortedLines(quiet.stdout).length,
      };
    },
  },
  {
    name: 'inspect --format shows config and state fields',
    containers: ['diff-inspect'],
    run: async (s) => {
      const created = await s.docker([
        'create', '--name', 'diff-inspect', '-e', 'X=1', '-w', '/tmp', '--hostname', 'h1', '-l', 'a=b',
        '--restart', 'on-failure:2', '--stop-signal', 'SIGUSR1', IMAGE, 'sleep', '1',
      ]);
      const fields = [
        '{{.Name}}', '{{.Config.Image}}', '{{json .Config.Cmd}}', '{{json .Config.Entrypoint}}', '{{.Config.WorkingDir}}',
        '{{.Config.Hostname}}', '{{json .Config.Labels}}', '{{json .Config.Env}}', '{{.Config.StopSignal}}',
        '{{.State.Status}}', '{{.State.Running}}', '{{.State.ExitCode}}', '{{.State.Pid}}',
        '{{.HostConfig.RestartPolicy.Name}}', '{{.HostConfig.RestartPolicy.MaximumRetryCount}}',
        '{{.Path}}', '{{json .Args}}', '{{.RestartCount}}', '{{.Driver}}', '{{.Platform}}',
      ];
      const lines = await Promise.all(fields.map((f) => s.docker(['inspect', '--format', f, 'diff-inspect'])));
      return { created: created.code, ...Object.fromEntries(fields.map((f, i) => [f, obs(lines[i]!)])) };
    },
  },
  {
    name: 'image inspect and images list the loaded image',
    run: async (s) => ({
      inspect: obs(await s.docker(['image', 'inspect', '--format', '{{.Id}} {{json .RepoTags}} {{.Os}} {{.Architecture}} {{json .Config.Cmd}}', IMAGE])),
      images: obs(await s.docker(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}', IMAGE])),
    }),
  },
  {
    name: 'logs keeps stdout and stderr apart',
    containers: ['diff-logs'],
    // The pauses order the lines: stdout and stderr are separate pipes, read concurrently.
    run: async (s) => {
      const run = await s.docker(['run', '--name', 'diff-logs', IMAGE, 'sh', '-c', 'echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; echo out2']);
      return {
        run: run.code,
        logs: obs(await s.docker(['logs', 'diff-logs'])),
        tail: obs(await s.docker(['logs', '--tail', '1', 'diff-logs'])),
        timestamps: obs(await s.docker(['logs', '-t', 'diff-logs'])),
      };
    },
  },
  {
    name: 'errors for containers and images that do not exist',
    run: async (s) => ({
      rm: obs(await s.docker(['rm', 'nosuch'])),
      start: obs(await s.docker(['start', 'nosuch'])),
      stop: obs(await s.docker(['stop', 'nosuch'])),
      inspect: obs(await s.docker(['inspect', 'nosuch'])),
      logs: obs(await s.docker(['logs', 'nosuch'])),
      run: obs(await s.docker(['run', '--pull', 'never', 'nosuchimage'])),
      create: obs(await s.docker(['create', '--pull', 'never', 'nosuchimage:v1'])),
    }),
  },
  {
    name: 'create with a name in use is a conflict',
    containers: ['diff-twice'],
    run: async (s) => ({
      first: (await s.docker(['create', '--name', 'diff-twice', IMAGE])).code,
      second: obs(await s.docker(['create', '--name', 'diff-twice', IMAGE])),
    }),
  },
  {
    name: 'rm of a running container needs -f',
    containers: ['diff-rm-running'],
    // 20.10: "You cannot remove a running container <id>. ..."; 25+: "cannot remove container ...".
    divergence: { reason: CURRENT_DOCKER, keys: ['rm'] },
    run: async (s) => {
      await s.docker(['run', '-d', '--name', 'diff-rm-running', IMAGE, 'sleep', '60']);
      return {
        rm: obs(await s.docker(['rm', 'diff-rm-running'])),
        rmf: obs(await s.docker(['rm', '-f', 'diff-rm-running'])),
        gone: obs(await s.docker(['inspect', '--format', '{{.Name}}', 'diff-rm-running'])),
      };
    },
  },
  {
    name: 'stop and kill set the exit code',
    containers: ['diff-stop', 'diff-kill', 'diff-stop-trap'],
    run: async (s) => {
      await s.docker(['run', '-d', '--name', 'diff-stop', IMAGE, 'sleep', '60']);
      await s.docker(['run', '-d', '--name', 'diff-kill', IMAGE, 'sleep', '60']);
      await s.docker(['run', '-d', '--name', 'diff-stop-trap', IMAGE, 'sh', '-c', 'trap "exit 12" TERM; while true; do sleep 0.1; done']);
      await sleep(300);
      const stop = obs(await s.docker(['stop', '-t', '1', 'diff-stop']));
      const kill = obs(await s.docker(['kill', 'diff-kill']));
      const trap = obs(await s.docker(['stop', 'diff-stop-trap']));
      await s.docker(['wait', 'diff-kill']);
      const fmt = '{{.State.Status}} {{.State.ExitCode}}';
      return {
        stop,
        kill,
        trap,
        stopState: obs(await s.docker(['inspect', '--format', fmt, 'diff-stop'])),
        killState: obs(await s.docker(['inspect', '--format', fmt, 'diff-kill'])),
        trapState: obs(await s.docker(['inspect', '--format', fmt, 'diff-stop-trap'])),
        killStopped: obs(await s.docker(['kill', 'diff-kill'])),
        stopStopped: obs(await s.docker(['stop', 'diff-stop'])),
      };
    },
  },
  {
    name: 'start, restart and start -a',
    containers: ['diff-start'],
    run: async (s) => {
      const create = obs(await s.docker(['create', '--name', 'diff-start', IMAGE, 'sh', '-c', 'echo started; exit 2']));
      const startA = obs(await s.docker(['start', '-a', 'diff-start']));
      const start = obs(await s.docker(['start', 'diff-start']));
      await s.docker(['wait', 'diff-start']);
      const logs = obs(await s.docker(['logs', 'diff-start']));
      return { create: create.code, startA, start, logs };
    },
  },
  {
    name: 'exec runs in a running container and passes its exit code',
    containers: ['diff-exec', 'diff-exec-stopped'],
    // A missing binary: 20.10 exits 126 whatever the cause; current Docker 127 (not found).
    divergence: { reason: CURRENT_DOCKER, keys: ['missing'] },
    run: async (s) => {
      await s.docker(['run', '-d', '--name', 'diff-exec', '-e', 'FROM_RUN=1', IMAGE, 'sleep', '60']);
      await s.docker(['create', '--name', 'diff-exec-stopped', IMAGE]);
      return {
        echo: obs(await s.docker(['exec', 'diff-exec', 'echo', 'hi'])),
        exit: obs(await s.docker(['exec', 'diff-exec', 'sh', '-c', 'exit 5'])),
        env: obs(await s.docker(['exec', '-e', 'E=2', 'diff-exec', 'sh', '-c', 'echo $FROM_RUN $E'])),
        workdir: obs(await s.docker(['exec', '-w', '/etc', 'diff-exec', 'pwd'])),
        stdin: obs(await s.docker(['exec', '-i', 'diff-exec', 'cat'], { input: 'piped\n' })),
        missing: obs(await s.docker(['exec', 'diff-exec', '/no/such/binary'])),
        stopped: obs(await s.docker(['exec', 'diff-exec-stopped', 'true'])),
      };
    },
  },
  {
    name: 'top lists the container processes',
    containers: ['diff-top'],
    run: async (s) => {
      await s.docker(['run', '-d', '--name', 'diff-top', IMAGE, 'sleep', '60']);
      const top = await s.docker(['top', 'diff-top']);
      const lines = top.stdout.split('\n').filter((l) => l !== '');
      // Pids and start times differ; compare the header and each process's command.
      return {
        code: top.code,
        header: lines[0]?.split(/\s+/),
        commands: lines.slice(1).map((l) => l.split(/\s+/).slice(7).join(' ')),
        stderr: top.stderr,
      };
    },
  },
  {
    name: 'diff lists changes to the root filesystem',
    containers: ['diff-diff'],
    run: async (s) => {
      await s.docker(['run', '--name', 'diff-diff', IMAGE, 'sh', '-c', 'touch /tmp/x; mkdir /newdir; echo y > /newdir/f; rm /etc/group']);
      const diff = await s.docker(['diff', 'diff-diff']);
      return { code: diff.code, changes: sortedLines(diff.stdout), stderr: diff.stderr };
    },
  },
  {
    name: 'cp copies files in and out',
    containers: ['diff-cp'],
    run: async (s) => {
      await s.docker(['run', '-d', '--name', 'diff-cp', IMAGE, 'sleep', '60']);
      const src = join(s.scratch, 'in.txt');
      await writeFile(src, 'copied in\n');
      const cpIn = obs(await s.docker(['cp', src, 'diff-cp:/tmp/in.txt']));
      const readIn = obs(await s.docker(['exec', 'diff-cp', 'cat', '/tmp/in.txt']));
      const cpOut = obs(await s.docker(['cp', 'diff-cp:/etc/passwd', join(s.scratch, 'passwd')]));
      const out = await readFile(join(s.scratch, 'passwd'), 'utf8').catch(() => '<missing>');
      const missing = obs(await s.docker(['cp', 'diff-cp:/no/such/file', join(s.scratch, 'x')]));
      return { cpIn, readIn, cpOut, out, missing };
    },
  },
  {
    name: 'rename changes the name',
    containers: ['diff-rename-a', 'diff-rename-b', 'diff-rename-c'],
    run: async (s) => {
      await s.docker(['create', '--name', 'diff-rename-a', IMAGE]);
      await s.docker(['create', '--name', 'diff-rename-c', IMAGE]);
      return {
        rename: obs(await s.docker(['rename', 'diff-rename-a', 'diff-rename-b'])),
        newName: obs(await s.docker(['inspect', '--format', '{{.Name}}', 'diff-rename-b'])),
        oldName: obs(await s.docker(['inspect', '--format', '{{.Name}}', 'diff-rename-a'])),
        taken: obs(await s.docker(['rename', 'diff-rename-b', 'diff-rename-c'])),
        missing: obs(await s.docker(['rename', 'nosuch', 'diff-rename-z'])),
      };
    },
  },
  {
    name: 'wait prints the exit code',
    containers: ['diff-wait'],
    run: async (s) => {
      await s.docker(['run', '-d', '--name', 'diff-wait', IMAGE, 'sh', '-c', 'sleep 0.5; exit 4']);
      return { wait: obs(await s.docker(['wait', 'diff-wait'])), again: obs(await s.docker(['wait', 'diff-wait'])) };
    },
  },
  {
    name: 'pause and unpause',
    containers: ['diff-pause'],
    run: async (s) => {
      await s.docker(['run', '-d', '--name', 'diff-pause', IMAGE, 'sleep', '60']);
      const fmt = '{{.State.Status}} {{.State.Paused}} {{.State.Running}}';
      return {
        pause: obs(await s.docker(['pause', 'diff-pause'])),
        paused: obs(await s.docker(['inspect', '--format', fmt, 'diff-pause'])),
        ps: obs(await s.docker(['ps', '--filter', 'name=diff-pause', '--format', '{{.Status}}'])),
        exec: obs(await s.docker(['exec', 'diff-pause', 'true'])),
        pauseAgain: obs(await s.docker(['pause', 'diff-pause'])),
        unpause: obs(await s.docker(['unpause', 'diff-pause'])),
        running: obs(await s.docker(['inspect', '--format', fmt, 'diff-pause'])),
        unpauseAgain: obs(await s.docker(['unpause', 'diff-pause'])),
      };
    },
  },
  {
    name: 'port with nothing published',
    containers: ['diff-port'],
    run: async (s) => {
      await s.docker(['create', '--name', 'diff-port', IMAGE]);
      return {
        all: obs(await s.docker(['port', 'diff-port'])),
        one: obs(await s.docker(['port', 'diff-port', '80'])),
      };
    },
  },
  {
    name: 'bad input is refused with the daemon message',
    // 20.10 starts with "failed to create shim task: ..."; 23+ with "failed to create task for container: ...".
    divergence: { reason: CURRENT_DOCKER, keys: ['missingBinary'] },
    run: async (s) => ({
      badName: obs(await s.docker(['create', '--name', 'bad name!', IMAGE])),
      tinyMemory: obs(await s.docker(['create', '--name', 'diff-tinymem', '-m', '1k', IMAGE])),
      rmWithRestart: obs(await s.docker(['run', '--rm', '--restart', 'always', IMAGE, 'true'])),
      badSignal: obs(await s.docker(['kill', '-s', 'NOSUCHSIG', 'nosuch'])),
      noCommand: obs(await s.docker(['run', '--rm', '--entrypoint', '', IMAGE])),
      missingBinary: obs(await s.docker(['run', '--rm', IMAGE, '/no/such/binary'])),
    }),
    containers: ['diff-tinymem'],
  },
  {
    name: 'start, stop and restart are idempotent where dockerd is',
    containers: ['diff-idem', 'diff-idem-created'],
    run: async (s) => {
      await s.docker(['run', '-d', '--name', 'diff-idem', IMAGE, 'sleep', '60']);
      await s.docker(['create', '--name', 'diff-idem-created', IMAGE, 'sleep', '60']);
      const fmt = '{{.State.Status}} {{.RestartCount}}';
      return {
        startRunning: obs(await s.docker(['start', 'diff-idem'])),
        stopCreated: obs(await s.docker(['stop', 'diff-idem-created'])),
        createdState: obs(await s.docker(['inspect', '--format', fmt, 'diff-idem-created'])),
        restart: obs(await s.docker(['restart', '-t', '0', 'diff-idem'])),
        restarted: obs(await s.docker(['inspect', '--format', fmt, 'diff-idem'])),
      };
    },
  },
  {
    name: 'kill -s delivers the signal',
    containers: ['diff-signal'],
    run: async (s) => {
      await s.docker(['run', '-d', '--name', 'diff-signal', IMAGE, 'sh', '-c', 'trap "exit 9" USR1; while true; do sleep 0.1; done']);
      await sleep(300);
      return {
        kill: obs(await s.docker(['kill', '-s', 'USR1', 'diff-signal'])),
        wait: obs(await s.docker(['wait', 'diff-signal'])),
      };
    },
  },
  {
    name: 'ps filters by status, exit code and label, and -n',
    divergence: { reason: CURRENT_DOCKER, keys: ['badFilter'] },
    containers: ['diff-filt-a', 'diff-filt-b', 'diff-filt-c'],
    run: async (s) => {
      await s.docker(['run', '--name', 'diff-filt-a', '-l', 'tier=x', IMAGE, 'sh', '-c', 'exit 3']);
      await s.docker(['run', '--name', 'diff-filt-b', IMAGE, 'true']);
      await s.docker(['create', '--name', 'diff-filt-c', '-l', 'tier=x', IMAGE]);
      const ps = async (...filters: string[]): Promise<string[]> =>
        sortedLines((await s.docker(['ps', '-a', '--filter', 'name=diff-filt-', ...filters, '--format', '{{.Names}}'])).stdout);
      return {
        exited: await ps('--filter', 'status=exited'),
        created: await ps('--filter', 'status=created'),
        exit3: await ps('--filter', 'exited=3'),
        label: await ps('--filter', 'label=tier=x'),
        labelKey: await ps('--filter', 'label=tier'),
        last: obs(await s.docker(['ps', '-a', '-n', '1', '--filter', 'name=diff-filt-', '--format', '{{.Names}}'])),
        badFilter: obs(await s.docker(['ps', '--filter', 'nosuchfilter=1'])),
      };
    },
  },
  {
    name: 'rm of several containers, one missing',
    containers: ['diff-rm1', 'diff-rm2'],
    run: async (s) => {
      await s.docker(['create', '--name', 'diff-rm1', IMAGE]);
      await s.docker(['create', '--name', 'diff-rm2', IMAGE]);
      return obs(await s.docker(['rm', 'diff-rm1', 'nosuch', 'diff-rm2']));
    },
  },
  {
    name: 'read-only root filesystem and tmpfs',
    run: async (s) => ({
      readOnly: obs(await s.docker(['run', '--rm', '--read-only', IMAGE, 'touch', '/x'])),
      tmpfs: obs(await s.docker(['run', '--rm', '--read-only', '--tmpfs', '/scratch', IMAGE, 'sh', '-c', 'touch /scratch/x && echo ok'])),
    }),
  },
  {
    name: 'exec as another user and logs -f of an exited container',
    containers: ['diff-execu', 'diff-follow'],
    run: async (s) => {
      await s.docker(['run', '-d', '--name', 'diff-execu', IMAGE, 'sleep', '60']);
      await s.docker(['run', '--name', 'diff-follow', IMAGE, 'sh', '-c', 'echo a; echo b']);
      return {
        execUser: obs(await s.docker(['exec', '-u', 'nobody', 'diff-execu', 'id'])),
        follow: obs(await s.docker(['logs', '-f', 'diff-follow'], { timeoutMs: 10_000 })),
      };
    },
  },
  {
    name: 'image errors, tag and untag',
    knownBug: { reason: "inspect --type image of a missing image: dockerd 20.10 says 'no such image: X: No such image: X:latest' (check current Docker's wording first)", keys: ['inspectImage'] },
    containers: ['diff-img-user'],
    run: async (s) => {
      await s.docker(['create', '--name', 'diff-img-user', IMAGE]);
      return {
        rmiMissing: obs(await s.docker(['rmi', 'nosuchimage'])),
        inspectImage: obs(await s.docker(['inspect', '--type', 'image', 'nosuchimage'])),
        tag: obs(await s.docker(['tag', IMAGE, 'diff/tagged:v1'])),
        untag: obs(await s.docker(['rmi', 'diff/tagged:v1'])),
        rmiInUse: obs(await s.docker(['rmi', IMAGE])),
      };
    },
  },
  // Networks: the comparison dockerd runs with --bridge=none and may not make bridges, so only
  // what needs none is compared here (errors, predefined networks, --network none).
  {
    name: 'network errors and predefined networks',
    run: async (s) => {
      return {
        inspectMissing: obs(await s.docker(['network', 'inspect', 'nosuchnet'])),
        rmMissing: obs(await s.docker(['network', 'rm', 'nosuchnet'])),
        rmHost: obs(await s.docker(['network', 'rm', 'host'])),
        rmNone: obs(await s.docker(['network', 'rm', 'none'])),
        createHost: obs(await s.docker(['network', 'create', 'host'])),
        lsCustom: obs(await s.docker(['network', 'ls', '--filter', 'type=custom'])),
        inspectNone: obs(await s.docker(['network', 'inspect', '--format', '{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}} {{.Attachable}} {{len .IPAM.Config}}', 'none', 'host'])),
      };
    },
  },
  {
    name: 'run --network none has loopback only',
    run: async (s) => obs(await s.docker(['run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'ip -o link | cut -d: -f2; cat /etc/hostname | wc -c'])),
  },
];

/** Starts the subject daemon: Berth, or a second dockerd for the self-check. */
async function startSubject(): Promise<{ env: NodeJS.ProcessEnv; roots: string[]; stop(): Promise<void>; logs(): string }> {
  if (process.env.BERTH_DIFF_SUBJECT === 'dockerd') {
    const d = await startDockerd();
    return { env: d.env, roots: [d.baseDir], stop: () => d.stop(), logs: () => d.logs() };
  }
  const b = await startBerth();
  return { env: b.env, roots: [b.baseDir], stop: () => b.stop(), logs: () => b.logs() };
}

describe('differential: docker CLI against Berth and dockerd', { concurrency: 1 }, () => {
  let subject: Awaited<ReturnType<typeof startSubject>> | undefined;
  let peer: Awaited<ReturnType<typeof startDockerd>> | undefined;
  let scratch = '';
  let divergencesDoc = '';

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'berth-diff-'));
    const [s, p, tar] = await Promise.allSettled([startSubject(), startDockerd(), busyboxImageTar()]);
    if (s.status === 'fulfilled') subject = s.value;
    if (p.status === 'fulfilled') peer = p.value;
    for (const r of [s, p, tar]) if (r.status === 'rejected') throw r.reason;
    const image = (tar as PromiseFulfilledResult<string>).value;
    await Promise.all([dockerOk(subject!.env, ['load', '-i', image]), dockerOk(peer!.env, ['load', '-i', image])]);
    divergencesDoc = await readFile(join(REPO_ROOT, 'docs/divergences.md'), 'utf8').catch(() => '');
  });

  after(async () => {
    await Promise.allSettled([subject?.stop(), peer?.stop()]);
    if (scratch !== '') await rm(scratch, { recursive: true, force: true });
  });

  for (const scenario of SCENARIOS) {
    // Known Berth bugs and divergences concern Berth only; the dockerd self-check compares everything.
    const selfCheck = process.env.BERTH_DIFF_SUBJECT === 'dockerd';
    const knownBug = selfCheck ? undefined : scenario.knownBug;
    const todo = knownBug !== undefined && knownBug.keys === undefined ? knownBug.reason : undefined;
    test(scenario.name, { todo }, async (t) => {
      const side = (env: NodeJS.ProcessEnv, name: string): Side => ({
        docker: (args, options) => docker(env, args, options),
        scratch: join(scratch, name),
      });
      const s = side(subject!.env, 'subject');
      const p = side(peer!.env, 'peer');
      await Promise.all([mkdirp(s.scratch), mkdirp(p.scratch)]);
      const runOn = async (x: Side, env: NodeJS.ProcessEnv): Promise<unknown> => {
        try {
          return await scenario.run(x);
        } finally {
          if (scenario.containers?.length) await docker(env, ['rm', '-f', ...scenario.containers]);
        }
      };
      const [got, want] = await Promise.all([runOn(s, subject!.env), runOn(p, peer!.env)]);
      const gotN = normaliseDeep(got, subject!.roots.concat(s.scratch));
      const wantN = normaliseDeep(want, [peer!.baseDir, p.scratch]);
      if (process.env.BERTH_DIFF_VERBOSE === '1') t.diagnostic(JSON.stringify(wantN, null, 1));
      const divergence = selfCheck ? undefined : scenario.divergence;
      if (divergence !== undefined) {
        assert.ok(divergencesDoc.includes(divergence.reason), `docs/divergences.md must explain: ${divergence.reason}`);
        const keys = divergence.keys ?? Object.keys({ ...(gotN as object), ...(wantN as object) });
        for (const key of keys) {
          const [g, w] = [(gotN as Record<string, unknown>)[key], (wantN as Record<string, unknown>)[key]];
          const same = JSON.stringify(g) === JSON.stringify(w);
          t.diagnostic(`${key}: deliberate divergence (${same ? 'outputs now match: the mark can go' : 'differs'}): ${divergence.reason}`);
          delete (gotN as Record<string, unknown>)[key];
          delete (wantN as Record<string, unknown>)[key];
        }
      }
      let bugShown = false;
      for (const key of knownBug?.keys ?? []) {
        const [g, w] = [(gotN as Record<string, unknown>)[key], (wantN as Record<string, unknown>)[key]];
        if (JSON.stringify(g) === JSON.stringify(w)) t.diagnostic(`${key}: matches now; the known-bug mark can go`);
        else {
          bugShown = true;
          t.diagnostic(`${key}: berth ${JSON.stringify(g)} vs dockerd ${JSON.stringify(w)}`);
        }
        delete (gotN as Record<string, unknown>)[key];
        delete (wantN as Record<string, unknown>)[key];
      }
      assert.deepEqual(gotN, wantN, `subject (${process.env.BERTH_DIFF_SUBJECT ?? 'berth'}) differs from dockerd`);
      // Everything else matched: the scenario is a todo only because of the known bug.
      if (bugShown) t.todo(knownBug!.reason);
    });
  }
});

async function mkdirp(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}
