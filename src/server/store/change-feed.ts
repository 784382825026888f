import type { StoreChange, StoreWatch } from './store.js';

type Listener = (change: StoreChange<unknown>) => void;

/**
 * In-process fan-out of a store's applied writes to its watchers, per kind. Listeners run on
 * a later microtask, in publish order, so a watcher cannot run inside (or fail) the write
 * that triggered it.
 */
export class ChangeFeed {
  private readonly listeners = new Map<string, Set<Listener>>();

  publish(change: StoreChange<unknown>): void {
    for (const listener of this.listeners.get(change.kind) ?? []) queueMicrotask(() => listener(change));
  }

  subscribe<T>(kind: string, onChange: (change: StoreChange<T>) => void): StoreWatch {
    const listener = onChange as Listener;
    const set = this.listeners.get(kind) ?? new Set<Listener>();
    set.add(listener);
    this.listeners.set(kind, set);
    return {
      close: async () => {
        set.delete(listener);
      },
    };
  }
}
