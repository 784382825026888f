/**
 * The scheduler's indexes and shortcuts (running allocations, container counts, image holders
 * by host slot, a tenant's containers per slot) must choose exactly what a naive scheduler
 * would: one that keeps nothing but the list of hosts and containers and recomputes every
 * fact for every host. Both run side by side through a random history of host reports,
 * removals, container adds and removes, claims and releases; with every host examined
 * (no sampling), the chosen host must be the same at every step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeImageReference } from '../../../src/server/scheduler/expressions.js';
import { utilizationWith } from '../../../src/server/scheduler/resources.js';
import type { Scheduler } from '../../../src/server/scheduler/scheduler.js';
import type { ContainerRecord, HostInfo, HostView, PlacementRequest, Resources, Strategy } from '../../../src/server/scheduler/types.js';
import { GiB, makeHost, resources, schedulerWith, seededRandom } from '../../support/scheduler-fixtures.js';

const TENANTS = ['acme', 'globex', 'initech'];
const IMAGES = ['redis:7', 'busybox:latest', 'nginx:1'];

/** The reference: every fact recomputed from the lists on every call. Same weights and formulas as docs/scheduler.md. */
class NaiveScheduler {
  hosts: HostInfo[] = [];
  containers: ContainerRecord[] = [];

  choose(request: PlacementRequest, strategy: Strategy): string | undefined {
    let bestId: string | undefined;
    let bestScore = -Infinity;
    for (const host of this.hosts) {
      const mine = this.containers.filter((c) => c.hostId === host.id);
      const allocated = resources();
      for (const c of mine) for (const key of ['milliCpus', 'memoryBytes', 'diskBytes', 'gpus'] as const) allocated[key] += c.resources[key];
      if (!host.healthy || host.cordoned || mine.length >= (host.maxContainers ?? Infinity)) continue;
      const wanted = request.resources;
      const short = (['memoryBytes', 'milliCpus', 'gpus', 'diskBytes'] as const).some(
        (key) => wanted[key] > 0 && allocated[key] + wanted[key] > host.capacity[key],
      );
      if (short) continue;
      const view = { capacity: host.capacity, allocated } as HostView;
      const utilization = utilizationWith(view, wanted);
      const own = mine.filter((c) => c.tenant === request.tenant).length;
      const strategyScore = strategy === 'spread' ? 50 * (1 - utilization) + 50 / (1 + own) : 100 * utilization;
      const holdsImage = host.images.some((i) => normalizeImageReference(i) === normalizeImageReference(request.image));
      const anyHolder = this.hosts.some((h) => h.images.some((i) => normalizeImageReference(i) === normalizeImageReference(request.image)));
      let total = 10 * strategyScore;
      if (anyHolder) total += 2 * (holdsImage ? 100 : 0);
      if (total > bestScore) {
        bestScore = total;
        bestId = host.id;
      }
    }
    return bestId;
  }
}

function randomHost(random: () => number, id: string): HostInfo {
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
  return makeHost(id, {
    capacity: resources({ milliCpus: pick([2000, 4000, 8000]), memoryBytes: pick([4, 8, 16]) * GiB, diskBytes: pick([0, 100 * GiB]), gpus: pick([0, 0, 2]) }),
    healthy: random() > 0.1,
    cordoned: random() < 0.1,
    images: IMAGES.filter(() => random() < 0.4),
    ...(random() < 0.3 ? { maxContainers: 1 + Math.floor(random() * 6) } : {}),
  });
}

function randomResources(random: () => number): Resources {
  return resources({
    milliCpus: random() < 0.7 ? 250 * (1 + Math.floor(random() * 8)) : 0,
    memoryBytes: random() < 0.7 ? (1 + Math.floor(random() * 4)) * 512 * 1024 ** 2 : 0,
    diskBytes: random() < 0.2 ? 10 * GiB : 0,
    gpus: random() < 0.05 ? 1 : 0,
  });
}

for (const strategy of ['spread', 'binpack'] as const) {
  test(`${strategy}: the indexed scheduler chooses what a naive one recomputing everything chooses, through 1,500 random steps`, async () => {
    const random = seededRandom(strategy === 'spread' ? 11 : 12);
    const naive = new NaiveScheduler();
    const hostIds = Array.from({ length: 40 }, (_, i) => `h${i}`);
    naive.hosts = hostIds.map((id) => randomHost(random, id));
    const scheduler: Scheduler = await schedulerWith(naive.hosts, [], {
      strategyFor: () => strategy,
      sampling: { percentageOfHostsToScore: 100, minFeasibleHostsToScore: 100 },
    });
    let sequence = 0;
    let placements = 0;
    let refusals = 0;
    for (let step = 0; step < 1500; step++) {
      const roll = random();
      if (roll < 0.05) {
        // A new report for a host (health, cordon, images, limits change; its containers stay).
        const id = naive.hosts[Math.floor(random() * naive.hosts.length)]!.id;
        const info = randomHost(random, id);
        scheduler.cluster.upsertHost(info);
        naive.hosts = naive.hosts.map((h) => (h.id === id ? info : h));
      } else if (roll < 0.07 && naive.hosts.length > 5) {
        // A host leaves (its slot is freed), and another joins (reusing the slot).
        const gone = naive.hosts[Math.floor(random() * naive.hosts.length)]!;
        scheduler.cluster.removeHost(gone.id);
        naive.hosts = naive.hosts.filter((h) => h !== gone);
        naive.containers = naive.containers.filter((c) => c.hostId !== gone.id);
        const joined = randomHost(random, `h${hostIds.length}`);
        hostIds.push(joined.id);
        scheduler.cluster.upsertHost(joined);
        naive.hosts.push(joined);
        // The cluster's walk order swaps the last host into the gap; the naive list follows it.
        naive.hosts = scheduler.cluster.hosts().map((view) => naive.hosts.find((h) => h.id === view.id)!);
      } else if (roll < 0.25 && naive.containers.length > 0) {
        const gone = naive.containers[Math.floor(random() * naive.containers.length)]!;
        scheduler.cluster.removeContainer(gone.id);
        naive.containers = naive.containers.filter((c) => c !== gone);
      } else {
        const request: PlacementRequest = {
          tenant: TENANTS[Math.floor(random() * TENANTS.length)]!,
          id: `c-${++sequence}-`.padEnd(64, '0'),
          name: `c${sequence}`,
          image: IMAGES[Math.floor(random() * IMAGES.length)]!,
          resources: randomResources(random),
          env: [],
          labels: {},
        };
        const expected = naive.choose(request, strategy);
        let chosen: string;
        try {
          const placement = scheduler.place(request);
          chosen = placement.hostId;
          if (random() < 0.1) placement.release();
          else {
            placement.confirm();
            naive.containers.push({ tenant: request.tenant, id: request.id, name: request.name, hostId: chosen, image: request.image, labels: {}, resources: request.resources });
          }
          placements++;
        } catch (err) {
          refusals++;
          chosen = `refused: ${(err as Error).message}`;
        }
        assert.equal(chosen.startsWith('refused') ? undefined : chosen, expected, `step ${step}: ${JSON.stringify(request.resources)} for ${request.tenant}: ${chosen}`);
      }
    }
    assert.ok(placements > 500 && refusals > 10, `the history exercises both outcomes (${placements} placed, ${refusals} refused)`);
  });
}
