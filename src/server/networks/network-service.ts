import { readFile } from 'node:fs/promises';
import type { RequestContext } from '../../common/context.js';
import { operatorContext } from '../../common/context.js';
import { conflict, forbidden, invalidArgument, isKind, notFound, notImplemented } from '../../common/errors.js';
import { newId } from '../../common/ids.js';
import { nowRfc3339Nano } from '../../common/human-time.js';
import { formatCidr, overlaps, parseCidr, type Subnet } from '../../common/ipv4.js';
import { KeyedMutex } from '../../common/keyed-mutex.js';
import type { Logger } from '../../common/logging.js';
import { deleteLink, ensureBridge, hostIPv4Prefixes, listLinks } from '../../agent/network/links.js';
import type { EventPublisher } from '../events/types.js';
import type { Store } from '../store/store.js';
import type { ContainerRecord } from '../containers/model.js';
import { parseFilters } from '../list-filters.js';
import { allocateAddress, chooseSubnet, poolOf, userPool, type AddressPool } from './ipam.js';
import { ENDPOINT_KIND, NETWORK_KIND, type EndpointRecord, type NetworkRecord } from './model.js';
import type { NetworkHost } from './network-host.js';
import { networkView, selectNetworks } from './network-views.js';

export interface NetworkServiceOptions {
  store: Store;
  host: NetworkHost;
  events: EventPublisher;
  logger: Logger;
  /** Pools user networks (and the default bridge, without `defaultBridgeSubnet`) take subnets from. */
  addressPools: AddressPool[];
  /** `--bip`: the default bridge's gateway address and prefix, e.g. 10.200.0.1/24. */
  defaultBridgeCidr?: string;
}

/** What the network service needs to know of running containers (implemented by ContainerNetworkingService). */
export interface LiveEndpoints {
  /** Running containers on the network, as network inspect shows them. */
  containersOn(networkId: string): Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }>;
  /** Hot-plugs an endpoint into a running container (network connect). */
  plug(ctx: RequestContext, containerId: string, endpoint: EndpointRecord): Promise<void>;
  unplug(ctx: RequestContext, containerId: string, networkId: string): Promise<void>;
  /** Re-renders the firewall after networks changed. */
  refreshFirewall(): Promise<void>;
  /** Starts or stops the embedded DNS of a user network. */
  serveDns(network: NetworkRecord): Promise<void>;
  stopDns(networkId: string): void;
}

/** The container side of connect/disconnect: resolve a reference, know whether it runs. */
export interface ContainerLookup {
  lookup(ctx: RequestContext, ref: string): Promise<ContainerRecord>;
}

const PREDEFINED = ['bridge', 'host', 'none'];

/**
 * Docker networks of one host: the predefined bridge, host and none networks and
 * user-defined bridge networks, their records and their bridges. Operations on networks are
 * serialised (one lock), as they share the address space and the firewall table.
 */
export class NetworkService {
  private readonly store: Store;
  private readonly host: NetworkHost;
  private readonly events: EventPublisher;
  private readonly log: Logger;
  private readonly pools: AddressPool[];
  private readonly defaultBridgeCidr: string | undefined;
  private readonly lock = new KeyedMutex();
  /** Every tenant's networks by id; loaded at start, kept in step with the store. */
  private readonly networks = new Map<string, NetworkRecord & { tenant: string }>();
  private readonly predefinedReady = new Set<string>();
  /** Set once start-up brought the bridges up; later bridges are brought up as they are made. */
  private bridgesUp = false;
  live!: LiveEndpoints;
  containers!: ContainerLookup;

  constructor(options: NetworkServiceOptions) {
    this.store = options.store;
    this.host = options.host;
    this.events = options.events;
    this.log = options.logger;
    this.pools = options.addressPools;
    this.defaultBridgeCidr = options.defaultBridgeCidr;
  }

  /** Every bridge network of every tenant (for the firewall and reconcile). */
  bridgeNetworks(): (NetworkRecord & { tenant: string })[] {
    return [...this.networks.values()].filter((n) => n.driver === 'bridge');
  }

