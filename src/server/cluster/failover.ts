import { OPERATOR_TENANT, type RequestContext } from '../../common/context.js';
import { isKind } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { runLimited } from '../../common/run-limited.js';
import type { HostInfo } from '../scheduler/types.js';
import type { ClusterHost } from './agent-hub.js';
import { ContainerPlacer } from './front/container-placer.js';
import type { FrontDeps } from './front/deps.js';
import { survivesHostLoss } from './front/placement-request.js';
import { readAll } from './front/proxy.js';
import type { Placement } from './placements.js';

/**
 * Keeps the scheduler's view of hosts true to the hub's, and keeps every container running
 * on exactly the host its placement names.
 *
 * - Host down (heartbeats stopped, or removed): its containers with a restart policy
 *   (always, unless-stopped, on-failure) are placed again on other hosts, same id and name,
 *   and started unless the tenant had stopped them. Others stay recorded on the down host.
 * - Host up (first connection, or back after a failure): before the scheduler may place
 *   anything there, the host is **fenced**: every container on it whose placement names
 *   another host (or no placement at all) is stopped and removed, so no container runs twice;
 *   placements it holds that were left half done by a control plane crash are settled.
 * - Drain: the host is cordoned (by the caller); every container moves elsewhere (restart
 *   policy ones started there, others created stopped), then the host is empty.
 *
 * The scheduler sees a host as healthy only while it is up *and* fenced.
 */
export class Failover {
  /** Hosts whose containers have been fenced since they last came up. */
  private readonly fenced = new Set<string>();
  /** Hosts with a failover pass running or scheduled (one at a time per host). */
  private readonly failingOver = new Map<string, Promise<void>>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly log: Logger;
  private closed = false;
  private readonly placer: ContainerPlacer;
  private readonly listeners: [string, (host: ClusterHost) => void][] = [];

  constructor(
    private readonly deps: FrontDeps,
    placer: ContainerPlacer,
    private readonly options: {
      retryMs?: number;
      concurrency?: number;
      autoRemoveSweepMs?: number;
      /**
       * Whether this server leads the control plane (cluster/ha/leadership.ts). Only the
       * leader fences, fails over and sweeps; the others keep the scheduler's books. Default:
       * always (one server on SQLite).
       */
      leads?: () => boolean;
      /**
       * With several servers, a placement still 'creating' may be another live server's create
       * in flight: fencing leaves it alone until it is this old (ms). Default 0 (one server).
       */
      creatingGraceMs?: number;
    } = {},
  ) {
    this.placer = placer;
    this.log = deps.logger.child({ component: 'failover' });
  }

  /**
   * Feeds the scheduler every known host and every recorded placement, then follows the
   * hub. Hosts already up are fenced at once; hosts not up have their containers moved.
   */
  async start(): Promise<void> {
    const { hub, scheduler } = this.deps;
    for (const host of hub.hosts()) scheduler.cluster.upsertHost(this.hostInfo(host));
    for (const placement of await this.deps.placements.all()) {
      if (scheduler.cluster.host(placement.value.hostId)) scheduler.cluster.addContainer(ContainerPlacer.scheduled(placement.tenant, placement));
    }
    const on = (event: 'host-up' | 'host-down' | 'host-changed' | 'host-removed', listener: (host: ClusterHost) => void): void => {
      hub.on(event, listener);
      this.listeners.push([event, listener]);
    };
    on('host-up', (host) => void this.hostUp(host));
    on('host-down', (host) => void this.hostDown(host));
    on('host-removed', (host) => void this.hostDown(host, true));
    on('host-changed', (host) => scheduler.cluster.upsertHost(this.hostInfo(host)));
    for (const host of hub.hosts()) {
      if (host.state === 'up') void this.hostUp(host);
    }
    // `--rm` containers that exited without anyone waiting (`run -d --rm`) leave placements
    // behind: their hosts removed them. Checked now and then, only those.
    const sweep = setInterval(() => void (this.leads() && this.forgetAutoRemoved()), this.options.autoRemoveSweepMs ?? 15_000);
    sweep.unref();
    this.retryTimers.add(sweep);
    if (this.leads()) await this.failOverUnknownHosts();
  }

