/**
 * Records the network service keeps in the Store.
 *
 * - network (kind "network"): one Docker network. Bridge networks own a Linux bridge named
 *   `bridgeName`; the predefined "host" and "none" networks own nothing. Immutable after
 *   create except for nothing: Docker networks cannot be changed, only removed.
 * - endpoint (kind "endpoint"): a container's membership in a network, created with the
 *   container (or by `network connect`) and deleted with it (or by `disconnect`). It holds
 *   what the user asked for (aliases, a static address); the address in use lives in the
 *   sandbox while the container runs, as under dockerd.
 * - sandbox (kind "sandbox", id = container id): the network side of one run of a
 *   bridge-mode container: its namespace file, its interfaces with their addresses and host
 *   veth names, and its published ports. Written before the host resources are made (so a
 *   crash leaves an owner for reconcile to clean), deleted after they are gone.
 */

export interface IpamPool {
  Subnet: string;
  Gateway: string;
  IPRange?: string;
}

export interface NetworkRecord {
  id: string;
  name: string;
  driver: 'bridge' | 'host' | 'null';
  created: string;
  internal: boolean;
  attachable: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
  ipam: { Driver: string; Config: IpamPool[]; Options: Record<string, string> | null };
  /** Linux bridge name (bridge driver only). */
  bridgeName?: string;
  /** The default "bridge" network: no DNS by name, like dockerd's docker0. */
  isDefaultBridge?: boolean;
}

export interface EndpointRecord {
  id: string; // EndpointID, 64 hex
  containerId: string;
  networkId: string;
  aliases: string[];
  /** --ip */
  ipv4Address?: string;
  /** Connection order, to number interfaces eth0, eth1, ... as dockerd does. */
  order: number;
}

export interface SandboxInterface {
  networkId: string;
  endpointId: string;
  ifName: string;
  hostVeth: string;
  ip: string;
  prefixLen: number;
  gateway: string;
  mac: string;
  /** Names the embedded DNS answers with this address (user-defined networks only). */
  dnsNames: string[];
}

export interface PortMapping {
  proto: 'tcp' | 'udp';
  containerPort: number;
  hostIp: string;
  hostPort: number;
}

export interface SandboxRecord {
  id: string; // container id
  /** The container's name at start, for network inspect and DNS PTR answers. */
  containerName: string;
  netnsPath: string;
  interfaces: SandboxInterface[];
  ports: PortMapping[];
}

export const NETWORK_KIND = 'network';
export const ENDPOINT_KIND = 'endpoint';
export const SANDBOX_KIND = 'sandbox';