  byId(id: string): (NetworkRecord & { tenant: string }) | undefined {
    return this.networks.get(id);
  }

  byName(tenant: string, name: string): NetworkRecord | undefined {
    return [...this.networks.values()].find((n) => n.tenant === tenant && n.name === name);
  }

  /** Loads records into memory; no host change. Call before the containers' reconcile. */
  async load(): Promise<void> {
    for (const stored of await this.store.listAllTenants<NetworkRecord>(NETWORK_KIND)) {
      this.networks.set(stored.id, { ...stored.value, tenant: stored.tenant });
    }
    await this.ensurePredefined(operatorContext('network-start'));
  }

  /**
   * Makes the host match the records: every bridge network has its bridge with its gateway
   * address; bridges of this instance that no record owns are deleted.
   */
  async reconcileBridges(): Promise<void> {
    this.bridgesUp = true;
    if (await this.host.ensureIpForwarding()) this.log.warn('IPv4 forwarding was off; Berth turned it on (net.ipv4.ip_forward=1) so containers can reach out');
    const owned = new Set<string>();
    for (const network of this.bridgeNetworks()) {
      owned.add(network.bridgeName!);
      try {
        await this.bringUpBridge(network);
      } catch (err) {
        this.log.error({ err, network: network.name }, 'could not restore the bridge of a network');
      }
    }
    for (const link of await listLinks(this.host.bridgePrefix)) {
      if (link.kind === 'bridge' && !owned.has(link.name)) {
        this.log.warn({ bridge: link.name }, 'removing a bridge without a network record');
        await deleteLink(link.name).catch((err: unknown) => this.log.warn({ err }, 'bridge removal failed'));
      }
    }
  }

  private async bringUpBridge(network: NetworkRecord): Promise<void> {
    const pool = network.ipam.Config[0]!;
    await ensureBridge(network.bridgeName!, `${pool.Gateway}/${pool.Subnet.split('/')[1]}`);
    if (!network.isDefaultBridge) await this.live.serveDns(network);
  }

  /** The predefined networks exist for every tenant that looks at networks. */
  /** `avoid`: a subnet the tenant's default bridge must not take (the network being created wants it). */
  private async ensurePredefined(ctx: RequestContext, avoid?: Subnet): Promise<void> {
    if (this.predefinedReady.has(ctx.tenant)) return;
    await this.lock.run('networks', async () => {
      if (this.predefinedReady.has(ctx.tenant)) return;
      const existing = new Set((await this.store.list<NetworkRecord>(ctx, NETWORK_KIND)).map((s) => s.name));
      for (const name of PREDEFINED) {
        if (existing.has(name)) continue;
        const id = newId();
        const base: NetworkRecord = {
          id,
          name,
          driver: name === 'bridge' ? 'bridge' : name === 'host' ? 'host' : 'null',
          created: nowRfc3339Nano(),
          internal: false,
          attachable: false,
          labels: {},
          options: {},
          ipam: { Driver: 'default', Config: [], Options: null },
        };
        if (name === 'bridge') {
          base.isDefaultBridge = true;
          base.bridgeName = this.host.bridgeNameFor(id);
          base.ipam.Config = [await this.defaultBridgePool(avoid)];
          base.options = {
            'com.docker.network.bridge.default_bridge': 'true',
            'com.docker.network.bridge.enable_icc': 'true',
            'com.docker.network.bridge.enable_ip_masquerade': 'true',
            'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
            'com.docker.network.bridge.name': base.bridgeName,
            'com.docker.network.driver.mtu': '1500',
          };
        }
        await this.store.create<NetworkRecord>(ctx, NETWORK_KIND, { id, name, value: base });
        this.networks.set(id, { ...base, tenant: ctx.tenant });
        // A tenant met after start-up gets its default bridge now (each tenant has its own).
        if (base.driver === 'bridge' && this.bridgesUp) {
          await this.bringUpBridge(base);
          await this.live.refreshFirewall();
        }
      }
      this.predefinedReady.add(ctx.tenant);
    });
  }

