import { invalidArgument } from '../../common/errors.js';

/**
 * Docker's health check configuration (Config.Healthcheck; durations in nanoseconds) and the
 * rules dockerd applies to it: the user's fields override the image's field by field, Test
 * ["NONE"] turns the check off, zero durations mean the defaults below.
 */
export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** Docker's health state (State.Health). */
export interface HealthState {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthLogEntry[];
}

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface HealthLogEntry {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

const NS_PER_MS = 1_000_000;
export const DEFAULT_INTERVAL_NS = 30_000 * NS_PER_MS;
export const DEFAULT_TIMEOUT_NS = 30_000 * NS_PER_MS;
export const DEFAULT_RETRIES = 3;
const MINIMUM_NS = NS_PER_MS;

/** The user's check merged over the image's, field by field (dockerd's merge), validated. */
export function mergeHealthcheck(userRaw: unknown, image: HealthConfig | undefined): HealthConfig | undefined {
  const user = parseHealthcheck(userRaw);
  if (!user) return image ? { ...image } : undefined;
  const merged: HealthConfig = { ...user };
  if (image) {
    if (!merged.Test || merged.Test.length === 0) merged.Test = image.Test;
    if (!merged.Interval) merged.Interval = image.Interval;
    if (!merged.Timeout) merged.Timeout = image.Timeout;
    if (!merged.StartPeriod) merged.StartPeriod = image.StartPeriod;
    if (!merged.StartInterval) merged.StartInterval = image.StartInterval;
    if (!merged.Retries) merged.Retries = image.Retries;
  }
  for (const key of Object.keys(merged) as (keyof HealthConfig)[]) if (merged[key] === undefined) delete merged[key];
  return merged;
}

/** `{ Healthcheck }` for Config, or nothing when there is no check at all. */
export function healthcheckField(check: HealthConfig | undefined): { Healthcheck?: HealthConfig } {
  return check ? { Healthcheck: check } : {};
}

function parseHealthcheck(raw: unknown): HealthConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidArgument('invalid Healthcheck: must be an object');
  const r = raw as Record<string, unknown>;
  const check: HealthConfig = {};
  if (r.Test !== undefined && r.Test !== null) {
    if (!Array.isArray(r.Test) || r.Test.some((t) => typeof t !== 'string')) throw invalidArgument('invalid Healthcheck.Test: must be a list of strings');
    check.Test = r.Test as string[];
  }
  const duration = (key: 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval'): void => {
    const value = r[key];
    if (value === undefined || value === null || value === 0) return;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidArgument(`invalid Healthcheck.${key}: must be a number`);
    if (value < MINIMUM_NS) throw invalidArgument(`${key} in Healthcheck cannot be less than 1ms`);
    check[key] = value;
  };
  duration('Interval');
  duration('Timeout');
  duration('StartPeriod');
  duration('StartInterval');
  if (r.Retries !== undefined && r.Retries !== null) {
    if (typeof r.Retries !== 'number' || !Number.isInteger(r.Retries)) throw invalidArgument('invalid Healthcheck.Retries: must be an integer');
    if (r.Retries < 0) throw invalidArgument('Retries in Healthcheck cannot be negative');
    if (r.Retries > 0) check.Retries = r.Retries;
  }
  const kind = check.Test?.[0];
  if (kind !== undefined && !['NONE', 'CMD', 'CMD-SHELL'].includes(kind)) throw invalidArgument(`unknown health check type: ${kind}`);
  return check;
}

/** Whether the container has a check that runs (a Test other than NONE). */
export function isEnabled(check: HealthConfig | undefined): check is HealthConfig & { Test: string[] } {
  return !!check?.Test && check.Test.length > 0 && check.Test[0] !== 'NONE';
}

/** The probe's argv: CMD runs its arguments, CMD-SHELL runs its string with the shell. */
export function probeCommand(check: HealthConfig & { Test: string[] }, shell: string[] = ['/bin/sh', '-c']): string[] {
  const [kind, ...rest] = check.Test;
  if (kind === 'CMD-SHELL') return [...shell, rest.join(' ')];
  return rest;
}

/** State.Health when the container starts: "starting" with no failing streak, the log kept (dockerd). */
export function healthOnStart(check: HealthConfig | undefined, previous: HealthState | undefined): HealthState | undefined {
  if (!isEnabled(check)) return undefined;
  return { Status: 'starting', FailingStreak: 0, Log: previous?.Log ?? [] };
}

/** Go's time.Duration.String() for the durations health checks use ("30s", "1m30s", "500ms"). */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  if (ns < 1_000_000_000) {
    if (ns % NS_PER_MS === 0) return `${ns / NS_PER_MS}ms`;
    return `${trimFloat(ns / NS_PER_MS)}ms`;
  }
  let seconds = ns / 1e9;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  const s = `${trimFloat(seconds)}s`;
  if (hours > 0) return `${hours}h${minutes}m${s}`;
  if (minutes > 0) return `${minutes}m${s}`;
  return s;
}

function trimFloat(n: number): string {
  return Number(n.toFixed(9)).toString();
}
