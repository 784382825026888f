/**
 * Benchmark: `docker build` of a multi-stage Dockerfile, cold (`--no-cache`) and warm (every
 * step cached), with Berth and the real dockerd (classic builder) side by side, both driven by
 * the same docker CLI. Runs alternate between the daemons so machine noise falls on both.
 *
 * Usage: node dist/bench/build.js [--runs 5] [--no-write]
 * Writes its table into docs/benchmarks.md between its own markers.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startBerth } from '../test/support/berth-harness.js';
import { writeBenchmarkSection } from './doc-section.js';
import { startDockerd } from '../test/support/dockerd-harness.js';
import { dockerOk } from '../test/support/docker-cli.js';
import { busyboxImageTar } from '../test/support/test-images.js';
import { median, timed } from './timing.js';

/** Two build stages, RUN steps that write 8 MiB, a COPY of 100 context files, COPY --from. */
const DOCKERFILE = `FROM berth-test/busybox AS build
RUN mkdir /out && dd if=/dev/zero of=/out/blob bs=1M count=8 2>/dev/null
COPY src/ /src/
RUN cat /src/* | wc -c > /out/size && ls /src > /out/list
FROM berth-test/busybox
ENV APP=bench
WORKDIR /app
COPY --from=build /out/ /app/
CMD ["cat", "/app/size"]
`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, 'no-write': { type: 'boolean', default: false } } });
  const runs = Number(values.runs);
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-build-'));
  await writeFile(join(dir, 'Dockerfile'), DOCKERFILE);
  await mkdir(join(dir, 'src'));
  for (let i = 0; i < 100; i++) await writeFile(join(dir, 'src', `f${i}.txt`), `${'line\n'.repeat(100)}${i}\n`);
  const [berth, dockerd] = await Promise.all([startBerth(), startDockerd({ ownNetwork: true })]);
  try {
    const tar = await busyboxImageTar();
    const engines = [
      { name: 'Berth', env: berth.env },
      { name: 'dockerd', env: dockerd.env },
    ];
    await Promise.all(engines.map((e) => dockerOk(e.env, ['load', '-i', tar])));
    const cold = new Map<string, number[]>(engines.map((e) => [e.name, []]));
    const warm = new Map<string, number[]>(engines.map((e) => [e.name, []]));
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? engines : [...engines].reverse();
      for (const e of order) cold.get(e.name)!.push(await timed(() => dockerOk(e.env, ['build', '--no-cache', '-t', 'bench-build', dir], { timeoutMs: 300_000 })));
      for (const e of order) warm.get(e.name)!.push(await timed(() => dockerOk(e.env, ['build', '-t', 'bench-build', dir], { timeoutMs: 300_000 })));
    }
    for (const e of engines) {
      const out = await dockerOk(e.env, ['run', '--rm', 'bench-build']);
      if (out.trim() !== '50290') throw new Error(`${e.name} built a wrong image: ${out}`);
    }
    const row = (label: string, figures: Map<string, number[]>): string => {
      const b = median(figures.get('Berth')!);
      const d = median(figures.get('dockerd')!);
      return `| ${label}, median of ${runs} | ${Math.round(b)} ms | ${Math.round(d)} ms | ${(b / d).toFixed(2)}× |`;
    };
    const section = [
      '## `docker build` of a multi-stage Dockerfile: Berth vs dockerd',
      '',
      `Figures from \`node dist/bench/build.js --runs ${runs}\` on ${new Date().toISOString().slice(0, 10)}: the Dockerfile in bench/build.ts`,
      '(2 stages, 9 steps, 8 MiB written by RUN, 100 context files) built by the docker CLI 28 with the classic builder on',
      'both daemons at once, runs alternating. Cold is `--no-cache`; warm has every step cached. Both run RUN steps',
      'on their default networking (dockerd\'s docker0 lives in a network namespace of its own).',
      '',
      '| measure | Berth | dockerd | Berth / dockerd |',
      '| --- | ---: | ---: | ---: |',
      row('cold build (`--no-cache`)', cold),
      row('warm build (all cached)', warm),
    ].join('\n');
    console.log(section);
    if (!values['no-write']) await writeBenchmarkSection('bench/build.ts', section);
  } finally {
    await Promise.all([berth.stop(), dockerd.stop()]);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
