import { formatBytes, formatCpus } from '../resources.js';
import { StateKey, type CycleState, type FilterPlugin, type HostView, type PlacementRequest, type Rejection, type Resources } from '../types.js';

/**
 * Refuses hosts whose free capacity (capacity minus placed and assumed containers) is less
 * than the request, resource by resource, and hosts at their container limit. A request of
 * zero for a resource never refuses.
 */
export const Name = 'capacity';

export const REASON_CONTAINER_LIMIT: Rejection = Object.freeze({ plugin: Name, phrase: 'at their container limit' });

type Resource = keyof Resources;

/** Checked in this order; the first short resource is the host's reason. */
const RESOURCES: readonly Resource[] = ['memoryBytes', 'milliCpus', 'gpus', 'diskBytes'];

const DESCRIBE: Record<Resource, (amount: number) => string> = {
  memoryBytes: (n) => `without enough memory (need ${formatBytes(n)})`,
  milliCpus: (n) => `without enough CPU (need ${formatCpus(n)})`,
  gpus: (n) => `without enough GPUs (need ${n})`,
  diskBytes: (n) => `without enough disk (need ${formatBytes(n)})`,
};

/** The phrase of a shortage of `resource` for this request, built once per placement. */
const REASON_KEYS = Object.fromEntries(RESOURCES.map((r) => [r, new StateKey<Rejection>(`${Name}/${r}`)])) as Record<Resource, StateKey<Rejection>>;

function reason(state: CycleState, resource: Resource, amount: number): Rejection {
  const key = REASON_KEYS[resource];
  let rejection = state.read(key);
  if (!rejection) {
    rejection = { plugin: Name, phrase: DESCRIBE[resource](amount) };
    state.write(key, rejection);
  }
  return rejection;
}

export class Capacity implements FilterPlugin {
  readonly name = Name;
  filter(state: CycleState, request: PlacementRequest, host: HostView): Rejection | null {
    const wanted = request.resources;
    const { capacity } = host;
    const { allocated } = host;
    if (host.containerCount >= host.maxContainers) return REASON_CONTAINER_LIMIT;
    for (const resource of RESOURCES) {
      const amount = wanted[resource];
      if (amount > 0 && allocated[resource] + amount > capacity[resource]) return reason(state, resource, amount);
    }
    return null;
  }
}

export function create(): Capacity {
  return new Capacity();
}
