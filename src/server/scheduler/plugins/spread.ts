import { utilizationWith } from '../resources.js';
import { StateKey, type ClusterView, type CycleState, type HostView, type PlacementRequest, type PreFilterPlugin, type ScorePlugin, type TenantView } from '../types.js';

/**
 * The default strategy: prefer the host with the most free capacity and the fewest of the
 * tenant's own containers, so a tenant's containers land on different hosts (Triton's default
 * spread of an account's containers) and load stays even. Half of the score each.
 */
export const Name = 'spread';

const TENANT = new StateKey<TenantView>(`${Name}/tenant`);

export class Spread implements PreFilterPlugin, ScorePlugin {
  readonly name = Name;

  preFilter(state: CycleState, request: PlacementRequest, cluster: ClusterView): undefined {
    state.write(TENANT, cluster.tenant(request.tenant));
    return undefined;
  }

  score(state: CycleState, request: PlacementRequest, host: HostView): number {
    const tenant = state.read(TENANT)!;
    const free = 1 - utilizationWith(host, request.resources);
    const own = tenant.containersOn(host.slot);
    return 50 * free + 50 / (1 + own);
  }
}

export function create(): Spread {
  return new Spread();
}
