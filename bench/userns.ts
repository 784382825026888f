/**
 * Benchmark: what a tenant's user namespace costs on `docker run`.
 *
 * One Berth with a TLS listener; the operator (unix socket, no user namespace) and one tenant
 * (mutual TLS, its own ID range: a user namespace owning the network namespace, an idmapped
 * layer mount under the overlay) each run `docker run --rm berth-test/busybox true`, with no
 * network and on the default bridge, N times (default 20), alternating so both see the same
 * machine noise. `docker ps -q` per side is the floor (CLI start-up + one round trip, TLS
 * included for the tenant); the user namespace's cost is the difference of (run − floor).
 * Tenant containers also get the tenant's default memory and pids limits (one more cgroup
 * write each), which is part of the figure.
 *
 * Usage: node dist/bench/userns.js [--runs 20] [--no-write]
 */
import { parseArgs } from 'node:util';
import { dockerOk } from '../test/support/docker-cli.js';
import { startTenantBerth } from '../test/support/tenants.js';
import { busyboxImageTar } from '../test/support/test-images.js';
import { writeBenchmarkSection } from './doc-section.js';
import { median, quantile, timed } from './timing.js';

const IMAGE = 'berth-test/busybox';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' }, 'no-write': { type: 'boolean', default: false } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a positive integer');
  const t = await startTenantBerth();
  try {
    const tenant = await t.createTenant('bench');
    const sides = [
      { name: 'operator (no user namespace)', env: t.berth.env },
      { name: 'tenant (own ID range)', env: tenant },
    ];
    const image = await busyboxImageTar();
    for (const side of sides) await dockerOk(side.env, ['load', '-i', image]);
    const samples = sides.map(() => ({ none: [] as number[], bridge: [] as number[], floor: [] as number[] }));
    // Warm-up: first runs pay for page cache and the bridge's creation.
    for (const side of sides) for (let i = 0; i < 3; i++) await dockerOk(side.env, ['run', '--rm', IMAGE, 'true']);
    for (let i = 0; i < runs; i++) {
      for (const [k, side] of sides.entries()) {
        samples[k]!.floor.push(await timed(() => dockerOk(side.env, ['ps', '-q'])));
        samples[k]!.none.push(await timed(() => dockerOk(side.env, ['run', '--rm', '--network', 'none', IMAGE, 'true'])));
        samples[k]!.bridge.push(await timed(() => dockerOk(side.env, ['run', '--rm', IMAGE, 'true'])));
      }
    }
    const ms = (x: number): string => `${Math.round(x)} ms`;
    const rows = sides.map((side, k) => {
      const s = samples[k]!;
      return { name: side.name, floor: median(s.floor), none: median(s.none), noneP90: quantile(s.none, 0.9), bridge: median(s.bridge), bridgeP90: quantile(s.bridge, 0.9) };
    });
    const [op, ten] = rows as [(typeof rows)[0], (typeof rows)[0]];
    const section = [
      '## `docker run` with and without a user namespace (tenants\' ID ranges)',
      '',
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`node dist/bench/userns.js --runs ${runs}\`: one Berth, the operator over its unix socket and a tenant over mutual TLS, alternating, medians of ${runs} (p90 in brackets).`,
      '',
      '| measure | operator | tenant | tenant − operator |',
      '| --- | ---: | ---: | ---: |',
      `| \`docker ps -q\` (floor: CLI + one round trip) | ${ms(op.floor)} | ${ms(ten.floor)} | ${ms(ten.floor - op.floor)} |`,
      `| \`docker run --rm --network none busybox true\` | ${ms(op.none)} (${ms(op.noneP90)}) | ${ms(ten.none)} (${ms(ten.noneP90)}) | ${ms(ten.none - op.none)} |`,
      `| \`docker run --rm busybox true\` (default bridge) | ${ms(op.bridge)} (${ms(op.bridgeP90)}) | ${ms(ten.bridge)} (${ms(ten.bridgeP90)}) | ${ms(ten.bridge - op.bridge)} |`,
      `| run on the bridge minus the floor | ${ms(op.bridge - op.floor)} | ${ms(ten.bridge - ten.floor)} | ${ms(ten.bridge - ten.floor - (op.bridge - op.floor))} |`,
    ].join('\n');
    console.log(section);
    if (!values['no-write']) await writeBenchmarkSection('bench/userns.ts', section);
  } finally {
    await t.stop();
  }
}

await main();
