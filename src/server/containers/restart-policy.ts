import type { RestartPolicy } from './model.js';

/**
 * Docker's restart rules, kept pure so they are table-tested.
 *
 * - always: restart after any exit, unless the user stopped the container.
 * - unless-stopped: the same; the difference shows on daemon start-up, where a container
 *   stopped by the user stays down for both (Berth records manual stops durably).
 * - on-failure[:N]: restart after a non-zero exit, at most N times when N > 0.
 */
export function shouldRestart(
  policy: RestartPolicy,
  exit: { exitCode: number; manuallyStopped: boolean; restartCount: number },
): boolean {
  if (exit.manuallyStopped) return false;
  switch (policy.Name) {
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure':
      return exit.exitCode !== 0 && (policy.MaximumRetryCount <= 0 || exit.restartCount < policy.MaximumRetryCount);
    default:
      return false;
  }
}

const INITIAL_DELAY_MS = 100;
const MAX_DELAY_MS = 60_000;
/** A run longer than this resets the back-off, as dockerd does. */
const RESET_AFTER_MS = 10_000;

/** Delay before the next restart: doubles from 100 ms up to a minute; resets after a long run. */
export function nextRestartDelay(previousDelayMs: number, ranForMs: number): number {
  if (ranForMs >= RESET_AFTER_MS || previousDelayMs <= 0) return INITIAL_DELAY_MS;
  return Math.min(previousDelayMs * 2, MAX_DELAY_MS);
}

export function parseRestartPolicy(value: unknown): RestartPolicy | string {
  if (value === undefined || value === null) return { Name: '', MaximumRetryCount: 0 };
  if (typeof value !== 'object') return 'invalid restart policy';
  const { Name = '', MaximumRetryCount = 0 } = value as { Name?: unknown; MaximumRetryCount?: unknown };
  if (typeof Name !== 'string' || typeof MaximumRetryCount !== 'number') return 'invalid restart policy';
  if (!['', 'no', 'always', 'unless-stopped', 'on-failure'].includes(Name)) {
    return `invalid restart policy: unknown policy '${Name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`;
  }
  if (MaximumRetryCount < 0) return 'invalid restart policy: maximum retry count cannot be negative';
  if (MaximumRetryCount > 0 && Name !== 'on-failure') {
    return `invalid restart policy: maximum retry count can only be used with 'on-failure'`;
  }
  return { Name: Name as RestartPolicy['Name'], MaximumRetryCount };
}
