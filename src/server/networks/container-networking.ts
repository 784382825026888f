import { createHash } from 'node:crypto';
import { readFile, readlink, writeFile } from 'node:fs/promises';
import type { RequestContext } from '../../common/context.js';
import { conflict, invalidArgument, isKind } from '../../common/errors.js';
import { shortId } from '../../common/ids.js';
import type { Logger } from '../../common/logging.js';
import { attachVeth, deleteLink, deleteLinks, detachVeth, enslave, listLinks, type VethAttachment } from '../../agent/network/links.js';
import { deleteTable, type FirewallModel } from '../../agent/network/firewall.js';
import { helperServer } from '../../agent/network/helper-server.js';
import type { Store } from '../store/store.js';
import type { EventPublisher } from '../events/types.js';
import type { ContainerRecord } from '../containers/model.js';
import { EmbeddedDns, type DnsRecords } from '../dns/embedded-dns.js';
import { allocateAddress, macFor } from './ipam.js';
import { SANDBOX_KIND, type EndpointRecord, type NetworkRecord, type SandboxInterface, type SandboxRecord } from './model.js';
import type { NetworkHost } from './network-host.js';
import type { LiveEndpoints, NetworkService } from './network-service.js';
import { PortReservations, wantedBindings, type PortBindings } from './port-bindings.js';
import type { ContainerNetworking, ContainerSummaryNetwork, NetworkPlan } from './types.js';
import type { ContainerNetworkFacts } from './container-filters.js';
import { containerNetworkSettings, containerPortsSummary } from './settings-views.js';
import type { IdRange } from '../../agent/userns/id-range.js';
import type { OverlayAgent } from './overlay-agent.js';

type LiveSandbox = SandboxRecord & { tenant: string };

/**
 * The network side of running containers: a namespace per bridge-mode container with one veth
 * per network, addresses, published ports, DNS names, and the firewall table that follows
 * from all of them. Records first, host second: a sandbox record is written before anything
 * is made on the host and deleted after everything is gone, so reconcile always finds an
 * owner or an orphan, never a stranger.
 */
