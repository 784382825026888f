import type { RequestContext } from '../../common/context.js';
import { nowRfc3339Nano, parseRfc3339 } from '../../common/human-time.js';
import { newId } from '../../common/ids.js';
import type { Logger } from '../../common/logging.js';
import type { ContainerRuntime, StdioChunk } from '../../agent/runtime/types.js';
import type { DockerEvent, EventPublisher } from '../events/types.js';
import type { ContainerRecord } from '../containers/model.js';
import {
  DEFAULT_INTERVAL_NS,
  DEFAULT_RETRIES,
  DEFAULT_TIMEOUT_NS,
  goDuration,
  isEnabled,
  probeCommand,
  type HealthLogEntry,
  type HealthState,
} from './health-config.js';

/** What the monitor needs from the container service. */
export interface HealthHost {
  lookup(ctx: RequestContext, id: string): Promise<ContainerRecord>;
  /** Writes State.Health of a running container; returns the record written. */
  setHealth(ctx: RequestContext, id: string, update: (health: HealthState | undefined) => HealthState | undefined): Promise<ContainerRecord>;
}

export interface HealthMonitorOptions {
  containers: HealthHost;
  runtime: ContainerRuntime;
  events: EventPublisher;
  logger: Logger;
}

/** The timer of one container's checks; replaced, never reused, when the container starts again. */
interface Checker {
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
}

const MAX_LOG_ENTRIES = 5;
const MAX_OUTPUT_BYTES = 4096;
const NS_PER_MS = 1_000_000;

/**
 * Runs Docker health checks: for each running container with a check, a probe every
 * Interval (the first one Interval after the start), executed in the container through the
 * runtime's exec, ended after Timeout. Results follow dockerd's rules: success → healthy and
 * streak 0; failure → streak + 1 (not counted inside StartPeriod while still starting), and
 * unhealthy once the streak reaches Retries. The last 5 results are kept in State.Health.Log;
 * a change of status publishes `health_status: <status>`.
 *
 * Lifecycle: started by the container's `start` event, stopped by `die`/`destroy` (observe()
 * sees the container service's events); resumed for running containers by resume() after a
 * Berth restart. One checker per container; starting one replaces any earlier one.
 */
export class HealthMonitor {
  private readonly checkers = new Map<string, Checker>();
  private closed = false;

  constructor(private readonly opts: HealthMonitorOptions) {}

  /** Wraps the container service's event publisher so that container starts and stops drive the checkers. */
  observe(inner: EventPublisher): EventPublisher {
    return {
      publish: (ctx, event) => {
        inner.publish(ctx, event);
        if (event.Type === 'container') this.onContainerEvent(ctx, event);
      },
    };
  }

  private onContainerEvent(ctx: RequestContext, event: Pick<DockerEvent, 'Action' | 'Actor'>): void {
    const id = event.Actor.ID;
    if (event.Action === 'start') void this.startChecking(ctx, id);
    else if (event.Action === 'die' || event.Action === 'destroy') this.stop(id);
  }

  /** After a Berth restart: checks of running containers go on where they were. */
  async resume(records: { tenant: string; record: ContainerRecord }[]): Promise<void> {
    for (const { tenant, record } of records) {
      if (record.state.Running && isEnabled(record.config.Healthcheck)) {
        await this.startChecking({ tenant, requestId: 'health-resume' }, record.id);
      }
    }
  }

  stop(id: string): void {
    const checker = this.checkers.get(id);
    if (!checker) return;
    checker.stopped = true;
    if (checker.timer) clearTimeout(checker.timer);
    this.checkers.delete(id);
  }

  close(): void {
    this.closed = true;
    for (const id of [...this.checkers.keys()]) this.stop(id);
  }

  private async startChecking(ctx: RequestContext, id: string): Promise<void> {
    this.stop(id);
    if (this.closed) return;
    const record = await this.opts.containers.lookup(ctx, id).catch(() => undefined);
    const check = record?.config.Healthcheck;
    if (!record || !isEnabled(check)) return;
    const checker: Checker = { timer: undefined, stopped: false };
    this.checkers.set(id, checker);
    const intervalMs = (check.Interval || DEFAULT_INTERVAL_NS) / NS_PER_MS;
    const schedule = (): void => {
      if (checker.stopped) return;
      checker.timer = setTimeout(() => {
        void this.probeOnce(ctx, id, checker)
          .catch((err: unknown) => this.opts.logger.warn({ err, id }, 'health check failed to run'))
          .finally(schedule);
      }, intervalMs);
      checker.timer.unref();
    };
    schedule();
  }

