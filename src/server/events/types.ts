import type { RequestContext } from '../../common/context.js';

/** A Docker event as /events streams it. */
export interface DockerEvent {
  Type: 'container' | 'image' | 'volume' | 'network' | 'daemon' | 'plugin' | 'service' | 'node' | 'secret' | 'config';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local' | 'swarm';
  time: number;
  timeNano: number;
  // Deprecated fields older clients still read; dockerd fills them for containers and images.
  status?: string;
  id?: string;
  from?: string;
}

/**
 * Events are recorded per tenant and kept for a bounded window so `--since` can replay them;
 * subscribers see only their tenant's events.
 */
export interface EventPublisher {
  publish(ctx: RequestContext, event: Pick<DockerEvent, 'Type' | 'Action' | 'Actor'>): void;
}
