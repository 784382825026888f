/**
 * Benchmark: Berth against the real dockerd on this machine, both driven by the same docker CLI.
 *
 * Starts Berth and dockerd side by side on private roots, loads the busybox test image into
 * both, then measures, end to end as a user waits:
 *   - `docker run --rm berth-test/busybox true`, N times (default 20), alternating daemons so
 *     both see the same machine noise; median and p90. Each daemon with its defaults, so both
 *     attach the container to their default bridge network; and again with `--network none`;
 *   - `docker create` × M (default 50) then one `docker start` of all of them: wall time.
 * dockerd gets its default networking inside a network namespace of its own (the harness's
 * ownNetwork), so the comparison is default against default and the host is left alone.
 * Prints a markdown table and writes it, with machine facts and the command, into
 * docs/benchmarks.md between the markers below (replacing the previous figures).
 *
 * Usage: node dist/bench/run.js [--runs 20] [--containers 50] [--no-write]
 * (`npm run bench` builds first). BERTH_BENCH_SUBJECT=dockerd puts a second dockerd in Berth's
 * place, to check the benchmark itself; its figures are never written to the docs.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { parseArgs, promisify } from 'node:util';
import { startBerth } from '../test/support/berth-harness.js';
import { startDockerd } from '../test/support/dockerd-harness.js';
import { DOCKER_CLI, docker, dockerOk } from '../test/support/docker-cli.js';
import { busyboxImageTar } from '../test/support/test-images.js';
import { writeBenchmarkSection } from './doc-section.js';
import { quantile, timed } from './timing.js';

const execFileAsync = promisify(execFile);
const IMAGE = 'berth-test/busybox';

interface Engine {
  name: string;
  env: NodeJS.ProcessEnv;
  startupMs: number;
}

interface Figures {
  /** `docker ps -q` on an empty daemon: the CLI's own start-up plus one API round trip. */
  floorMedianMs: number;
  /** `docker run --rm --network none`. */
  noNetworkRunMedianMs: number;
  /** `docker run --rm` with the daemon's defaults: its default bridge network. */
  runMedianMs: number;
  runP90Ms: number;
  runMinMs: number;
  createMs: number;
  startMs: number;
  startupMs: number;
}

async function runOnce(engine: Engine, network: 'none' | 'default' = 'default'): Promise<number> {
  const networkFlags = network === 'none' ? ['--network', 'none'] : [];
  return timed(() => dockerOk(engine.env, ['run', '--rm', ...networkFlags, IMAGE, 'true']));
}

/** `docker create` × count, then one `docker start` of all; the containers are removed afterwards, untimed. */
async function createAndStart(engine: Engine, count: number): Promise<{ createMs: number; startMs: number }> {
  const ids: string[] = [];
  try {
    const createMs = await timed(async () => {
      for (let i = 0; i < count; i++) ids.push((await dockerOk(engine.env, ['create', IMAGE, 'sleep', '600'])).trim());
    });
    const startMs = await timed(() => dockerOk(engine.env, ['start', ...ids], { timeoutMs: 300_000 }));
    return { createMs, startMs };
  } finally {
    if (ids.length > 0) await docker(engine.env, ['rm', '-f', ...ids], { timeoutMs: 300_000 });
  }
}

async function version(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args);
    return stdout.split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

async function machineFacts(): Promise<string[]> {
  const cgroup = await readFile('/proc/self/mountinfo', 'utf8').then((m) => {
    const v2 = / - cgroup2 /.test(m);
    const v1 = / - cgroup /.test(m);
    return v1 && v2 ? 'hybrid (v1 controllers + v2)' : v2 ? 'v2' : 'v1';
  });
  return [
    `CPU: ${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}`,
    `Memory: ${Math.round(totalmem() / 2 ** 30)} GiB`,
    `Kernel: Linux ${release()}; cgroups ${cgroup}`,
    `Node ${process.version}; ${await version('runc', ['--version'])}; ${await version('/usr/sbin/dockerd', ['--version'])}; CLI ${await version(DOCKER_CLI, ['--version'])}`,
  ];
}

