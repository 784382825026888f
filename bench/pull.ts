/**
 * Benchmark: `docker pull` of a Debian image (the suite's mmdebstrap bookworm rootfs, about
 * 170 MB unpacked, one gzip layer) from Debian's docker-registry on 127.0.0.1, with Berth and
 * the real dockerd side by side, driven by the same docker CLI. Before each pull the image is
 * removed, so every pull downloads, verifies and unpacks everything; runs alternate between
 * the daemons so machine noise falls on both.
 *
 * Usage: node dist/bench/pull.js [--runs 5] [--no-write]
 * Writes its table into docs/benchmarks.md between its own markers.
 */
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startBerth } from '../test/support/berth-harness.js';
import { startDockerd } from '../test/support/dockerd-harness.js';
import { docker, dockerOk } from '../test/support/docker-cli.js';
import { startRegistry } from '../test/support/registry-harness.js';
import { DEBIAN_IMAGE, debianImageTar } from '../test/support/test-images.js';
import { writeBenchmarkSection } from './doc-section.js';
import { median, timed } from './timing.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, 'no-write': { type: 'boolean', default: false } } });
  const runs = Number(values.runs);
  const [registry, berth, dockerd] = await Promise.all([startRegistry(), startBerth(), startDockerd()]);
  try {
    const tar = await debianImageTar();
    const ref = `${registry.host}/bench/debian:bookworm`;
    await dockerOk(berth.env, ['load', '-i', tar], { timeoutMs: 300_000 });
    await dockerOk(berth.env, ['tag', DEBIAN_IMAGE, ref]);
    await dockerOk(berth.env, ['push', ref], { timeoutMs: 300_000 });
    await dockerOk(berth.env, ['rmi', ref, DEBIAN_IMAGE]);
    const engines = [
      { name: 'Berth', env: berth.env },
      { name: 'dockerd', env: dockerd.env },
    ];
    const times = new Map<string, number[]>(engines.map((e) => [e.name, []]));
    const ids = new Map<string, string>();
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? engines : [...engines].reverse();
      for (const e of order) {
        await docker(e.env, ['rmi', ref]);
        await docker(e.env, ['image', 'prune', '-f']);
        times.get(e.name)!.push(await timed(() => dockerOk(e.env, ['pull', '-q', ref], { timeoutMs: 300_000 })));
        ids.set(e.name, (await dockerOk(e.env, ['image', 'inspect', '--format', '{{.Id}}', ref])).trim());
      }
    }
    if (ids.get('Berth') !== ids.get('dockerd')) throw new Error(`the daemons pulled different images: ${[...ids.values()].join(' ')}`);
    const tarMb = (await stat(tar)).size / 1e6;
    const b = median(times.get('Berth')!);
    const d = median(times.get('dockerd')!);
    const section = [
      '## `docker pull` from a local registry: Berth vs dockerd',
      '',
      `Figures from \`node dist/bench/pull.js --runs ${runs}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: the Debian bookworm test image`,
      `(${Math.round(tarMb)} MB as a \`docker save\` tar, one layer) pushed by Berth to Debian's docker-registry 2.8 on 127.0.0.1, then`,
      'removed and pulled again on both daemons, runs alternating; both end with the same image id.',
      '',
      '| measure | Berth | dockerd | Berth / dockerd |',
      '| --- | ---: | ---: | ---: |',
      `| \`docker pull\`, median of ${runs} | ${Math.round(b)} ms | ${Math.round(d)} ms | ${(b / d).toFixed(2)}× |`,
      `| fastest | ${Math.round(Math.min(...times.get('Berth')!))} ms | ${Math.round(Math.min(...times.get('dockerd')!))} ms | |`,
    ].join('\n');
    console.log(section);
    if (!values['no-write']) await writeBenchmarkSection('bench/pull.ts', section);
  } finally {
    await Promise.all([berth.stop(), dockerd.stop(), registry.stop()]);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
