import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../test/support/berth-harness.js';

/**
 * Replaces the part of docs/benchmarks.md between `<!-- NAME: begin -->` and
 * `<!-- NAME: end -->` with `section` (appending both markers when absent), so each benchmark
 * owns its own block and a run rewrites only its figures.
 */
export async function writeBenchmarkSection(name: string, section: string): Promise<void> {
  const begin = `<!-- ${name}: begin -->`;
  const end = `<!-- ${name}: end -->`;
  const path = join(REPO_ROOT, 'docs/benchmarks.md');
  let doc = await readFile(path, 'utf8').catch(() => '# Benchmarks\n');
  const from = doc.indexOf(begin);
  const to = doc.indexOf(end);
  const block = `${begin}\n${section}\n${end}`;
  if (from >= 0 && to > from) doc = doc.slice(0, from) + block + doc.slice(to + end.length);
  else doc = `${doc.trimEnd()}\n\n${block}\n`;
  await writeFile(path, doc);
}
