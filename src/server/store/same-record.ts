import type { Stored } from './store.js';

/** Same name, revision and value (as JSON): what a migration must carry over unchanged. */
export function sameRecord(a: Stored<unknown>, b: Stored<unknown>): boolean {
  return a.id === b.id && a.name === b.name && a.revision === b.revision && JSON.stringify(a.value) === JSON.stringify(b.value);
}
