import type { IdRange } from '../../agent/userns/id-range.js';
import type { RequestContext } from '../../common/context.js';
import type { ContainerRecord } from '../containers/model.js';
import type { ContainerNetworkFacts } from './container-filters.js';

/**
 * What the container service asks of networking, at fixed points of a container's life:
 *
 *   planCreate (validate, nothing made) → attachCreated (endpoint records) →
 *   [ up (before runc create: namespace, veths, addresses, ports, DNS, etc files) →
 *     down (after the exit: all of that undone) ]* → removeContainer (endpoint records).
 *
 * down and removeContainer are idempotent and safe for containers that never had networking.
 */
export interface ContainerNetworking {
  planCreate(ctx: RequestContext, containerName: string, hostConfig: { NetworkMode: string }, networkingConfig: unknown): Promise<NetworkPlan>;
  attachCreated(ctx: RequestContext, containerId: string, plan: NetworkPlan): Promise<void>;
  /** With an ID range (a tenant's container) the namespace is owned by a user namespace of it. */
  up(ctx: RequestContext, record: ContainerRecord, idRange?: IdRange): Promise<{ netnsPath?: string; usernsPath?: string }>;
  down(containerId: string): Promise<void>;
  removeContainer(ctx: RequestContext, containerId: string): Promise<void>;
  /** The container was renamed: its DNS name follows. */
  renamed(ctx: RequestContext, containerId: string, oldName: string, newName: string): Promise<void>;
  /** Per container, the facts the `docker ps` network/publish/expose filters look at. */
  filterFacts(ctx: RequestContext, records: ContainerRecord[]): Promise<Map<string, ContainerNetworkFacts>>;
  /** NetworkSettings of inspect and the Ports/NetworkSettings of a list summary. */
  inspectSettings(ctx: RequestContext, record: ContainerRecord): Promise<Record<string, unknown>>;
  /** Per container id, the Ports/NetworkSettings of its list summary (one store read for all). */
  summarySettings(ctx: RequestContext, records: ContainerRecord[]): Promise<Map<string, ContainerSummaryNetwork>>;
}

export interface ContainerSummaryNetwork {
  Ports: unknown[];
  NetworkSettings: Record<string, unknown>;
}

export interface PlannedEndpoint {
  networkId: string;
  aliases: string[];
  ipv4Address?: string;
}

export interface NetworkPlan {
  endpoints: PlannedEndpoint[];
}
