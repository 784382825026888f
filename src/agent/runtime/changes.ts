import { watch, type FSWatcher } from 'node:fs';

/**
 * "Something may have changed": a file-system watch plus a polling interval, for loops that
 * wait on files another process writes (conmon's exit file, a growing log).
 *
 * A change that happens while nobody waits is remembered, so the next `wait` returns at once;
 * fs.watch events can otherwise fall between a check and the start of the wait. Polling covers
 * file systems and events inotify misses. The watcher never keeps the process alive by itself.
 */
export class ChangeSignal {
  private dirty = false;
  private wake: (() => void) | undefined;
  private readonly watcher: FSWatcher | undefined;

  /** Watches `path` (a file or directory) when given and watchable. */
  constructor(path?: string) {
    if (path === undefined) return;
    try {
      this.watcher = watch(path, { persistent: false });
      this.watcher.on('change', () => this.notify());
      this.watcher.on('error', () => undefined);
    } catch {
      this.watcher = undefined; // polling alone still works
    }
  }

  /** Also wake waiters when `promise` settles (registered once, not per wait). */
  wakeOn(promise: Promise<unknown>): this {
    promise.then(
      () => this.notify(),
      () => this.notify(),
    );
    return this;
  }

  notify(): void {
    this.dirty = true;
    this.wake?.();
  }

  /** Resolves after a change (possibly one already seen) or after `ms`. */
  async wait(ms: number): Promise<void> {
    if (!this.dirty) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.wake = done;
      });
      this.wake = undefined;
    }
    this.dirty = false;
  }

  close(): void {
    this.watcher?.close();
    this.wake?.();
  }
}
