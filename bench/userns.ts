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
 * End-to-end figures move by tens of milliseconds on a shared 2-core machine, more than the
 * user namespace costs; so the two host steps it adds are also timed alone, N times each
 * against what the operator's path does instead: the network namespace (the resident helper's
 * `net-new` vs `net-new-userns`, which also makes and pins the user namespace) and the
 * rootfs (`mount -t overlay` vs `berth-userns overlay`, which also clones and idmaps the
 * layer root), each followed by its teardown (untimed).
 *
 * Usage: node dist/bench/userns.js [--runs 20] [--no-write]
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runTool } from '../src/agent/network/command.js';
import { mountShiftedOverlay } from '../src/agent/userns/helper.js';
import { createNetnsWithVeths } from '../src/agent/network/veth-helper.js';
import type { IdRange } from '../src/agent/userns/id-range.js';
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
    const steps = await hostSteps(t.berth.dataRoot, t.berth.baseDir, runs, { base: 1 << 30, count: 65536 });
    const ms = (x: number): string => `${Math.round(x)} ms`;
    const ms1 = (x: number): string => `${x.toFixed(1)} ms`;
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
      '',
      `The two host steps a tenant's start adds, alone (medians of ${runs}):`,
      '',
      '| step | operator | tenant | tenant − operator |',
      '| --- | ---: | ---: | ---: |',
      `| network namespace with loopback up (resident helper: \`net-new\` / \`net-new-userns\`) | ${ms1(steps.netnsPlain)} | ${ms1(steps.netnsUserns)} | ${ms1(steps.netnsUserns - steps.netnsPlain)} |`,
      `| overlay mount of busybox (\`mount -t overlay\` / \`berth-userns overlay\`, idmapped lower) | ${ms1(steps.overlayPlain)} | ${ms1(steps.overlayShifted)} | ${ms1(steps.overlayShifted - steps.overlayPlain)} |`,
    ].join('\n');
    console.log(section);
    if (!values['no-write']) await writeBenchmarkSection('bench/userns.ts', section);
  } finally {
    await t.stop();
  }
}

/** The network namespace and rootfs steps of a start, operator's way and tenant's way, alternating. */
async function hostSteps(dataRoot: string, scratchParent: string, runs: number, range: IdRange): Promise<{ netnsPlain: number; netnsUserns: number; overlayPlain: number; overlayShifted: number }> {
  const dir = join(scratchParent, 'userns-bench');
  const layerRoot = join(dataRoot, 'images', 'layers');
  const lower = (await readdir(join(layerRoot, 'l'))).map((n) => `l/${n}`)[0];
  if (lower === undefined) throw new Error('no layer to mount');
  await mkdir(dir, { recursive: true });
  const samples = { netnsPlain: [] as number[], netnsUserns: [] as number[], overlayPlain: [] as number[], overlayShifted: [] as number[] };
  try {
    for (let i = 0; i < runs; i++) {
      const net = join(dir, 'net');
      const user = join(dir, 'user');
      await writeFile(net, '');
      samples.netnsPlain.push(await timed(() => createNetnsWithVeths(net, [])));
      await runTool('umount', [net]);
      await writeFile(user, '');
      samples.netnsUserns.push(await timed(() => createNetnsWithVeths(net, [], { range, usernsFile: user })));
      await runTool('umount', [net]);
      await runTool('umount', [user]);
      for (const shifted of [false, true]) {
        const base = join(dir, `ovl-${i}-${shifted}`);
        await Promise.all(['upper', 'work', 'merged'].map((p) => mkdir(join(base, p), { recursive: true })));
        const options = `lowerdir=${lower},upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}`;
        const took = await timed(() =>
          shifted ? mountShiftedOverlay(range, layerRoot, join(base, 'merged'), options) : runTool('mount', ['-t', 'overlay', 'overlay', '-o', options.replace(`lowerdir=${lower}`, `lowerdir=${join(layerRoot, lower)}`), join(base, 'merged')]),
        );
        (shifted ? samples.overlayShifted : samples.overlayPlain).push(took);
        await runTool('umount', [join(base, 'merged')]);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { netnsPlain: median(samples.netnsPlain), netnsUserns: median(samples.netnsUserns), overlayPlain: median(samples.overlayPlain), overlayShifted: median(samples.overlayShifted) };
}

await main();
