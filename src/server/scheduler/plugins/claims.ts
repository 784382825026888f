import type { ClusterState } from '../cluster-state.js';
import type { CycleState, PlacementRequest, Rejection, ReservePlugin } from '../types.js';

/**
 * Reserve: assume the container on the chosen host in the cluster cache, so the next
 * placement (even one that runs while this container is still being created) counts its
 * resources and sees it for affinity. Unreserve forgets the claim; it is a no-op once the
 * claim was confirmed or already forgotten.
 */
export const Name = 'claims';

export class Claims implements ReservePlugin {
  readonly name = Name;
  constructor(private readonly cluster: ClusterState) {}

  reserve(_state: CycleState, request: PlacementRequest, hostId: string): Rejection | null {
    this.cluster.assume({
      tenant: request.tenant,
      id: request.id,
      name: request.name,
      hostId,
      image: request.image,
      labels: request.labels,
      resources: request.resources,
    });
    return null;
  }

  unreserve(_state: CycleState, request: PlacementRequest): void {
    this.cluster.forget(request.id);
  }
}

export function create(cluster: ClusterState): Claims {
  return new Claims(cluster);
}
