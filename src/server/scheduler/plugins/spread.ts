import { utilizationWith } from '../resources.js';
import { StateKey, type ClusterView, type CycleState, type HostCounts, type HostView, type PlacementRequest, type PreFilterPlugin, type ScorePlugin } from '../types.js';

/**
 * The default strategy: prefer the host with the most free capacity and the fewest of the
 * tenant's own containers, so a tenant's containers land on different hosts (Triton's default
 * spread of an account's containers) and load stays even. Half of the score each.
 */
export const Name = 'spread';

const TENANT_PER_HOST = new StateKey<HostCounts>(`${Name}/tenant-per-host`);

export class Spread implements PreFilterPlugin, ScorePlugin {
  readonly name = Name;

  preFilter(state: CycleState, request: PlacementRequest, cluster: ClusterView): undefined {
    state.write(TENANT_PER_HOST, cluster.tenant(request.tenant).perHost);
    return undefined;
  }

  score(state: CycleState, request: PlacementRequest, host: HostView): number {
    const tenantPerHost = state.read(TENANT_PER_HOST)!;
    const free = 1 - utilizationWith(host, request.resources);
    const own = tenantPerHost.get(host.id) ?? 0;
    return 50 * free + 50 / (1 + own);
  }
}

export function create(): Spread {
  return new Spread();
}
