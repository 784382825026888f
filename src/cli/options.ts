import { InvalidArgumentError } from 'commander';
import { invalidArgument } from '../common/errors.js';

/** Parses a whole number of milliseconds, refusing fewer than `minimum`. */
export function milliseconds(minimum: number): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || !(value >= minimum)) throw new InvalidArgumentError(`expected milliseconds, ${minimum} or more`);
    return value;
  };
}

/** --userns-base: the first host uid/gid of tenants' user-namespace ID ranges. */
export function usernsBase(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 65536 || n > 2 ** 32 - 2 * 65536) throw new InvalidArgumentError(`${v} is not a uid between 65536 and 2^32-131072`);
  return n;
}

/** key=value pairs into an object; a pair without '=' is refused with `refusal(pair)`. */
export function keyValuePairs(pairs: string[], refusal: (pair: string) => string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalidArgument(refusal(pair));
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}
