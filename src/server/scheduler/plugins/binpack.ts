import { utilizationWith } from '../resources.js';
import type { CycleState, HostView, PlacementRequest, ScorePlugin } from '../types.js';

/**
 * Fill hosts before starting new ones: prefer the host that is fullest once the request is
 * added, leaving whole hosts free for large containers (and to power down). Used with the
 * `from-start` walk, so sampling keeps coming back to the same, fuller hosts.
 */
export const Name = 'binpack';

export class Binpack implements ScorePlugin {
  readonly name = Name;
  score(_state: CycleState, request: PlacementRequest, host: HostView): number {
    return 100 * utilizationWith(host, request.resources);
  }
}

export function create(): Binpack {
  return new Binpack();
}
