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