  private async defaultBridgePool(avoid?: Subnet): Promise<NetworkRecord['ipam']['Config'][number]> {
    if (this.defaultBridgeCidr) {
      const [gateway, prefix] = this.defaultBridgeCidr.split('/');
      const subnet = parseCidr(this.defaultBridgeCidr);
      if (!subnet || !gateway || !prefix) throw invalidArgument(`invalid --bip ${this.defaultBridgeCidr}`);
      return { Subnet: formatCidr(subnet), Gateway: gateway };
    }
    const subnet = await this.freeSubnet(avoid);
    return poolOf(subnet);
  }

  private async freeSubnet(avoid?: Subnet): Promise<Subnet> {
    const taken = this.bridgeNetworks().map((n) => parseCidr(n.ipam.Config[0]!.Subnet)!);
    if (avoid) taken.push(avoid);
    const hostPrefixes = [...(await hostIPv4Prefixes()), ...(await resolverPrefixes())];
    const subnet = chooseSubnet(this.pools, taken, hostPrefixes);
    if (!subnet) throw forbidden('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
    return subnet;
  }

  // ---------------------------------------------------------------- API

  /** `chosen.id`: the id the cluster's control plane chose (the same network on every host). */
  async create(ctx: RequestContext, body: Record<string, unknown>, chosen: { id?: string } = {}): Promise<{ Id: string; Warning: string }> {
    // A tenant first met by this create (a host joining a cluster gets the cluster's networks
    // with their subnets named) must not have its default bridge take the subnet named here.
    await this.ensurePredefined(ctx, namedSubnet(body));
    const name = typeof body.Name === 'string' ? body.Name : '';
    if (name === '') throw invalidArgument('network name is required');
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw invalidArgument(`invalid network name "${name}"`);
    const driver = typeof body.Driver === 'string' && body.Driver !== '' ? body.Driver : 'bridge';
    if (driver !== 'bridge') {
      if (['overlay', 'macvlan', 'ipvlan', 'host', 'null'].includes(driver)) throw notImplemented(`network driver "${driver}" is not supported: Berth offers bridge networks`);
      throw notFound(`plugin "${driver}" not found`);
    }
    if (PREDEFINED.includes(name)) throw forbidden(`operation is not permitted on predefined ${name} network `);
    if (body.EnableIPv6 === true) throw notImplemented('IPv6 networks (--ipv6) are not supported yet');
    const ipamRaw = (body.IPAM ?? {}) as { Driver?: unknown; Config?: unknown; Options?: unknown };
    if (ipamRaw.Driver !== undefined && ipamRaw.Driver !== '' && ipamRaw.Driver !== 'default') throw notFound(`plugin "${String(ipamRaw.Driver)}" not found`);
    const configs = Array.isArray(ipamRaw.Config) ? (ipamRaw.Config as Record<string, unknown>[]) : [];
    if (configs.length > 1) throw notImplemented('more than one IPAM pool per network is not supported');
    const labels = stringMap(body.Labels, 'Labels');
    const options = stringMap(body.Options, 'Options');

    return this.lock.run('networks', async () => {
      if ((await this.store.list<NetworkRecord>(ctx, NETWORK_KIND)).some((s) => s.name === name)) {
        throw conflict(`network with name ${name} already exists`);
      }
      const id = chosen.id ?? newId();
      const taken = this.bridgeNetworks().map((n) => parseCidr(n.ipam.Config[0]!.Subnet)!);
      let pool;
      if (configs[0]) {
        const wanted = userPool(configs[0]);
        if (taken.some((t) => overlaps(t, wanted.subnet))) throw forbidden(`Pool overlaps with other one on this address space`);
        pool = poolOf(wanted.subnet, wanted.gateway, wanted.range);
      } else {
        pool = poolOf(await this.freeSubnet());
      }
      const record: NetworkRecord = {
        id,
        name,
        driver: 'bridge',
        created: nowRfc3339Nano(),
        internal: body.Internal === true,
        attachable: body.Attachable === true,
        labels,
        options,
        ipam: { Driver: 'default', Config: [pool], Options: stringMap(ipamRaw.Options, 'IPAM.Options') },
        bridgeName: this.host.bridgeNameFor(id),
      };
      await this.store.create<NetworkRecord>(ctx, NETWORK_KIND, { id, name, value: record });
      this.networks.set(id, { ...record, tenant: ctx.tenant });
      try {
        await this.bringUpBridge(record);
        await this.live.refreshFirewall();
      } catch (err) {
        await this.dropNetwork(ctx, record).catch(() => undefined);
        throw err;
      }
      this.publish(ctx, record, 'create', { type: 'bridge' });
      return { Id: id, Warning: '' };
    });
  }

  async lookup(ctx: RequestContext, ref: string): Promise<NetworkRecord> {
    await this.ensurePredefined(ctx);
    try {
      return (await this.store.lookup<NetworkRecord>(ctx, NETWORK_KIND, ref)).value;
    } catch (err) {
      if (isKind(err, 'NotFound')) throw notFound(`network ${ref} not found`);
      throw err;
    }
  }

  async list(ctx: RequestContext, rawFilters: string | undefined): Promise<Record<string, unknown>[]> {
    await this.ensurePredefined(ctx);
    const filters = parseFilters(rawFilters);
    const records = (await this.store.list<NetworkRecord>(ctx, NETWORK_KIND)).map((s) => s.value);
    const endpoints = await this.store.list<EndpointRecord>(ctx, ENDPOINT_KIND);
    const inUse = new Set(endpoints.map((e) => e.value.networkId));
    return selectNetworks(records, filters, (id) => inUse.has(id)).map((n) => networkView(n, {}));
  }

  async inspect(ctx: RequestContext, ref: string): Promise<Record<string, unknown>> {
    const network = await this.lookup(ctx, ref);
    return networkView(network, this.live.containersOn(network.id));
  }

  async remove(ctx: RequestContext, ref: string): Promise<void> {
    const network = await this.lookup(ctx, ref);
    if (PREDEFINED.includes(network.name)) throw forbidden(`${network.name} is a pre-defined network and cannot be removed`);
    await this.lock.run('networks', async () => {
      const endpoints = (await this.store.list<EndpointRecord>(ctx, ENDPOINT_KIND)).filter((e) => e.value.networkId === network.id);
      if (endpoints.length > 0) {
        throw forbidden(`error while removing network: network ${network.name} id ${network.id} has active endpoints`);
      }
      await this.dropNetwork(ctx, network);
      this.publish(ctx, network, 'destroy', { type: 'bridge' });
    });
  }

  private async dropNetwork(ctx: RequestContext, network: NetworkRecord): Promise<void> {
    this.live.stopDns(network.id);
    if (network.bridgeName) await deleteLink(network.bridgeName);
    await this.store.delete(ctx, NETWORK_KIND, network.id).catch((err: unknown) => {
      if (!isKind(err, 'NotFound')) throw err;
    });
    this.networks.delete(network.id);
    await this.live.refreshFirewall();
  }

  async prune(ctx: RequestContext, rawFilters: string | undefined): Promise<{ NetworksDeleted: string[] }> {
    const filters = parseFilters(rawFilters);
    for (const key of Object.keys(filters)) {
      if (!['until', 'label', 'label!'].includes(key)) throw invalidArgument(`invalid filter '${key}'`);
    }
    const records = (await this.store.list<NetworkRecord>(ctx, NETWORK_KIND)).map((s) => s.value);
    const candidates = selectNetworks(records, filters, () => false).filter((n) => !PREDEFINED.includes(n.name));
    const deleted: string[] = [];
    for (const network of candidates) {
      try {
        await this.remove(ctx, network.id);
        deleted.push(network.name);
      } catch (err) {
        if (!isKind(err, 'Forbidden')) this.log.warn({ err, network: network.name }, 'prune could not remove a network');
      }
    }
    return { NetworksDeleted: deleted };
  }

  // ---------------------------------------------------------------- endpoints

  /**
   * The networks a create names: NetworkMode and NetworkingConfig.EndpointsConfig, resolved and
   * validated with dockerd's messages. Nothing is written.
   */
  async resolveEndpoints(
    ctx: RequestContext,
    networkMode: string,
    endpointsConfig: Record<string, { Aliases?: unknown; IPAMConfig?: { IPv4Address?: unknown } | null }>,
  ): Promise<{ network: NetworkRecord; aliases: string[]; ipv4Address?: string }[]> {
    // The docker CLI names the default network "default" in both places.
    const entries = Object.entries(endpointsConfig).map(([name, cfg]) => [name === 'default' ? 'bridge' : name, cfg] as const);
    const modeNetwork = networkMode === 'default' ? 'bridge' : networkMode;
    if (!entries.some(([name]) => name === modeNetwork)) entries.unshift([modeNetwork, {}] as const);
    const out: { network: NetworkRecord; aliases: string[]; ipv4Address?: string }[] = [];
    for (const [ref, cfg] of entries) {
      const network = await this.lookup(ctx, ref);
      if (network.driver !== 'bridge') {
        if (entries.length > 1) throw invalidArgument(`container cannot be disconnected from host network or connected to host network`);
        continue;
      }
      const aliases = Array.isArray(cfg?.Aliases) ? cfg.Aliases.filter((a): a is string => typeof a === 'string') : [];
      const ip = typeof cfg?.IPAMConfig?.IPv4Address === 'string' && cfg.IPAMConfig.IPv4Address !== '' ? cfg.IPAMConfig.IPv4Address : undefined;
      if (network.isDefaultBridge && ip) throw invalidArgument('user specified IP address is supported on user defined networks only');
      if (network.isDefaultBridge && aliases.length > 0) throw invalidArgument('network-scoped alias is supported only for containers in user defined networks');
      if (ip) {
        const pool = network.ipam.Config[0]!;
        allocateAddress(pool, new Set(), ip);
      }
      out.push({ network, aliases, ...(ip ? { ipv4Address: ip } : {}) });
    }
    return out;
  }

  async createEndpoint(ctx: RequestContext, containerId: string, networkId: string, aliases: string[], ipv4Address?: string): Promise<EndpointRecord> {
    const existing = (await this.store.list<EndpointRecord>(ctx, ENDPOINT_KIND)).filter((e) => e.value.containerId === containerId);
    const endpoint: EndpointRecord = {
      id: newId(),
      containerId,
      networkId,
      aliases,
      ...(ipv4Address ? { ipv4Address } : {}),
      order: existing.reduce((max, e) => Math.max(max, e.value.order + 1), 0),
    };
    await this.store.create<EndpointRecord>(ctx, ENDPOINT_KIND, { id: endpoint.id, value: endpoint });
    return endpoint;
  }

  async endpointsOf(ctx: RequestContext, containerId: string): Promise<EndpointRecord[]> {
    return (await this.store.list<EndpointRecord>(ctx, ENDPOINT_KIND))
      .map((e) => e.value)
      .filter((e) => e.containerId === containerId)
      .sort((a, b) => a.order - b.order);
  }

  /** Every endpoint of the tenant grouped by container, in attach order: one read for a whole list view. */
  async endpointsByContainer(ctx: RequestContext): Promise<Map<string, EndpointRecord[]>> {
    const grouped = new Map<string, EndpointRecord[]>();
    for (const { value } of await this.store.list<EndpointRecord>(ctx, ENDPOINT_KIND)) {
      const list = grouped.get(value.containerId);
      if (list) list.push(value);
      else grouped.set(value.containerId, [value]);
    }
    for (const list of grouped.values()) list.sort((a, b) => a.order - b.order);
    return grouped;
  }

  async deleteEndpoints(ctx: RequestContext, containerId: string): Promise<void> {
    for (const endpoint of await this.endpointsOf(ctx, containerId)) {
      await this.store.delete(ctx, ENDPOINT_KIND, endpoint.id).catch(() => undefined);
    }
  }

  async removeOrphanEndpoints(containerExists: (tenant: string, containerId: string) => Promise<boolean>): Promise<void> {
    for (const stored of await this.store.listAllTenants<EndpointRecord>(ENDPOINT_KIND)) {
      if (await containerExists(stored.tenant, stored.value.containerId)) continue;
      this.log.warn({ endpoint: stored.id, container: stored.value.containerId }, 'removing an endpoint whose container is gone');
      await this.store.delete({ tenant: stored.tenant, requestId: 'reconcile' }, ENDPOINT_KIND, stored.id).catch(() => undefined);
    }
  }

  async connect(ctx: RequestContext, ref: string, body: Record<string, unknown>): Promise<void> {
    const network = await this.lookup(ctx, ref);
    const containerRef = typeof body.Container === 'string' ? body.Container : '';
    const container = await this.containers.lookup(ctx, containerRef);
    const mode = container.hostConfig.NetworkMode;
    if (network.driver !== 'bridge' || mode === 'host' || mode === 'none' || mode.startsWith('container:')) {
      throw forbidden(`container cannot be disconnected from host network or connected to host network`);
    }
    const cfg = (body.EndpointConfig ?? {}) as { Aliases?: unknown; IPAMConfig?: { IPv4Address?: unknown } | null };
    const [resolved] = await this.resolveEndpoints(ctx, network.id, { [network.id]: cfg });
    if ((await this.endpointsOf(ctx, container.id)).some((e) => e.networkId === network.id)) {
      throw forbidden(`endpoint with name ${container.name} already exists in network ${network.name}`);
    }
    const endpoint = await this.createEndpoint(ctx, container.id, network.id, resolved!.aliases, resolved!.ipv4Address);
    if (container.state.Running) {
      try {
        await this.live.plug(ctx, container.id, endpoint);
      } catch (err) {
        await this.store.delete(ctx, ENDPOINT_KIND, endpoint.id).catch(() => undefined);
        throw err;
      }
    }
    // Containers that do not run announce their networks when they start (ContainerNetworkingService).
    if (container.state.Running) this.publish(ctx, network, 'connect', { container: container.id, type: 'bridge' });
  }

  async disconnect(ctx: RequestContext, ref: string, body: Record<string, unknown>): Promise<void> {
    const network = await this.lookup(ctx, ref);
    const containerRef = typeof body.Container === 'string' ? body.Container : '';
    const container = await this.containers.lookup(ctx, containerRef);
    if (network.driver !== 'bridge') throw forbidden(`container cannot be disconnected from host network or connected to host network`);
    const endpoint = (await this.endpointsOf(ctx, container.id)).find((e) => e.networkId === network.id);
    if (!endpoint) throw forbidden(`container ${container.id} is not connected to network ${network.name}`);
    if (container.state.Running) await this.live.unplug(ctx, container.id, network.id);
    await this.store.delete(ctx, ENDPOINT_KIND, endpoint.id);
    if (container.state.Running) this.publish(ctx, network, 'disconnect', { container: container.id, type: 'bridge' });
  }

  private publish(ctx: RequestContext, network: NetworkRecord, action: string, extra: Record<string, string>): void {
    this.events.publish(ctx, { Type: 'network', Action: action, Actor: { ID: network.id, Attributes: { name: network.name, ...extra } } });
  }
}

function stringMap(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(`invalid ${field}: must be an object`);
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw invalidArgument(`invalid ${field}: value of ${key} must be a string`);
  }
  return { ...(value as Record<string, string>) };
}

/** The host's resolvers as /32 prefixes: a network must not hide them behind a bridge route. */
async function resolverPrefixes(): Promise<string[]> {
  const text = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  return [...text.matchAll(/^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)/gm)].map((m) => `${m[1]}/32`);
}

/** The subnet a create body names in IPAM.Config[0], when it names a valid one. */
function namedSubnet(body: Record<string, unknown>): Subnet | undefined {
  const config = (body.IPAM as { Config?: unknown } | undefined)?.Config;
  const subnet = Array.isArray(config) ? (config[0] as { Subnet?: unknown } | undefined)?.Subnet : undefined;
  return typeof subnet === 'string' ? parseCidr(subnet) ?? undefined : undefined;
}
