import { KeyedMutex } from '../../common/keyed-mutex.js';
import type { Logger } from '../../common/logging.js';
import { deleteLinks } from '../../agent/network/links.js';
import { ensureVxlan, listVxlans, syncEntries } from '../../agent/network/vxlan.js';
import type { NetworkHost } from './network-host.js';
import type { NetworkService } from './network-service.js';

/**
 * A host's share of the networks that span hosts, as the control plane wants it: for each
 * network the VNI, the address range this host hands out, and every container of the network
 * on the other hosts. The agent applies the whole desired state each time (idempotent), so the
 * control plane can simply send it again after a reconnect, a restart or any change.
 */
export interface OverlayState {
  /** This host's underlay address (its advertise address): the VXLAN devices' source. */
  local: string;
  networks: OverlayNetwork[];
}

export interface OverlayNetwork {
  id: string;
  vni: number;
  /** Addresses this host hands out on the network (a slice of the pool disjoint from other hosts'). */
  ipRange?: string;
  remotes: RemoteEndpoint[];
}

/** A container's endpoint on another host. */
export interface RemoteEndpoint {
  ip: string;
  mac: string;
  /** Underlay address of its host. */
  host: string;
  containerName: string;
  /** Names it answers to on the network: container name, short id, aliases, Compose service. */
  names: string[];
}

interface Applied extends OverlayNetwork {
  bridge: string;
  local: string;
}

function sameState(before: Applied, wanted: OverlayNetwork, bridge: string, local: string): boolean {
  return (
    before.bridge === bridge &&
    before.local === local &&
    before.vni === wanted.vni &&
    before.ipRange === wanted.ipRange &&
    JSON.stringify(before.remotes) === JSON.stringify(wanted.remotes)
  );
}

export class OverlayAgent {
  private applied = new Map<string, Applied>();
  private readonly applying = new KeyedMutex();

  constructor(
    private readonly host: NetworkHost,
    private readonly networks: NetworkService,
    private readonly log: Logger,
  ) {}

  get devicePrefix(): string {
    return `vx${this.host.instanceId}`;
  }

  deviceNameFor(networkId: string): string {
    return `${this.devicePrefix}${networkId.slice(0, 6)}`;
  }

  /** Applies one desired state; calls run one after another. */
  apply(state: OverlayState): Promise<void> {
    return this.applying.run('apply', () => this.applyNow(state));
  }

  private async applyNow(state: OverlayState): Promise<void> {
    const existing = new Map((await listVxlans(this.devicePrefix)).map((d) => [d.name, d]));
    const applied = new Map<string, Applied>();
    for (const network of state.networks) {
      const bridge = this.networks.byId(network.id)?.bridgeName;
      if (!bridge) continue; // Not (yet) made on this host; the next push covers it.
      const name = this.deviceNameFor(network.id);
      const before = this.applied.get(network.id);
      const device = existing.get(name);
      existing.delete(name);
      // The periodic push mostly repeats itself: an unchanged network on a present device costs nothing.
      if (before && device && sameState(before, network, bridge, state.local) && device.vni === network.vni) {
        applied.set(network.id, { ...network, bridge, local: state.local });
        continue;
      }
      await ensureVxlan({ name, vni: network.vni, local: state.local, bridge }, device);
      await syncEntries(name, network.remotes.map((r) => ({ ip: r.ip, mac: r.mac, host: r.host })));
      applied.set(network.id, { ...network, bridge, local: state.local });
    }
    await deleteLinks([...existing.keys()]);
    for (const stale of existing.keys()) this.log.info({ device: stale }, 'removed the VXLAN device of a network no longer spanning this host');
    this.applied = applied;
  }

  ipRangeOf(networkId: string): string | undefined {
    return this.applied.get(networkId)?.ipRange;
  }

  remoteAddresses(networkId: string): string[] {
    return this.applied.get(networkId)?.remotes.map((r) => r.ip) ?? [];
  }

  /** Embedded DNS: addresses of `name` among the network's containers on other hosts. */
  addressesOf(networkId: string, name: string): string[] {
    const remotes = this.applied.get(networkId)?.remotes ?? [];
    return remotes.filter((r) => r.names.some((n) => n.toLowerCase() === name)).map((r) => r.ip);
  }

  containerNameOf(networkId: string, ip: string): string | undefined {
    return this.applied.get(networkId)?.remotes.find((r) => r.ip === ip)?.containerName;
  }

  /** Removes every VXLAN device of this instance (clean shutdown with no container left). */
  async removeAll(): Promise<void> {
    await deleteLinks((await listVxlans(this.devicePrefix)).map((d) => d.name));
    this.applied.clear();
  }
}