export class ContainerNetworkingService implements ContainerNetworking, LiveEndpoints, DnsRecords {
  private readonly sandboxes = new Map<string, LiveSandbox>();
  /** Networks spanning hosts (cluster agents only): MTU, address range, remote names. */
  overlay: OverlayAgent | undefined;
  private readonly ports = new PortReservations();
  private readonly dns: EmbeddedDns;
  private allocation: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly host: NetworkHost,
    private readonly networks: NetworkService,
    private readonly log: Logger,
    dnsUpstreams: string[] | undefined,
    private readonly events?: EventPublisher,
  ) {
    this.dns = new EmbeddedDns(this, log, dnsUpstreams);
    networks.live = this;
  }

  /** Loads sandbox records; call before the containers' reconcile (which may call down). */
  async load(): Promise<void> {
    for (const stored of await this.store.listAllTenants<SandboxRecord>(SANDBOX_KIND)) {
      this.sandboxes.set(stored.id, { ...stored.value, tenant: stored.tenant });
    }
  }

  /**
   * After the containers' reconcile (and NetworkService.reconcileBridges before it, so that the
   * restarts it schedules find their bridges): sandboxes of containers that no longer run are
   * taken down; those of running containers get their namespace file, veths on their bridges
   * and port sockets back; namespace files and veths no record owns are removed; the firewall
   * table is rewritten from the records.
   */
  async reconcile(isRunning: (tenant: string, containerId: string) => Promise<{ exists: boolean; running: boolean; pid: number }>): Promise<void> {
    // Endpoints of containers that no longer exist (a crash between the two deletes of a
    // removal) would keep their networks from being removed.
    await this.networks.removeOrphanEndpoints(async (tenant, id) => (await isRunning(tenant, id)).exists);
    const files = new Set(await this.host.netns.list());
    for (const sandbox of [...this.sandboxes.values()]) {
      const state = await isRunning(sandbox.tenant, sandbox.id);
      if (!state.running) {
        await this.down(sandbox.id).catch((err: unknown) => this.log.warn({ err, id: sandbox.id }, 'network teardown in reconcile failed'));
        continue;
      }
      if (!files.has(sandbox.id) && state.pid > 0) {
        await this.host.netns.adopt(sandbox.id, state.pid).catch((err: unknown) => this.log.warn({ err }, 'could not re-pin a namespace'));
      }
      const pairs = sandbox.interfaces.flatMap((i) => {
        const bridge = this.networks.byId(i.networkId)?.bridgeName;
        return bridge ? [{ veth: i.hostVeth, bridge }] : [];
      });
      const missing = await enslave(pairs).catch((err: unknown) => {
        this.log.warn({ err, id: sandbox.id }, 'could not put veths back on their bridges');
        return [];
      });
      if (missing.length > 0) this.log.warn({ id: sandbox.id, missing }, 'a running container lost host veth ends; reconnect it (network disconnect/connect) or restart it');
      const errors = await this.ports.retake(sandbox.id, sandbox.ports);
      for (const err of errors) this.log.warn({ err, id: sandbox.id }, 'a published port could not be taken again');
    }
    const owned = new Set([...this.sandboxes.values()].flatMap((s) => s.interfaces.map((i) => i.hostVeth)));
    for (const link of await listLinks(this.host.vethPrefix)) {
      if (!owned.has(link.name)) {
        this.log.warn({ veth: link.name }, 'removing a veth without a sandbox record');
        await deleteLink(link.name).catch(() => undefined);
      }
    }
    for (const id of new Set([...(await this.host.netns.list()), ...(await this.host.netns.listUserns())])) {
      if (!this.sandboxes.has(id)) await this.host.netns.remove(id).catch(() => undefined);
    }
    await this.refreshFirewall();
  }

  /**
   * Clean shutdown: DNS sockets and port sockets close. When no container runs, the instance's
   * bridges, VXLAN devices and table go too (start-up recreates them from the records and the
   * control plane's next push), so a stopped Berth
   * with nothing running leaves nothing on the host's network; with containers running,
   * everything stays for them.
   */
  async close(): Promise<void> {
    this.dns.close();
    this.ports.releaseAll();
    try {
      if (this.sandboxes.size > 0) return;
      await this.overlay?.removeAll();
      await deleteLinks((await listLinks(this.host.bridgePrefix)).map((l) => l.name));
      await deleteTable(this.host.tableName);
    } finally {
      // Last: the links above are deleted through the helper, and a request after close() starts it again.
      helperServer.close();
    }
  }

  // ---------------------------------------------------------------- create-time

  async planCreate(ctx: RequestContext, _name: string, hostConfig: { NetworkMode: string }, networkingConfig: unknown): Promise<NetworkPlan> {
    const mode = hostConfig.NetworkMode;
    const endpointsConfig = ((networkingConfig as { EndpointsConfig?: unknown } | undefined)?.EndpointsConfig ?? {}) as Record<string, { Aliases?: unknown; IPAMConfig?: { IPv4Address?: unknown } | null }>;
    if (typeof endpointsConfig !== 'object' || endpointsConfig === null) throw invalidArgument('invalid NetworkingConfig.EndpointsConfig');
    if (mode === 'none' || mode === 'host' || mode.startsWith('container:')) {
      if (Object.keys(endpointsConfig).some((k) => k !== mode && k !== 'none' && k !== 'host')) {
        throw invalidArgument(`conflicting options: ${mode} network mode and other networks`);
      }
      if (mode.startsWith('container:') && mode.length === 'container:'.length) throw invalidArgument('no container name or id given for the container network mode');
      return { endpoints: [] };
    }
    // A missing network is a bad request here, not a 404: the docker CLI answers a 404 from
    // create by trying to pull the image.
    const resolved = await this.networks.resolveEndpoints(ctx, mode, endpointsConfig).catch((err: unknown) => {
      throw isKind(err, 'NotFound') ? invalidArgument(err.message) : err;
    });
    return { endpoints: resolved.map((r) => ({ networkId: r.network.id, aliases: r.aliases, ...(r.ipv4Address ? { ipv4Address: r.ipv4Address } : {}) })) };
  }

  async attachCreated(ctx: RequestContext, containerId: string, plan: NetworkPlan): Promise<void> {
    for (const e of plan.endpoints) await this.networks.createEndpoint(ctx, containerId, e.networkId, e.aliases, e.ipv4Address);
  }

  async removeContainer(ctx: RequestContext, containerId: string): Promise<void> {
    await this.down(containerId);
    await this.networks.deleteEndpoints(ctx, containerId);
  }

  async renamed(ctx: RequestContext, containerId: string, oldName: string, newName: string): Promise<void> {
    const sandbox = this.sandboxes.get(containerId);
    if (!sandbox) return;
    sandbox.containerName = newName;
    for (const iface of sandbox.interfaces) {
      if (iface.dnsNames.length > 0) iface.dnsNames = unique(iface.dnsNames.map((n) => (n === oldName ? newName : n)));
    }
    await this.store.update<SandboxRecord>(ctx, SANDBOX_KIND, containerId, { value: withoutTenant(sandbox) });
  }

  // ---------------------------------------------------------------- up / down

  async up(ctx: RequestContext, record: ContainerRecord, idRange?: IdRange): Promise<{ netnsPath?: string; usernsPath?: string }> {
    const mode = record.hostConfig.NetworkMode;
    if (mode === 'none') return {};
    if (mode === 'host') {
      await copyFile('/etc/hosts', record.hostsPath);
      await copyFile('/etc/resolv.conf', record.resolvConfPath);
      return { netnsPath: `/proc/${process.pid}/ns/net` };
    }
    if (mode.startsWith('container:')) return this.joinContainer(ctx, record, mode.slice('container:'.length), idRange !== undefined);
    await this.down(record.id);
    const endpoints = await this.networks.endpointsOf(ctx, record.id);
    if (endpoints.length === 0) return {};
    const sandbox = await this.serialised(() => this.allocate(ctx, record, endpoints));
    try {
      const gatewayIface = this.gatewayInterface(sandbox);
      const veths: VethAttachment[] = sandbox.interfaces.map((iface) => ({
        ifName: iface.ifName,
        hostName: iface.hostVeth,
        bridge: this.networks.byId(iface.networkId)!.bridgeName!,
        mac: iface.mac,
        addressCidr: `${iface.ip}/${iface.prefixLen}`,
        ...(iface === gatewayIface ? { defaultGateway: iface.gateway } : {}),
      }));
      // One request to the resident helper for any number of networks: namespace, both ends of every veth, bridges.
      await this.host.netns.create(record.id, veths, idRange);
      const wanted = wantedBindings(record.hostConfig.PortBindings as PortBindings, record.config.ExposedPorts, record.hostConfig.PublishAllPorts === true);
      if (wanted.length > 0 && gatewayIface) {
        sandbox.ports = await this.ports.reserve(record.id, wanted, `${record.name} (${gatewayIface.endpointId})`);
        await this.store.update<SandboxRecord>(ctx, SANDBOX_KIND, record.id, { value: withoutTenant(sandbox) });
        await this.refreshFirewall();
      }
      await this.writeEtcFiles(record, sandbox);
    } catch (err) {
      await this.down(record.id).catch(() => undefined);
      throw err;
    }
    this.publishMembership(sandbox, 'connect');
    return { netnsPath: sandbox.netnsPath, ...(idRange ? { usernsPath: this.host.netns.usernsPathOf(record.id) } : {}) };
  }

  /** Addresses for every endpoint, under one lock so two starts never take the same one. */
  private async allocate(ctx: RequestContext, record: ContainerRecord, endpoints: EndpointRecord[]): Promise<LiveSandbox> {
    const interfaces: SandboxInterface[] = [];
    for (const endpoint of endpoints) {
      const network = this.networks.byId(endpoint.networkId);
      if (!network || network.driver !== 'bridge') continue;
      interfaces.push(this.newInterface(record, network, endpoint, interfaces.length));
    }
    const sandbox: LiveSandbox = {
      id: record.id,
      containerName: record.name,
      netnsPath: this.host.netns.pathOf(record.id),
      interfaces,
      ports: [],
      tenant: ctx.tenant,
    };
    this.sandboxes.set(record.id, sandbox);
    try {
      await this.store.create<SandboxRecord>(ctx, SANDBOX_KIND, { id: record.id, value: withoutTenant(sandbox) });
    } catch (err) {
      this.sandboxes.delete(record.id);
      throw err;
    }
    return sandbox;
  }

  private newInterface(record: ContainerRecord, network: NetworkRecord, endpoint: EndpointRecord, index: number): SandboxInterface {
    const pool = network.ipam.Config[0]!;
    const used = new Set([...this.sandboxes.values()].flatMap((s) => s.interfaces.filter((i) => i.networkId === network.id).map((i) => i.ip)));
    for (const remote of this.overlay?.remoteAddresses(network.id) ?? []) used.add(remote);
    const hostRange = this.overlay?.ipRangeOf(network.id);
    let ip: string;
    try {
      ip = allocateAddress(hostRange ? { ...pool, IPRange: hostRange } : pool, used, endpoint.ipv4Address);
    } catch (err) {
      if (isKind(err, 'InvalidArgument') && endpoint.ipv4Address) throw conflict(`failed to set up container networking: Address already in use`, err);
      throw err;
    }
    const service = record.config.Labels['com.docker.compose.service'];
    const dnsNames = network.isDefaultBridge ? [] : unique([record.name, shortId(record.id), ...endpoint.aliases, ...(service ? [service] : [])]);
    return {
      networkId: network.id,
      endpointId: endpoint.id,
      ifName: `eth${index}`,
      hostVeth: this.host.newVethName(),
      ip,
      prefixLen: Number(pool.Subnet.split('/')[1]),
      gateway: pool.Gateway,
      mac: macFor(ip),
      dnsNames,
    };
  }

  /** The interface that carries the default route and published ports: the first not internal. */
  private gatewayInterface(sandbox: SandboxRecord): SandboxInterface | undefined {
    return sandbox.interfaces.find((i) => !this.networks.byId(i.networkId)?.internal);
  }

  async down(containerId: string): Promise<void> {
    const sandbox = this.sandboxes.get(containerId);
    this.ports.release(containerId);
    if (!sandbox) return;
    // Independent: the namespace file and the host ends (deleting one end deletes the pair).
    await Promise.all([this.host.netns.remove(containerId), deleteLinks(sandbox.interfaces.map((i) => i.hostVeth))]);
    this.sandboxes.delete(containerId);
    await this.store.delete({ tenant: sandbox.tenant, requestId: 'network-down' }, SANDBOX_KIND, containerId).catch((err: unknown) => {
      if (!isKind(err, 'NotFound')) throw err;
    });
    this.publishMembership(sandbox, 'disconnect');
    if (sandbox.ports.length > 0) await this.refreshFirewall();
  }

  /**
   * With `joinUserns` (a tenant's container) the user namespace that owns the target's network
   * namespace is joined too: root inside needs to own the network namespace to mount sysfs,
   * and both containers are the same tenant's, with the same ID range.
   */
  private async joinContainer(ctx: RequestContext, record: ContainerRecord, ref: string, joinUserns: boolean): Promise<{ netnsPath: string; usernsPath?: string }> {
    const target = await this.networks.containers.lookup(ctx, ref);
    if (!target.state.Running) throw conflict(`cannot join network namespace of a non running container: ${target.id}`);
    await copyFile(target.hostsPath, record.hostsPath).catch(() => undefined);
    await copyFile(target.resolvConfPath, record.resolvConfPath).catch(() => undefined);
    const sandbox = this.sandboxes.get(target.id);
    // Never the host's own user namespace (a target the operator let run without a range).
    const usernsPath = `/proc/${target.state.Pid}/ns/user`;
    const ownUserns = joinUserns && (await readlink(usernsPath).catch(() => '')) !== (await readlink('/proc/self/ns/user'));
    return {
      netnsPath: sandbox?.netnsPath ?? `/proc/${target.state.Pid}/ns/net`,
      ...(ownUserns ? { usernsPath } : {}),
    };
  }

  /**
   * /etc/hosts with the container's addresses; resolv.conf naming the embedded DNS on user
   * networks. The two files are independent: written at once (a start waits for this).
   */
  private async writeEtcFiles(record: ContainerRecord, sandbox: SandboxRecord): Promise<void> {
    const hostname = record.config.Hostname;
    const lines = [
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'fe00::0\tip6-localnet',
      'ff00::0\tip6-mcastprefix',
      'ff02::1\tip6-allnodes',
      'ff02::2\tip6-allrouters',
      ...sandbox.interfaces.map((i) => `${i.ip}\t${hostname}`),
    ];
    const dnsIface = sandbox.interfaces.find((i) => !this.networks.byId(i.networkId)?.isDefaultBridge);
    const writeResolvConf = async (gateway: string): Promise<void> => {
      const hostResolv = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
      const search = hostResolv.split('\n').filter((l) => /^\s*(search|domain)\s/.test(l));
      await writeFile(record.resolvConfPath, [`nameserver ${gateway}`, ...search, 'options ndots:0', ''].join('\n'));
    };
    await Promise.all([writeFile(record.hostsPath, `${lines.join('\n')}\n`), dnsIface ? writeResolvConf(dnsIface.gateway) : undefined]);
  }

  // ---------------------------------------------------------------- connect / disconnect of a running container

  async plug(ctx: RequestContext, containerId: string, endpoint: EndpointRecord): Promise<void> {
    const sandbox = this.sandboxes.get(containerId);
    if (!sandbox) throw conflict('container has no network namespace of its own to connect');
    const network = this.networks.byId(endpoint.networkId)!;
    const record = await this.networks.containers.lookup(ctx, containerId);
    const iface = await this.serialised(async () => {
      const used = new Set(sandbox.interfaces.map((i) => Number(i.ifName.slice(3))));
      let index = 0;
      while (used.has(index)) index++;
      const created = this.newInterface(record, network, endpoint, index);
      sandbox.interfaces.push(created);
      await this.store.update<SandboxRecord>(ctx, SANDBOX_KIND, containerId, { value: withoutTenant(sandbox) });
      return created;
    });
    try {
      const veth = { ifName: iface.ifName, hostName: iface.hostVeth, bridge: network.bridgeName!, mac: iface.mac, addressCidr: `${iface.ip}/${iface.prefixLen}` };
      await attachVeth(sandbox.netnsPath, veth);
      await this.writeEtcFiles(record, sandbox);
    } catch (err) {
      sandbox.interfaces = sandbox.interfaces.filter((i) => i !== iface);
      await this.store.update<SandboxRecord>(ctx, SANDBOX_KIND, containerId, { value: withoutTenant(sandbox) }).catch(() => undefined);
      throw err;
    }
  }

  async unplug(ctx: RequestContext, containerId: string, networkId: string): Promise<void> {
    const sandbox = this.sandboxes.get(containerId);
    const iface = sandbox?.interfaces.find((i) => i.networkId === networkId);
    if (!sandbox || !iface) return;
    await detachVeth(iface.hostVeth);
    sandbox.interfaces = sandbox.interfaces.filter((i) => i !== iface);
    await this.store.update<SandboxRecord>(ctx, SANDBOX_KIND, containerId, { value: withoutTenant(sandbox) });
  }

  // ---------------------------------------------------------------- firewall and DNS

  refreshFirewall(): Promise<void> {
    return this.host.applyFirewall(() => this.firewallModel());
  }

  private firewallModel(): FirewallModel {
    const networks = this.networks.bridgeNetworks().map((n) => ({
      bridge: n.bridgeName!,
      subnet: n.ipam.Config[0]!.Subnet,
      gateway: n.ipam.Config[0]!.Gateway,
      internal: n.internal,
    }));
    const ports = [...this.sandboxes.values()].flatMap((s) => {
      const iface = this.gatewayInterface(s);
      if (!iface) return [];
      return s.ports.map((p) => ({ proto: p.proto, hostIp: p.hostIp, hostPort: p.hostPort, containerIp: iface.ip, containerPort: p.containerPort }));
    });
    return { networks, ports };
  }

  async serveDns(network: NetworkRecord): Promise<void> {
    await this.dns.listen(network.id, network.ipam.Config[0]!.Gateway).catch((err: unknown) =>
      this.log.error({ err, network: network.name }, 'the embedded DNS could not listen on the network gateway; names will not resolve'),
    );
  }

  stopDns(networkId: string): void {
    this.dns.stop(networkId);
  }

  addressesOf(networkId: string, name: string): string[] {
    const network = this.networks.byId(networkId);
    const bare = network && name.endsWith(`.${network.name.toLowerCase()}`) ? name.slice(0, -network.name.length - 1) : name;
    const out: string[] = [];
    for (const s of this.sandboxes.values()) {
      for (const i of s.interfaces) {
        if (i.networkId === networkId && i.dnsNames.some((n) => n.toLowerCase() === bare)) out.push(i.ip);
      }
    }
    out.push(...(this.overlay?.addressesOf(networkId, bare) ?? []));
    return out;
  }

  nameOf(networkId: string, ip: string): string | undefined {
    const network = this.networks.byId(networkId);
    for (const s of this.sandboxes.values()) {
      for (const i of s.interfaces) if (i.networkId === networkId && i.ip === ip) return `${s.containerName}.${network?.name ?? ''}`;
    }
    const remote = this.overlay?.containerNameOf(networkId, ip);
    return remote === undefined ? undefined : `${remote}.${network?.name ?? ''}`;
  }

  networksOf(networkId: string, ip: string): string[] {
    for (const sandbox of this.sandboxes.values()) {
      if (!sandbox.interfaces.some((i) => i.networkId === networkId && i.ip === ip)) continue;
      const others = sandbox.interfaces.filter((i) => i.networkId !== networkId && i.dnsNames.length > 0).map((i) => i.networkId);
      return [networkId, ...others];
    }
    return [networkId];
  }

  /** Every live interface on user networks, for the control plane's overlay (cluster agents). */
  liveEndpoints(): { networkId: string; ip: string; mac: string; containerName: string; names: string[] }[] {
    return [...this.sandboxes.values()].flatMap((s) =>
      s.interfaces.filter((i) => i.dnsNames.length > 0).map((i) => ({ networkId: i.networkId, ip: i.ip, mac: i.mac, containerName: s.containerName, names: i.dnsNames })),
    );
  }

  containersOn(networkId: string): Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }> {
    const out: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }> = {};
    for (const s of this.sandboxes.values()) {
      for (const i of s.interfaces) {
        if (i.networkId === networkId) out[s.id] = { Name: s.containerName, EndpointID: i.endpointId, MacAddress: i.mac, IPv4Address: `${i.ip}/${i.prefixLen}`, IPv6Address: '' };
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- views

  async filterFacts(ctx: RequestContext, records: ContainerRecord[]): Promise<Map<string, ContainerNetworkFacts>> {
    const endpoints = await this.networks.endpointsByContainer(ctx);
    const facts = new Map<string, ContainerNetworkFacts>();
    for (const record of records) {
      const mode = record.hostConfig.NetworkMode;
      const special = mode === 'host' || mode === 'none' ? this.networks.byName(ctx.tenant, mode) : undefined;
      const networks = [
        ...(special ? [special] : []),
        ...(endpoints.get(record.id) ?? []).flatMap((e) => {
          const n = this.networks.byId(e.networkId);
          return n ? [n] : [];
        }),
      ];
      const sandbox = record.state.Running ? this.sandboxes.get(record.id) : undefined;
      facts.set(record.id, {
        networks: networks.map((n) => ({ id: n.id, name: n.name })),
        published: (sandbox?.ports ?? []).map((p) => `${p.containerPort}/${p.proto}`),
      });
    }
    return facts;
  }

  async inspectSettings(ctx: RequestContext, record: ContainerRecord): Promise<Record<string, unknown>> {
    return this.settingsFrom(ctx, record, await this.networks.endpointsOf(ctx, record.id));
  }

  private settingsFrom(ctx: RequestContext, record: ContainerRecord, endpoints: EndpointRecord[]): Record<string, unknown> {
    return containerNetworkSettings(record, endpoints, this.sandboxes.get(record.id), {
      byId: (id) => this.networks.byId(id),
      byName: (name) => this.networks.byName(ctx.tenant, name),
      sandboxId: sandboxId(record.id),
    });
  }

  async summarySettings(ctx: RequestContext, records: ContainerRecord[]): Promise<Map<string, ContainerSummaryNetwork>> {
    // One read of the tenant's endpoints for the whole list: per container it made `ps` quadratic.
    const endpointsByContainer = await this.networks.endpointsByContainer(ctx);
    const summaries = new Map<string, ContainerSummaryNetwork>();
    for (const record of records) {
      const settings = this.settingsFrom(ctx, record, endpointsByContainer.get(record.id) ?? []);
      summaries.set(record.id, { Ports: containerPortsSummary(record, this.sandboxes.get(record.id)), NetworkSettings: { Networks: settings.Networks } });
    }
    return summaries;
  }

  /** dockerd's network events for a container joining (start) or leaving (exit) its networks. */
  private publishMembership(sandbox: LiveSandbox, action: 'connect' | 'disconnect'): void {
    for (const iface of sandbox.interfaces) {
      const network = this.networks.byId(iface.networkId);
      if (!network) continue;
      this.events?.publish({ tenant: sandbox.tenant, requestId: `network-${action}` }, {
        Type: 'network',
        Action: action,
        Actor: { ID: network.id, Attributes: { container: sandbox.id, name: network.name, type: network.driver } },
      });
    }
  }

  private serialised<T>(work: () => Promise<T>): Promise<T> {
    const next = this.allocation.catch(() => undefined).then(work);
    this.allocation = next;
    return next;
  }
}

function withoutTenant(sandbox: LiveSandbox): SandboxRecord {
  const { tenant: _tenant, ...rest } = sandbox;
  return rest;
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

function sandboxId(containerId: string): string {
  return createHash('sha256').update(`sandbox:${containerId}`).digest('hex');
}

async function copyFile(from: string, to: string): Promise<void> {
  await writeFile(to, await readFile(from));
}

