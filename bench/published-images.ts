/**
 * Benchmark: what the operator's published images cost a tenant's image lookups.
 *
 * Every image lookup of a tenant (inspect, `docker run`'s resolve, `docker images`) also reads
 * the published set and the operator's records of it. One Berth; one tenant over mutual TLS on
 * one kept-alive connection; sequential requests, after 200 warm-up requests. Three rounds
 * alternate none and 5 published images; each row pools its rounds.
 *
 * Usage: node dist/bench/published-images.js [--requests 2000] [--no-write]
 */
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { dockerOk } from '../test/support/docker-cli.js';
import { startTenantBerth } from '../test/support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../test/support/test-images.js';
import { writeBenchmarkSection } from './doc-section.js';
import { quantile } from './timing.js';

const PUBLISHED = 5;
const ROUNDS = 3;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: 'string', default: '2000' }, 'no-write': { type: 'boolean', default: false } } });
  const count = Number(values.requests);
  const t = await startTenantBerth();
  try {
    const env = await t.createTenant('bench');
    await dockerOk(env, ['load', '-i', await busyboxImageTar()]);
    await dockerOk(t.berth.env, ['load', '-i', await busyboxImageTar()]);
    const bases: string[] = [];
    for (let i = 0; i < PUBLISHED; i++) {
      const container = (await dockerOk(t.berth.env, ['create', BUSYBOX_IMAGE, 'true'])).trim();
      await dockerOk(t.berth.env, ['commit', container, `bench-base/b${i}:1`]);
      await dockerOk(t.berth.env, ['rm', container]);
      bases.push(`bench-base/b${i}:1`);
    }

    const certDir = join(t.work, 'bench-certs');
    const [ca, cert, key] = await Promise.all(['ca.pem', 'cert.pem', 'key.pem'].map((f) => readFile(join(certDir, f), 'utf8')));
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
    const send = (path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest({ agent, host: '127.0.0.1', port: t.port, servername: 'localhost', ca, cert, key, path }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    const measure = async (path: string): Promise<number[]> => {
      for (let i = 0; i < 200; i++) await send(path);
      const times: number[] = [];
      for (let i = 0; i < count; i++) {
        const began = process.hrtime.bigint();
        const status = await send(path);
        times.push(Number(process.hrtime.bigint() - began) / 1e3);
        if (status !== 200) throw new Error(`${path} answered ${status}`);
      }
      return times;
    };
    const paths = [`/v1.47/images/${BUSYBOX_IMAGE}/json`, '/v1.47/images/json'];
    // Rounds alternate none and 5 published, so drift of a shared machine hits both alike.
    const samples = new Map<string, number[]>();
    const record = async (label: string, path: string): Promise<void> => {
      const key = `${path}\t${label}`;
      samples.set(key, [...(samples.get(key) ?? []), ...(await measure(path))]);
    };
    for (let round = 0; round < ROUNDS; round++) {
      for (const path of paths) await record('none', path);
      for (const base of bases) await t.berthOk(['image', 'publish', base]);
      for (const path of [...paths, `/v1.47/images/${bases[PUBLISHED - 1]}/json`]) await record(String(PUBLISHED), path);
      for (const base of bases) await t.berthOk(['image', 'unpublish', base]);
    }
    const rows = [...samples].map(([key, times]) => {
      const [path, label] = key.split('\t');
      return `| \`GET ${path}\` | ${label} | ${quantile(times, 0.5).toFixed(0)} µs | ${quantile(times, 0.9).toFixed(0)} µs |`;
    });
    agent.destroy();

    const section = [
      '## Image lookups with published base images',
      '',
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`node dist/bench/published-images.js --requests ${count}\`: one Berth, one tenant over mutual TLS with its own busybox, ${count} sequential requests per row and round on one kept-alive connection (after 200 warm-up requests), ${ROUNDS} rounds alternating none and ${PUBLISHED} published images, pooled. A tenant's lookup also reads the published set and the operator's record of each published image.`,
      '',
      '| request | published images | median | p90 |',
      '| --- | --- | ---: | ---: |',
      ...rows,
    ].join('\n');
    process.stdout.write(`${section}\n`);
    if (!values['no-write']) await writeBenchmarkSection('bench/published-images.ts', section);
  } finally {
    await t.stop();
  }
}

await main();
