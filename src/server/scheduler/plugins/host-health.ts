import type { FilterPlugin, HostView, Rejection } from '../types.js';

/** Refuses hosts that are down (heartbeats stopped) or cordoned by the operator. */
export const Name = 'host-health';

export const REASON_DOWN: Rejection = Object.freeze({ plugin: Name, phrase: 'down' });
export const REASON_CORDONED: Rejection = Object.freeze({ plugin: Name, phrase: 'cordoned' });

export class HostHealth implements FilterPlugin {
  readonly name = Name;
  filter(_state: unknown, _request: unknown, host: HostView): Rejection | null {
    if (!host.healthy) return REASON_DOWN;
    if (host.cordoned) return REASON_CORDONED;
    return null;
  }
}

export function create(): HostHealth {
  return new HostHealth();
}