  /** Placements on hosts the hub does not know (removed while the control plane was down). */
  private async failOverUnknownHosts(): Promise<void> {
    const known = new Set(this.deps.hub.hosts().map((h) => h.id));
    for (const hostId of new Set((await this.deps.placements.all()).map((p) => p.value.hostId))) {
      if (!known.has(hostId)) void this.failOver(hostId);
    }
  }

  /** How many containers a failover or drain moves at once; each move handles its own failure. */
  private concurrency(): number {
    return this.options.concurrency ?? 4;
  }

  private leads(): boolean {
    return this.options.leads?.() ?? true;
  }

  /**
   * This server was just elected: it takes over what the previous leader may have left half
   * done — hosts up are fenced again (settling placements a dead server left 'creating'), lost
   * hosts are failed over.
   */
  async takeOver(): Promise<void> {
    for (const host of this.deps.hub.hosts()) {
      // Up hosts stay in service while fenced again: the previous leader had fenced them.
      if (host.state === 'up') void this.fence(host).catch((err: unknown) => this.log.warn({ err, host: host.name }, 'fencing at take-over failed'));
      else void this.failOver(host.id);
    }
    await this.failOverUnknownHosts().catch((err: unknown) => this.log.warn({ err }, 'failing over unknown hosts failed'));
    const grace = this.options.creatingGraceMs ?? 0;
    if (grace > 0) {
      // Creates the dead leader left half done are younger than the grace now: look again.
      const timer = setTimeout(() => {
        this.retryTimers.delete(timer);
        if (!this.leads()) return;
        for (const host of this.deps.hub.hosts()) {
          if (host.state === 'up') void this.fence(host).catch((err: unknown) => this.log.warn({ err, host: host.name }, 'fencing after take-over failed'));
        }
      }, grace + 500);
      timer.unref();
      this.retryTimers.add(timer);
    }
  }

  /**
   * Hosts down at start-up are failed over once the caller decides they are not coming back
   * soon (the hub's down timeout after start).
   */
  sweepDownHosts(): void {
    if (!this.leads()) return;
    for (const host of this.deps.hub.hosts()) if (host.state === 'down') void this.failOver(host.id);
  }

  close(): void {
    this.closed = true;
    for (const [event, listener] of this.listeners) this.deps.hub.off(event as 'host-up', listener);
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
  }

  private async forgetAutoRemoved(): Promise<void> {
    try {
      for (const placement of await this.deps.placements.all()) {
        if (this.closed || !placement.value.autoRemove) continue;
        await this.placer.forgetIfGone({ tenant: placement.tenant, requestId: 'auto-remove' }, placement).catch(() => false);
      }
    } catch (err) {
      this.log.warn({ err }, 'checking --rm containers failed');
    }
  }

  /** The scheduler's picture of a host. */
  hostInfo(host: ClusterHost): HostInfo {
    return {
      id: host.id,
      name: host.name,
      labels: host.labels,
      capacity: {
        milliCpus: Math.round(host.capacity.cpus * 1000),
        memoryBytes: host.capacity.memoryBytes,
        diskBytes: host.capacity.diskBytes,
        gpus: host.capacity.devices.filter((d) => d.kind === 'gpu').length,
      },
      healthy: host.state === 'up' && this.fenced.has(host.id),
      cordoned: host.cordoned,
      images: host.imageIds,
    };
  }

