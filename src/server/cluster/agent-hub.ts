import type { Duplex } from 'node:stream';

/**
 * The control plane's view of the hosts its agents run on. This file is the contract between
 * the agent side (join, mutual TLS, the tunnel, heartbeats) and the server's Docker API front
 * (placement, proxying): see docs/cluster.md.
 */

/** What a host offers, as its agent measures it. */
export interface HostCapacity {
  cpus: number;
  memoryBytes: number;
  /** Free bytes on the filesystem of the agent's data root. */
  diskBytes: number;
  devices: { kind: string; path: string }[];
}

export interface ClusterHost {
  /** Stable: chosen when the agent joins and kept in its data root. */
  id: string;
  /** The agent's --name (default: the machine's hostname), unique in the cluster. */
  name: string;
  /** Where tenants reach this host's published ports (the agent's --advertise-address). */
  address: string;
  labels: Record<string, string>;
  capacity: HostCapacity;
  /** Up while heartbeats arrive; down once they have stopped for the down timeout. */
  state: 'up' | 'down';
  /** Cordoned hosts keep their containers but take no new ones. */
  cordoned: boolean;
  /** ms since the epoch of the last heartbeat. */
  lastSeen: number;
  /** Ids (sha256:...) of the images the host holds, for image locality in placement. */
  imageIds: string[];
  engineVersion: string;
}

export type HostEvent = 'host-up' | 'host-down' | 'host-changed' | 'host-removed';

export interface AgentHub {
  hosts(): ClusterHost[];
  /** By id or name. */
  host(ref: string): ClusterHost | undefined;
  /**
   * A fresh byte stream to the agent's Docker engine. Speak HTTP/1.1 over it: one request
   * (with `Connection: close`), or one upgrade (attach, exec start) kept open as long as needed.
   * Rejects with a BerthError Unavailable when the host is not connected.
   */
  openStream(hostId: string): Promise<Duplex>;
  on(event: HostEvent, listener: (host: ClusterHost) => void): this;
  off(event: HostEvent, listener: (host: ClusterHost) => void): this;
}

/**
 * The header naming the tenant on whose behalf the control plane calls an agent's engine
 * (absent: the operator). An agent believes it only on streams that arrived through its tunnel
 * to the control plane (see docker-api/upstream-trust.ts), never on a listener of its own.
 */
export const TENANT_HEADER = 'x-berth-tenant';
