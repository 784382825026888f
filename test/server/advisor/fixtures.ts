/** Loads the hand-made advisor fixtures in test/fixtures/advisor/ (they mirror the real formats). */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/advisor/', import.meta.url));

export async function loadFixture(name: string): Promise<unknown> {
  return JSON.parse(await readFile(`${FIXTURES}${name}`, 'utf8')) as unknown;
}
