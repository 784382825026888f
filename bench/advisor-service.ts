/**
 * Benchmark: the Vulnerability Advisor through the service, end to end — an image recorded by
 * Berth, inventoried (layers mounted read-only, dpkg/apk/npm/PyPI metadata read, compliance
 * checked, stored) and matched against a real feed, as a user waits for it.
 *
 * Setup: Berth loads berth-test/debian:bookworm; a feed is built by Berth from the loopback
 * Debian security mirror, limited to the image's source packages (the same as the tests).
 * Each run then `docker commit`s a running container of the image with a different ENV (a new
 * image id, two layers: the image's and the commit's, so the overlay path is exercised) and at
 * once asks for its report: the request waits for the queued inventory and matches it, so its
 * latency is the whole "inventory + match" as seen by a client. The service's own inventory
 * time (`lastImageInventory` in stats) is reported beside it.
 *
 * Usage: node dist/bench/advisor-service.js [--runs 5] [--no-write]
 */
import { execFile } from 'node:child_process';
import { loadavg } from 'node:os';
import { parseArgs, promisify } from 'node:util';
import { BERTH_ENTRY, startBerth } from '../test/support/berth-harness.js';
import { dockerOk } from '../test/support/docker-cli.js';
import { DEBIAN_IMAGE, debianImageTar } from '../test/support/test-images.js';
import { prepareDebianSecurityMirror, startDebianSecurityMirror } from '../test/support/debian-security-mirror.js';
import { AdminClient } from '../src/cli/admin-client.js';
import { writeBenchmarkSection } from './doc-section.js';
import { median, quantile, timed } from './timing.js';

const run = promisify(execFile);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, 'no-write': { type: 'boolean', default: false } } });
  const runs = Number(values.runs);
  const berth = await startBerth({ extraArgs: ['--advisor-scan-interval', '0'] });
  const berthCli = async (args: string[]): Promise<string> => (await run(process.execPath, [BERTH_ENTRY, ...args, '-H', berth.dockerHost], { maxBuffer: 64 << 20 })).stdout;
  let mirror: Awaited<ReturnType<typeof startDebianSecurityMirror>> | undefined;
  try {
    await dockerOk(berth.env, ['load', '-i', await debianImageTar()]);
    const sbom = JSON.parse(await berthCli(['advisor', 'sbom', DEBIAN_IMAGE])) as { components: { type: string; name: string; properties?: { name: string; value: string }[] }[] };
    const sources = [
      ...new Set(
        sbom.components
          .filter((c) => c.type === 'library')
          .map((c) => c.properties?.find((p) => p.name === 'berth:source-package')?.value.split(' ')[0] ?? c.name),
      ),
    ];
    await prepareDebianSecurityMirror({ sourcePackages: sources });
    mirror = await startDebianSecurityMirror();
    await berthCli(['advisor', 'feed', 'build', '--mirror', mirror.securityUrl, '--suite', 'bookworm-security', '--source', ...sources]);
    await dockerOk(berth.env, ['run', '-d', '--name', 'bench-advisor', DEBIAN_IMAGE, 'sleep', '3600']);

    const api = new AdminClient(berth.dockerHost);
    const endToEnd: number[] = [];
    const inventory: number[] = [];
    const packagesRead: number[] = [];
    const compliance: number[] = [];
    let findings = 0;
    let packages = 0;
    for (let i = 0; i < runs; i++) {
      const tag = `bench/advisor:${i}`;
      await dockerOk(berth.env, ['commit', '--change', `ENV BENCH_RUN=${i}-${Date.now()}`, 'bench-advisor', tag]);
      endToEnd.push(
        await timed(async () => {
          const report = await api.call<{ vulnerabilities: unknown[]; packages: number }>('GET', `/berth/v1/advisor/images/${encodeURIComponent(tag)}/report`);
          findings = report.vulnerabilities.length;
          packages = report.packages;
        }),
      );
      const stats = JSON.parse(await berthCli(['advisor', 'stats'])) as { lastImageInventory: { ms: number; packagesMs: number; complianceMs: number } };
      inventory.push(stats.lastImageInventory.ms);
      packagesRead.push(stats.lastImageInventory.packagesMs);
      compliance.push(stats.lastImageInventory.complianceMs);
    }
    const section = [
      '## Vulnerability Advisor through the service (`bench/advisor-service.ts`)',
      '',
      `Figures from \`node dist/bench/advisor-service.js --runs ${runs}\` on ${new Date().toISOString().slice(0, 10)}: \`${DEBIAN_IMAGE}\``,
      `(${packages} dpkg packages) committed from a running container (a new image id, two layers) and its report asked`,
      `for at once over the admin API (\`GET /berth/v1/advisor/images/{ref}/report\`); the feed was built by Berth from the loopback Debian security mirror for the`,
      `image's source packages (${findings} findings per report). Target (issue 8): a Debian image inventoried and matched in under 0.5 s.`,
      `2-core machine shared with other work; load average ${loadavg()[0]!.toFixed(1)} at the end of the run.`,
      '',
      '| measure | median | max |',
      '| --- | ---: | ---: |',
      `| image inventory inside the service (overlay mount, packages, compliance, store) | ${Math.round(median(inventory))} ms | ${Math.round(quantile(inventory, 1))} ms |`,
      `| of which reading the packages (takeInventory) | ${Math.round(median(packagesRead))} ms | ${Math.round(quantile(packagesRead, 1))} ms |`,
      `| of which the compliance checks (runComplianceChecks: setuid walk, config files) | ${Math.round(median(compliance))} ms | ${Math.round(quantile(compliance, 1))} ms |`,
      `| \`docker commit\` returned → report received over the admin API (waits for the queued inventory, then matches) | ${Math.round(median(endToEnd))} ms | ${Math.round(quantile(endToEnd, 1))} ms |`,
    ].join('\n');
    console.log(section);
    if (!values['no-write']) await writeBenchmarkSection('bench/advisor-service.ts', section);
  } finally {
    await berth.stop();
    await mirror?.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
