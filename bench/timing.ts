/** Wall-clock timing and order statistics the benchmarks share. */

/** Milliseconds `fn` takes, wall clock. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const began = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - began) / 1e6;
}

/** The q-quantile of `values` by the nearest-rank method. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

/** The middle value (the upper one of an even count); NaN for none. */
export function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
}
