import type { ClusterHost } from '../agent-hub.js';

/**
 * How the cluster front changes an engine's container views: a container is shown with the
 * host that runs it (inspect's `Node`, as Docker Swarm showed it) and its published ports
 * at that host's address, since "every address" of a host means the address tenants reach
 * it at. Pure functions over the engine's JSON.
 */

/** Swarm's `Node` object in container inspect. */
export interface NodeView {
  ID: string;
  IP: string;
  Addr: string;
  Name: string;
  Cpus: number;
  Memory: number;
  Labels: Record<string, string>;
}

export function nodeView(host: ClusterHost): NodeView {
  return {
    ID: host.id,
    IP: host.address,
    Addr: `${host.address}:2376`,
    Name: host.name,
    Cpus: host.capacity.cpus,
    Memory: host.capacity.memoryBytes,
    Labels: { ...host.labels },
  };
}

const EVERY_ADDRESS = new Set(['', '0.0.0.0', '::']);

type PortBinding = { HostIp?: string; HostPort?: string };

/** Bindings on every address become bindings on the host's address (v4 and v6 twins merge). */
function rebind(bindings: PortBinding[] | null, address: string): PortBinding[] | null {
  if (!Array.isArray(bindings)) return bindings;
  const seen = new Set<string>();
  const out: PortBinding[] = [];
  for (const binding of bindings) {
    const hostIp = EVERY_ADDRESS.has(binding.HostIp ?? '') ? address : (binding.HostIp ?? '');
    const key = `${hostIp}|${binding.HostPort ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ ...binding, HostIp: hostIp });
  }
  return out;
}

/** `docker inspect` of a container on `host`. */
export function inspectOnHost(inspect: Record<string, unknown>, host: ClusterHost): Record<string, unknown> {
  const settings = inspect.NetworkSettings as { Ports?: Record<string, PortBinding[] | null> } | undefined;
  let networkSettings = inspect.NetworkSettings;
  if (settings?.Ports && typeof settings.Ports === 'object') {
    const ports: Record<string, PortBinding[] | null> = {};
    for (const [port, bindings] of Object.entries(settings.Ports)) ports[port] = rebind(bindings, host.address);
    networkSettings = { ...settings, Ports: ports };
  }
  return { ...inspect, NetworkSettings: networkSettings, Node: nodeView(host) };
}

type SummaryPort = { IP?: string; PrivatePort?: number; PublicPort?: number; Type?: string };

/** One `docker ps` entry of a container on `host`. */
export function summaryOnHost(summary: Record<string, unknown>, host: ClusterHost): Record<string, unknown> {
  if (!Array.isArray(summary.Ports)) return summary;
  const seen = new Set<string>();
  const ports: SummaryPort[] = [];
  for (const port of summary.Ports as SummaryPort[]) {
    const ip = port.PublicPort !== undefined && EVERY_ADDRESS.has(port.IP ?? '') ? host.address : port.IP;
    const key = `${ip ?? ''}|${port.PrivatePort ?? ''}|${port.PublicPort ?? ''}|${port.Type ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    ports.push(ip === undefined ? { ...port } : { ...port, IP: ip });
  }
  return { ...summary, Ports: ports };
}

/**
 * Merges per-host `docker ps` answers: newest first (the engine's order), then `limit`
 * (applied here too, since each host applied it only to its own containers).
 */
export function mergeSummaries(perHost: Record<string, unknown>[][], limit: number | undefined): Record<string, unknown>[] {
  const all = perHost.flat();
  all.sort((a, b) => Number(b.Created ?? 0) - Number(a.Created ?? 0) || String(a.Id).localeCompare(String(b.Id)));
  return limit !== undefined && limit > 0 ? all.slice(0, limit) : all;
}
