/**
 * Shares one run of async work among every caller asking for the same key while it is in
 * flight (a keyed single-flight). The first caller starts `work`; later callers with the same
 * key get the same promise until it settles, after which the key is free again. Used so that
 * concurrent pulls of one image download each blob once.
 */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  /** `joined` is true when the caller shares work another caller started. */
  run(key: string, work: () => Promise<T>): { promise: Promise<T>; joined: boolean } {
    const existing = this.inFlight.get(key);
    if (existing !== undefined) return { promise: existing, joined: true };
    const promise = Promise.resolve()
      .then(work)
      .finally(() => {
        if (this.inFlight.get(key) === promise) this.inFlight.delete(key);
      });
    this.inFlight.set(key, promise);
    return { promise, joined: false };
  }

  has(key: string): boolean {
    return this.inFlight.has(key);
  }
}

/**
 * Wraps `work` so that callers within `maxAgeMs` of a run's start share that run: its promise
 * while in flight (however long it takes), then its result until it is `maxAgeMs` old. A
 * failure is not kept once it settles: the next caller runs `work` again. Used so that every
 * tunnel of an agent (one per HA server) reports one measurement of the host instead of each
 * measuring it on its own timer.
 */
export function sharedRecent<T>(work: () => Promise<T>, maxAgeMs: number, now: () => number = Date.now): () => Promise<T> {
  let latest: { promise: Promise<T>; startedAt: number; settled: boolean } | undefined;
  return () => {
    if (latest && (!latest.settled || now() - latest.startedAt < maxAgeMs)) return latest.promise;
    const run = { promise: Promise.resolve().then(work), startedAt: now(), settled: false };
    latest = run;
    run.promise.then(
      () => (run.settled = true),
      () => {
        run.settled = true;
        if (latest === run) latest = undefined;
      },
    );
    return run.promise;
  };
}
