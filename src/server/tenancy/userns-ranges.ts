import { RANGE_SIZE, type IdRange } from '../../agent/userns/id-range.js';

/**
 * The next tenant's user-namespace ID range: RANGE_SIZE ids starting above every range
 * handed out so far and at or above `base`. Ranges of removed tenants are never handed out
 * again (allocation only moves up): a new tenant must never own files an old one left on
 * the host (volumes, logs, a host's leftovers). 2^32 uids leave room for ~65000 tenants.
 */
export function nextIdRange(base: number, taken: IdRange[]): IdRange {
  const end = taken.reduce((top, r) => Math.max(top, r.base + r.count), base);
  // Aligned, so that a host uid tells its tenant's slot at a glance (uid >> 16).
  const start = Math.ceil(end / RANGE_SIZE) * RANGE_SIZE;
  if (start + RANGE_SIZE > 2 ** 32 - 1) throw new Error('no user-namespace ID range left');
  return { base: start, count: RANGE_SIZE };
}