  private async hostUp(host: ClusterHost): Promise<void> {
    this.fenced.delete(host.id);
    this.deps.scheduler.cluster.upsertHost(this.hostInfo(host));
    // A failover still moving this host's containers finishes first: its records decide what is stale.
    await this.failingOver.get(host.id);
    if (!this.leads()) {
      // The leader fences hosts; the others trust it and only keep their books.
      this.fenced.add(host.id);
      this.deps.scheduler.cluster.upsertHost(this.hostInfo(host));
      return;
    }
    try {
      await this.fence(host);
      const current = this.deps.hub.host(host.id);
      if (current?.state === 'up') {
        this.fenced.add(host.id);
        this.deps.scheduler.cluster.upsertHost(this.hostInfo(current));
        this.log.info({ host: host.name }, 'host fenced; it takes new containers');
      }
    } catch (err) {
      this.log.error({ err, host: host.name }, 'fencing failed; the host takes no new containers until it succeeds (retrying)');
      this.later(() => {
        const current = this.deps.hub.host(host.id);
        if (current?.state === 'up' && !this.fenced.has(host.id)) void this.hostUp(current);
      });
    }
  }

  private async hostDown(host: ClusterHost, removed = false): Promise<void> {
    this.fenced.delete(host.id);
    if (removed) {
      // Its containers stay accounted nowhere until they are moved.
      this.deps.scheduler.cluster.removeHost(host.id);
    } else this.deps.scheduler.cluster.upsertHost(this.hostInfo(host));
    if (this.leads()) await this.failOver(host.id);
  }

  /** Moves the host's restart-policy containers elsewhere; retried while some cannot move. */
  private failOver(hostId: string): Promise<void> {
    const running = this.failingOver.get(hostId);
    if (running) return running;
    const pass = this.failOverPass(hostId).finally(() => this.failingOver.delete(hostId));
    this.failingOver.set(hostId, pass);
    return pass;
  }

  private async failOverPass(hostId: string): Promise<void> {
    const stranded = (await this.deps.placements.all()).filter((p) => p.value.hostId === hostId && survivesHostLoss(p.value.restartPolicy));
    if (stranded.length === 0) return;
    this.log.warn({ hostId, containers: stranded.length }, 'host lost: placing its restart-policy containers again');
    let failed = 0;
    await runLimited(stranded, this.concurrency(), async (placement) => {
      if (this.closed || this.deps.hub.host(hostId)?.state === 'up') return;
      const ctx: RequestContext = { tenant: placement.tenant, requestId: `failover-${placement.id.slice(0, 12)}` };
      try {
        const to = await this.placer.move(ctx, placement, { start: placement.value.stoppedByUser !== true, avoidHost: hostId });
        this.log.info({ id: placement.id, name: placement.value.name, tenant: placement.tenant, from: hostId, to }, 'container moved off a lost host');
      } catch (err) {
        failed++;
        this.log.warn({ err, id: placement.id, name: placement.value.name, tenant: placement.tenant }, 'container could not be moved off a lost host (retrying)');
        // Still accounted on the lost host, where it was before the attempt.
        this.reaccount(placement);
      }
    });
    if (failed > 0 && this.deps.hub.host(hostId)?.state !== 'up') this.later(() => void this.failOver(hostId));
  }

