import { StateKey, type ClusterView, type CycleState, type HostView, type PlacementRequest, type PreFilterPlugin, type PreFilterResult, type ScorePlugin } from '../types.js';

/** Prefer hosts that already hold the request's image: the container starts without a pull. */
export const Name = 'image-locality';

/** Holders by host slot: the score runs for every feasible host, and an array read is cheaper than a set lookup by id. */
const HOLDERS = new StateKey<Readonly<Uint8Array>>(`${Name}/holders`);

export class ImageLocality implements PreFilterPlugin, ScorePlugin {
  readonly name = Name;

  preFilter(state: CycleState, request: PlacementRequest, cluster: ClusterView): PreFilterResult {
    const holders = cluster.hostSlotsWithImage(request.image);
    if (!holders) return { skipScore: true };
    state.write(HOLDERS, holders);
    return {};
  }

  score(state: CycleState, _request: PlacementRequest, host: HostView): number {
    return state.read(HOLDERS)![host.slot] === 1 ? 100 : 0;
  }
}

export function create(): ImageLocality {
  return new ImageLocality();
}
