import type { ContainerRecord } from '../containers/model.js';
import type { EndpointRecord, NetworkRecord, SandboxInterface, SandboxRecord } from './model.js';

/**
 * NetworkSettings of container inspect and Ports of the container list, shaped as dockerd's
 * API 1.47 answers: per network the endpoint's addresses while the container runs (empty
 * strings when it does not), Aliases as the user gave them, DNSNames as the resolver knows
 * them; the deprecated top-level fields only for the default bridge network.
 */

interface Lookups {
  byId(id: string): NetworkRecord | undefined;
  byName(name: string): NetworkRecord | undefined;
  sandboxId: string;
}

function endpointView(network: NetworkRecord | undefined, endpoint: EndpointRecord | undefined, iface: SandboxInterface | undefined): Record<string, unknown> {
  return {
    IPAMConfig: endpoint?.ipv4Address ? { IPv4Address: endpoint.ipv4Address } : null,
    Links: null,
    Aliases: endpoint && endpoint.aliases.length > 0 ? endpoint.aliases : null,
    MacAddress: iface?.mac ?? '',
    DriverOpts: null,
    NetworkID: network?.id ?? '',
    EndpointID: iface?.endpointId ?? '',
    Gateway: iface?.gateway ?? '',
    IPAddress: iface?.ip ?? '',
    IPPrefixLen: iface?.prefixLen ?? 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    DNSNames: iface && iface.dnsNames.length > 0 ? iface.dnsNames : null,
  };
}

export function containerNetworkSettings(
  record: ContainerRecord,
  endpoints: EndpointRecord[],
  sandbox: SandboxRecord | undefined,
  lookups: Lookups,
): Record<string, unknown> {
  const running = record.state.Running;
  const live = running ? sandbox : undefined;
  const networks: Record<string, unknown> = {};
  const mode = record.hostConfig.NetworkMode;
  if (mode === 'host' || mode === 'none') {
    networks[mode] = endpointView(lookups.byName(mode), undefined, undefined);
  }
  for (const endpoint of endpoints) {
    const network = lookups.byId(endpoint.networkId);
    if (!network) continue;
    networks[network.name] = endpointView(network, endpoint, live?.interfaces.find((i) => i.networkId === network.id));
  }
  const defaultIface = live?.interfaces.find((i) => lookups.byId(i.networkId)?.isDefaultBridge);
  return {
    Bridge: '',
    SandboxID: live ? lookups.sandboxId : '',
    SandboxKey: live ? live.netnsPath : '',
    HairpinMode: false,
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    Ports: running ? portMap(record, live) : {},
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: defaultIface?.endpointId ?? '',
    Gateway: defaultIface?.gateway ?? '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    IPAddress: defaultIface?.ip ?? '',
    IPPrefixLen: defaultIface?.prefixLen ?? 0,
    IPv6Gateway: '',
    MacAddress: defaultIface?.mac ?? '',
    Networks: networks,
  };
}

function exposedKeys(record: ContainerRecord): string[] {
  return Object.keys(record.config.ExposedPorts ?? {}).map((k) => (k.includes('/') ? k : `${k}/tcp`));
}

/** "80/tcp": [{HostIp, HostPort}] for published ports, null for exposed ones that are not. */
function portMap(record: ContainerRecord, sandbox: SandboxRecord | undefined): Record<string, { HostIp: string; HostPort: string }[] | null> {
  const mode = record.hostConfig.NetworkMode;
  if (mode === 'host' || mode.startsWith('container:')) return {};
  const out: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  for (const key of exposedKeys(record)) out[key] = null;
  for (const p of sandbox?.ports ?? []) {
    const key = `${p.containerPort}/${p.proto}`;
    const list = out[key] ?? [];
    list.push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
    out[key] = list;
  }
  return out;
}

/** The Ports of GET /containers/json: published ports, and exposed ones with PrivatePort only. */
export function containerPortsSummary(record: ContainerRecord, sandbox: SandboxRecord | undefined): unknown[] {
  if (!record.state.Running) return [];
  const out: unknown[] = [];
  const published = new Set<string>();
  for (const p of sandbox?.ports ?? []) {
    out.push({ IP: p.hostIp, PrivatePort: p.containerPort, PublicPort: p.hostPort, Type: p.proto });
    published.add(`${p.containerPort}/${p.proto}`);
  }
  for (const key of exposedKeys(record)) {
    if (published.has(key)) continue;
    const [port, proto] = key.split('/');
    out.push({ PrivatePort: Number(port), Type: proto });
  }
  return out;
}