  /** Runs `retry` after the retry delay, unless the failover is closed by then. */
  private later(retry: () => void): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      if (!this.closed) retry();
    }, this.options.retryMs ?? 5_000);
    timer.unref();
    this.retryTimers.add(timer);
  }

  /** Puts a placement back in the scheduler's books as its record says (after a failed move). */
  private reaccount(placement: Placement & { tenant: string }): void {
    const cluster = this.deps.scheduler.cluster;
    void this.deps.placements.find({ tenant: placement.tenant, requestId: 'failover' }, placement.id).then((current) => {
      if (!current || cluster.host(current.value.hostId) === undefined) return;
      cluster.removeContainer(current.id);
      cluster.addContainer(ContainerPlacer.scheduled(placement.tenant, current));
    });
  }

  /**
   * Makes the host hold exactly what its placements say: stale copies go; records left half
   * done by a crash are settled.
   */
  async fence(host: ClusterHost): Promise<void> {
    const tenants = [OPERATOR_TENANT, ...this.deps.tenants.list().map((t) => t.Name)];
    for (const tenant of tenants) {
      const ctx: RequestContext = { tenant, requestId: `fence-${host.name}` };
      const onHost = await this.deps.hosts.json<{ Id: string; Names?: string[]; State?: string }[]>(ctx, host.id, { method: 'GET', path: '/containers/json?all=1' });
      // Listed after the host answered: a container there (a create or move in flight included)
      // had its placement written before the host was asked, so it is not taken for a stale copy.
      const placements = await this.deps.placements.list(ctx);
      const placementOf = new Map(placements.map((p) => [p.id, p]));
      const present = new Set<string>();
      for (const container of onHost ?? []) {
        present.add(container.Id);
        const placement = placementOf.get(container.Id);
        if (placement && placement.value.hostId === host.id) {
          if (placement.value.phase === 'creating') await this.deps.placements.update(ctx, placement.id, (v) => ({ ...v, phase: 'created' }));
          else if (placement.value.phase === 'moving') await this.placer.finishMove(ctx, host.id, placement.id);
          continue;
        }
        this.log.warn({ host: host.name, tenant, id: container.Id, placedOn: placement?.value.hostId }, 'fencing: removing a stale copy');
        await this.removeFrom(ctx, host.id, container.Id);
      }
      for (const placement of placements) {
        if (placement.value.hostId !== host.id || present.has(placement.id)) continue;
        if (placement.value.phase === 'creating') {
          if (Date.now() - Date.parse(placement.value.createdAt) < (this.options.creatingGraceMs ?? 0)) continue;
          // The control plane died before the host created it; the tenant never got an id.
          await this.deps.placements.remove(ctx, placement.id);
          this.deps.scheduler.cluster.removeContainer(placement.id);
        } else if (placement.value.phase === 'moving') {
          await this.placer.finishMove(ctx, host.id, placement.id);
        } else {
          this.log.warn({ host: host.name, tenant, id: placement.id }, 'a placed container is missing on its host');
        }
      }
    }
  }

  /**
   * Empties a cordoned host: each container is stopped there, created on another host
   * (started when it has a restart policy and was running), and removed from this one.
   */
  async drain(hostId: string): Promise<{ moved: number; failed: number }> {
    const placements = (await this.deps.placements.all()).filter((p) => p.value.hostId === hostId);
    let moved = 0;
    let failed = 0;
    await runLimited(placements, this.concurrency(), async (placement) => {
      const ctx: RequestContext = { tenant: placement.tenant, requestId: `drain-${placement.id.slice(0, 12)}` };
      try {
        const wasRunning = await this.isRunning(ctx, hostId, placement.id);
        if (wasRunning) await this.call(ctx, hostId, 'POST', `/containers/${placement.id}/stop`);
        const start = wasRunning && survivesHostLoss(placement.value.restartPolicy);
        await this.placer.move(ctx, placement, { start, avoidHost: hostId });
        await this.removeFrom(ctx, hostId, placement.id);
        moved++;
      } catch (err) {
        failed++;
        this.log.warn({ err, id: placement.id, tenant: placement.tenant }, 'drain: container could not be moved');
        this.reaccount(placement);
      }
    });
    return { moved, failed };
  }

  private async isRunning(ctx: RequestContext, hostId: string, id: string): Promise<boolean> {
    try {
      const inspect = await this.deps.hosts.json<{ State?: { Running?: boolean } }>(ctx, hostId, { method: 'GET', path: `/containers/${id}/json` });
      return inspect?.State?.Running === true;
    } catch (err) {
      if (isKind(err, 'NotFound')) return false;
      throw err;
    }
  }

  private async removeFrom(ctx: RequestContext, hostId: string, id: string): Promise<void> {
    await this.call(ctx, hostId, 'DELETE', `/containers/${id}?force=1`);
  }

  /** A request whose answer only matters as success (2xx, 304, or 404 for what is gone). */
  private async call(ctx: RequestContext, hostId: string, method: string, path: string): Promise<void> {
    const response = await this.deps.hosts.request(ctx, hostId, { method, path });
    const body = await readAll(response);
    const status = response.statusCode ?? 500;
    if (status < 300 || status === 304 || status === 404) return;
    throw new Error(`${method} ${path} on ${hostId}: ${status} ${body.toString('utf8').slice(0, 300)}`);
  }
}
