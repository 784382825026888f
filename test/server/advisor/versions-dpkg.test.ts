/**
 * compareDebianVersions agrees with `dpkg --compare-versions` on more than 10,000 pairs of real
 * versions from the archive's package lists (apt's lists on this machine and the cached
 * bookworm and bookworm-security indexes), plus hand-picked edge cases.
 *
 * Pairs: neighbours after sorting with Berth's comparator (the closest, hardest pairs; if dpkg
 * agrees on every neighbour, it agrees on the whole order), versions of the same source in the
 * base and security suites, and random pairs. One dpkg call per pair suffices: dpkg is asked
 * whether the relation Berth computed (lt, eq or gt) holds, and those exclude each other.
 * The calls run in two batched shell loops, so the test takes seconds.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { compareDebianVersions } from '../../../src/server/advisor/versions/index.js';
import { cachedPackages } from '../../support/debian-security-mirror.js';

const run = promisify(execFile);

const EDGE_CASES: [string, string][] = [
  ['1.0', '1.0-0'],
  ['1.0~rc1', '1.0'],
  ['1.0~rc1', '1.0~rc1~1'],
  ['1.0~', '1.0'],
  ['1.0~~', '1.0~'],
  ['1.0~~a', '1.0~~'],
  ['1.0a', '1.0'],
  ['1.0a', '1.0+'],
  ['1.0+', '1.0.'],
  ['1.0.', '1.0-1'],
  ['1.0-1', '1.0-1+b1'],
  ['1.0-1~bpo1', '1.0-1'],
  ['1:0.1', '2.0'],
  ['0:1.0', '1.0'],
  ['10:1', '9:2'],
  ['1.0-1-2', '1.0-1-10'],
  ['1.01', '1.1'],
  ['1.001', '1.1'],
  ['1.0000000000000000000000000001', '1.1'],
  ['99999999999999999999999', '100000000000000000000000'],
  ['1.2.3', '1.2.3.0'],
  ['1.2a3', '1.2a10'],
  ['1.2A', '1.2a'],
  ['1.2Z', '1.2a'],
  ['a', 'b'],
  ['2.36-9+deb12u7', '2.36-9+deb12u14'],
  ['3.0.15-1~deb12u1', '3.0.15-1'],
  ['115.9.0esr-1~deb12u1', '115.9.0esr-1'],
  ['1:2.38.1-5+deb12u3', '2.38.1-5+deb12u3'],
  ['7.88.1-10+deb12u5', '7.88.1-10+deb12u12'],
  ['1.0+dfsg-1', '1.0-1'],
  ['1.0+dfsg', '1.0~dfsg'],
  ['2:1.0', '1:9.9'],
  ['1.0-0.1', '1.0-0'],
  ['0.0', '0'],
];

/** The versions in every Packages list we can read: apt's own lists and the mirror cache. */
async function archiveVersions(): Promise<{ all: string[]; sameSourcePairs: [string, string][] }> {
  const versions = new Set<string>();
  const lists = '/var/lib/apt/lists';
  for (const name of await readdir(lists).catch(() => [] as string[])) {
    if (!/_Packages(\.lz4|\.xz|\.gz)?$/.test(name)) continue;
    const path = join(lists, name);
    const decompress = name.endsWith('.lz4') ? `lz4 -dc "$1"` : name.endsWith('.xz') ? `xz -dc "$1"` : name.endsWith('.gz') ? `zcat "$1"` : `cat "$1"`;
    // A list this machine cannot decompress (no lz4 tool) is skipped: the cached indexes below
    // hold tens of thousands of versions on their own.
    const stdout = await run('sh', ['-c', `${decompress} | grep -E '^(Version|Source):'`, 'sh', path], { maxBuffer: 256 * 1024 * 1024 }).then(
      (r) => r.stdout,
      () => '',
    );
    for (const line of stdout.split('\n')) {
      const m = /^Version: (\S+)$/.exec(line) ?? /^Source: \S+ \((\S+)\)$/.exec(line);
      if (m !== null) versions.add(m[1]!);
    }
  }
  const security = await cachedPackages('debian-security');
  const base = await cachedPackages('debian');
  for (const p of [...security, ...base]) {
    versions.add(p.version);
    versions.add(p.sourceVersion);
  }
  const baseBySource = new Map(base.map((p) => [p.source, p.sourceVersion]));
  const sameSourcePairs: [string, string][] = [];
  for (const p of security) {
    const b = baseBySource.get(p.source);
    if (b !== undefined) sameSourcePairs.push([p.sourceVersion, b], [p.version, b]);
  }
  return { all: [...versions], sameSourcePairs };
}

/** A small deterministic generator, so a failure names pairs that the next run sees too. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function relation(sign: number): 'lt' | 'eq' | 'gt' {
  return sign < 0 ? 'lt' : sign > 0 ? 'gt' : 'eq';
}

/** For each line "a rel b", 1 when dpkg agrees that a rel b holds, 0 when not. */
async function dpkgVerdicts(lines: string[], dir: string): Promise<string[]> {
  const half = Math.ceil(lines.length / 2);
  const chunks = [lines.slice(0, half), lines.slice(half)];
  const outputs = await Promise.all(
    chunks.map(async (chunk, i) => {
      const file = join(dir, `pairs-${i}`);
      await writeFile(file, `${chunk.join('\n')}\n`);
      const script = 'while read -r a r b; do if dpkg --compare-versions "$a" "$r" "$b"; then echo 1; else echo 0; fi; done < "$1"';
      const { stdout } = await run('bash', ['-c', script, 'bash', file], { maxBuffer: 16 * 1024 * 1024 });
      return stdout.trim().split('\n');
    }),
  );
  return outputs.flat();
}

test('compareDebianVersions agrees with dpkg --compare-versions on >= 10,000 archive version pairs and the edge cases', { timeout: 240_000 }, async () => {
  const { all, sameSourcePairs } = await archiveVersions();
  assert.ok(all.length > 10_000, `enough distinct versions in the lists (${all.length})`);
  const random = seededRandom(8);
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;

  const pairs = new Map<string, [string, string]>();
  const add = (a: string, b: string): void => {
    if (/\s/.test(a + b)) return;
    pairs.set(`${a} ${b}`, [a, b]);
  };
  for (const [a, b] of EDGE_CASES) add(a, b);
  const sample = Array.from({ length: 6000 }, () => pick(all)).sort(compareDebianVersions);
  for (let i = 1; i < sample.length; i++) add(sample[i - 1]!, sample[i]!);
  for (let i = 0; i < 2500 && sameSourcePairs.length > 0; i++) {
    const [a, b] = pick(sameSourcePairs);
    add(a, b);
  }
  while (pairs.size < 11_000) add(pick(all), pick(all));

  const list = [...pairs.values()];
  const lines = list.map(([a, b]) => `${a} ${relation(compareDebianVersions(a, b))} ${b}`);
  const dir = await mkdtemp(join(tmpdir(), 'berth-dpkg-pairs-'));
  try {
    const verdicts = await dpkgVerdicts(lines, dir);
    assert.equal(verdicts.length, lines.length);
    const disagreements = lines.filter((_, i) => verdicts[i] !== '1');
    assert.deepEqual(disagreements.slice(0, 20), [], `dpkg disagrees on ${disagreements.length} of ${lines.length} pairs`);
    assert.ok(lines.length >= 10_000);
    // The comparator is antisymmetric on every pair, too.
    for (const [a, b] of list) assert.equal(compareDebianVersions(a, b), -compareDebianVersions(b, a) || 0, `${a} vs ${b}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