function table(results: Map<string, Figures>, subject: string, runs: number, containers: number): string {
  const b = results.get(subject)!;
  const d = results.get('dockerd')!;
  const ratio = (x: number, y: number): string => (y > 0 ? `${(x / y).toFixed(2)}×` : '–');
  const ms = (x: number): string => `${Math.round(x)} ms`;
  return [
    `| measure | ${subject} | dockerd | ${subject} / dockerd |`,
    '| --- | ---: | ---: | ---: |',
    `| \`docker run --rm busybox true\` (each daemon's default bridge network), median of ${runs} | ${ms(b.runMedianMs)} | ${ms(d.runMedianMs)} | ${ratio(b.runMedianMs, d.runMedianMs)} |`,
    `| same, p90 of ${runs} | ${ms(b.runP90Ms)} | ${ms(d.runP90Ms)} | ${ratio(b.runP90Ms, d.runP90Ms)} |`,
    `| same, fastest | ${ms(b.runMinMs)} | ${ms(d.runMinMs)} | ${ratio(b.runMinMs, d.runMinMs)} |`,
    `| \`docker run --rm --network none busybox true\`, median of ${runs} | ${ms(b.noNetworkRunMedianMs)} | ${ms(d.noNetworkRunMedianMs)} | ${ratio(b.noNetworkRunMedianMs, d.noNetworkRunMedianMs)} |`,
    `| \`docker ps -q\` (CLI start-up + one round trip), median of ${runs} | ${ms(b.floorMedianMs)} | ${ms(d.floorMedianMs)} | ${ratio(b.floorMedianMs, d.floorMedianMs)} |`,
    `| \`docker create\` × ${containers} (sequential) | ${ms(b.createMs)} | ${ms(d.createMs)} | ${ratio(b.createMs, d.createMs)} |`,
    `| one \`docker start\` of those ${containers} | ${ms(b.startMs)} | ${ms(d.startMs)} | ${ratio(b.startMs, d.startMs)} |`,
    `| create + start of ${containers}, wall | ${ms(b.createMs + b.startMs)} | ${ms(d.createMs + d.startMs)} | ${ratio(b.createMs + b.startMs, d.createMs + d.startMs)} |`,
    `| daemon start until \`/_ping\` answers | ${ms(b.startupMs)} | ${ms(d.startupMs)} | ${ratio(b.startupMs, d.startupMs)} |`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '20' },
      containers: { type: 'string', default: '50' },
      'no-write': { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const containers = Number(values.containers);
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(containers) || containers < 1) {
    throw new Error('--runs and --containers take positive integers');
  }

  const selfCheck = process.env.BERTH_BENCH_SUBJECT === 'dockerd';
  const subject = selfCheck ? 'dockerd#2' : 'Berth';
  const berthBegan = Date.now();
  const [berthR, dockerdR, tarR] = await Promise.allSettled([
    (selfCheck ? startDockerd({ ownNetwork: true }) : startBerth()).then((b) => ({ b, ms: Date.now() - berthBegan })),
    startDockerd({ ownNetwork: true }),
    busyboxImageTar(),
  ]);
  const berth = berthR.status === 'fulfilled' ? berthR.value.b : undefined;
  const dockerd = dockerdR.status === 'fulfilled' ? dockerdR.value : undefined;
  const stopAll = async (): Promise<void> => {
    await Promise.allSettled([berth?.stop(), dockerd?.stop()]);
  };
  const onSignal = (): void => {
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    for (const r of [berthR, dockerdR, tarR]) if (r.status === 'rejected') throw r.reason;
    const tar = (tarR as PromiseFulfilledResult<string>).value;
    const engines: Engine[] = [
      { name: subject, env: berth!.env, startupMs: (berthR as PromiseFulfilledResult<{ ms: number }>).value.ms },
      { name: 'dockerd', env: dockerd!.env, startupMs: dockerd!.startupMs },
    ];
    await Promise.all(engines.map((e) => dockerOk(e.env, ['load', '-i', tar])));

    // Warm-up: first runs pay for page cache and lazy initialisation on both sides.
    for (const e of engines) for (let i = 0; i < 2; i++) await runOnce(e);

    const samples = new Map<string, number[]>(engines.map((e) => [e.name, []]));
    const floors = new Map<string, number[]>(engines.map((e) => [e.name, []]));
    const noNetworkSamples = new Map<string, number[]>(engines.map((e) => [e.name, []]));
    for (let i = 0; i < runs; i++) {
      // Alternate which daemon goes first so drift in machine load falls on both.
      const order = i % 2 === 0 ? engines : [...engines].reverse();
      for (const e of order) samples.get(e.name)!.push(await runOnce(e));
      for (const e of order) floors.get(e.name)!.push(await timed(() => dockerOk(e.env, ['ps', '-q'])));
      for (const e of order) noNetworkSamples.get(e.name)!.push(await runOnce(e, 'none'));
    }

    const results = new Map<string, Figures>();
    for (const e of engines) {
      const s = samples.get(e.name)!;
      const { createMs, startMs } = await createAndStart(e, containers);
      results.set(e.name, {
        floorMedianMs: quantile(floors.get(e.name)!, 0.5),
        noNetworkRunMedianMs: quantile(noNetworkSamples.get(e.name)!, 0.5),
        runMedianMs: quantile(s, 0.5),
        runP90Ms: quantile(s, 0.9),
        runMinMs: Math.min(...s),
        createMs,
        startMs,
        startupMs: e.startupMs,
      });
    }

    const facts = await machineFacts();
    const md = table(results, subject, runs, containers);
    const args = process.argv.slice(2).join(' ');
    const section = [
      `## \`docker run\` and create/start: Berth vs dockerd`,
      '',
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`npm run bench\` ` +
        `(\`node dist/bench/run.js${args ? ` ${args}` : ''}\`): both daemons on this machine at once, each on its own ` +
        `temp roots, driven by the same docker CLI over a unix socket; dockerd runs with overlay2, its own containerd ` +
        `and its default networking (docker0, iptables, userland proxy) inside a network namespace of its own. ` +
        `Times are wall-clock of the CLI command.`,
      '',
      md,
      '',
      'Machine:',
      ...facts.map((f) => `- ${f}`),
    ].join('\n');
    process.stdout.write(`${md}\n\n${facts.join('\n')}\n`);
    const b = results.get(subject)!;
    const d = results.get('dockerd')!;
    process.stdout.write(
      `\ntarget (${subject} median run <= half of dockerd's): ${b.runMedianMs <= d.runMedianMs / 2 ? 'met' : 'NOT met'}\n`,
    );
    if (!values['no-write'] && !selfCheck) {
      await writeBenchmarkSection('bench/run.ts', section);
      process.stdout.write('docs/benchmarks.md updated\n');
    }
  } finally {
    await stopAll();
  }
}

await main();
