/** Builders for scheduler tests and the scheduler benchmark: hosts, containers and requests with defaults. */
import { createHash } from 'node:crypto';
import { Scheduler, type SchedulerOptions } from '../../src/server/scheduler/scheduler.js';
import type { ContainerRecord, HostInfo, PlacementRequest, Resources } from '../../src/server/scheduler/types.js';

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export function resources(overrides: Partial<Resources> = {}): Resources {
  return { milliCpus: 0, memoryBytes: 0, diskBytes: 0, gpus: 0, ...overrides };
}

export function makeHost(id: string, overrides: Partial<HostInfo> = {}): HostInfo {
  return {
    id,
    name: id,
    labels: {},
    capacity: resources({ milliCpus: 8000, memoryBytes: 16 * GiB, diskBytes: 500 * GiB }),
    healthy: true,
    cordoned: false,
    images: [],
    ...overrides,
  };
}

let sequence = 0;

/** A container id as Berth makes them: 64 hex characters, unique within the process. */
export function containerId(): string {
  sequence++;
  return createHash('sha256').update(`container ${sequence}`).digest('hex');
}

export function makeContainer(hostId: string, overrides: Partial<ContainerRecord> = {}): ContainerRecord {
  const id = overrides.id ?? containerId();
  return { tenant: 'acme', id, name: `c-${id.slice(0, 8)}`, hostId, image: 'busybox:latest', labels: {}, resources: resources(), ...overrides };
}

export function makeRequest(overrides: Partial<PlacementRequest> = {}): PlacementRequest {
  const id = overrides.id ?? containerId();
  return { tenant: 'acme', id, name: `new-${id.slice(-8)}`, image: 'busybox:latest', resources: resources(), env: [], labels: {}, ...overrides };
}

/** A deterministic pseudo-random sequence (mulberry32), so simulated clusters are the same every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A scheduler over `hosts`, already accounting `containers` as placed. */
export async function schedulerWith(hosts: HostInfo[], containers: ContainerRecord[] = [], options: SchedulerOptions = {}): Promise<Scheduler> {
  const scheduler = new Scheduler(options);
  for (const host of hosts) scheduler.cluster.upsertHost(host);
  for (const container of containers) scheduler.cluster.addContainer(container);
  return scheduler;
}

/** The host a request lands on (confirmed), or the error message it got. */
export function placeOn(scheduler: Scheduler, request: PlacementRequest): string {
  try {
    const placement = scheduler.place(request);
    placement.confirm();
    return placement.hostId;
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

/**
 * The hosts a request could go to: tries it on each host alone (adding `constraint:node==<id>`)
 * and releases every claim, so the cluster is left as it was.
 */
export function feasibleHosts(scheduler: Scheduler, request: PlacementRequest): string[] {
  const fits: string[] = [];
  for (const host of scheduler.cluster.hosts()) {
    try {
      const placement = scheduler.place({ ...request, env: [...request.env, `constraint:node==${host.id}`] });
      placement.release();
      fits.push(host.id);
    } catch (err) {
      if (!/^no host fits/.test((err as Error).message)) throw err;
    }
  }
  return fits.sort();
}