  private async probeOnce(ctx: RequestContext, id: string, checker: Checker): Promise<void> {
    const record = await this.opts.containers.lookup(ctx, id);
    const check = record.config.Healthcheck;
    if (!record.state.Running || record.state.Paused || !isEnabled(check)) return;
    const timeoutNs = check.Timeout || DEFAULT_TIMEOUT_NS;
    const result = await this.runProbe(ctx, record, probeCommand(check), timeoutNs);
    // Stopped (or stopped and started again) while the probe ran: the result belongs to a past run.
    if (this.checkers.get(id) !== checker) return;
    const retries = check.Retries || DEFAULT_RETRIES;
    const startPeriodMs = (check.StartPeriod ?? 0) / NS_PER_MS;
    let before: string | undefined;
    const updated = await this.opts.containers.setHealth(ctx, id, (health) => {
      const current: HealthState = health ?? { Status: 'starting', FailingStreak: 0, Log: [] };
      before = current.Status;
      const next: HealthState = { ...current, Log: [...current.Log, result].slice(-MAX_LOG_ENTRIES) };
      if (result.ExitCode === 0) {
        next.FailingStreak = 0;
        next.Status = 'healthy';
      } else {
        const withinStartPeriod = current.Status === 'starting' && parseRfc3339(result.Start) - parseRfc3339(record.state.StartedAt) < startPeriodMs;
        if (!withinStartPeriod) {
          next.FailingStreak = current.FailingStreak + 1;
          if (next.FailingStreak >= retries) next.Status = 'unhealthy';
        }
      }
      return next;
    });
    const after = updated.state.Health?.Status;
    if (after && after !== before) {
      this.opts.events.publish(ctx, {
        Type: 'container',
        Action: `health_status: ${after}`,
        Actor: { ID: id, Attributes: { ...updated.config.Labels, image: updated.image, name: updated.name } },
      });
    }
  }

  /** One probe: its exit code and first 4 KiB of output, or -1 with dockerd's message on timeout. */
  private async runProbe(ctx: RequestContext, record: ContainerRecord, args: string[], timeoutNs: number): Promise<HealthLogEntry> {
    // dockerd runs probes as execs and reports them as such.
    const execId = newId();
    const publish = (action: string, extra: Record<string, string> = {}): void =>
      this.opts.events.publish(ctx, {
        Type: 'container',
        Action: action,
        Actor: { ID: record.id, Attributes: { ...record.config.Labels, execID: execId, image: record.image, name: record.name, ...extra } },
      });
    publish(`exec_create: ${args.join(' ')}`);
    const start = nowRfc3339Nano();
    const output: Buffer[] = [];
    let size = 0;
    let exec;
    try {
      exec = await this.opts.runtime.exec(record.id, {
        args,
        env: record.config.Env.filter((e) => e.includes('=')),
        ...(record.config.WorkingDir ? { cwd: record.config.WorkingDir } : {}),
        ...(record.config.User ? { user: record.config.User } : {}),
        tty: false,
        stdin: false,
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const exitCode = /not found|no such file/i.test(message) ? 127 : 126;
      publish('exec_die', { exitCode: String(exitCode) });
      return { Start: start, End: nowRfc3339Nano(), ExitCode: exitCode, Output: message };
    }
    publish(`exec_start: ${args.join(' ')}`);
    exec.stdio.output.on('data', (chunk: StdioChunk) => {
      if (size >= MAX_OUTPUT_BYTES) return;
      const part = chunk.data.subarray(0, MAX_OUTPUT_BYTES - size);
      output.push(part);
      size += part.length;
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutNs / NS_PER_MS);
    });
    const outcome = await Promise.race([exec.exited, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      // Newer dockerd kills a probe that ran out of time rather than let probes pile up.
      try {
        process.kill(exec.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      exec.stdio.close();
      publish('exec_die', { exitCode: '137' });
      return { Start: start, End: nowRfc3339Nano(), ExitCode: -1, Output: `Health check exceeded timeout (${goDuration(timeoutNs)})` };
    }
    // Let the last output drain after the exit.
    await new Promise<void>((resolve) => {
      if (exec.stdio.output.readableEnded) resolve();
      exec.stdio.output.once('end', resolve);
      setTimeout(resolve, 200).unref();
    });
    exec.stdio.close();
    publish('exec_die', { exitCode: String(outcome) });
    return { Start: start, End: nowRfc3339Nano(), ExitCode: outcome, Output: Buffer.concat(output).toString('utf8') };
  }
}
