import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode } from '../../common/errors.js';
import { applyRuleset, type FirewallModel } from '../../agent/network/firewall.js';
import { NetnsDirectory } from '../../agent/network/netns.js';

/**
 * The host-global names of one Berth instance. Several Berth instances share a machine (tests,
 * CI, colleagues), so every name Berth gives a kernel object carries the instance id: a random
 * 6-hex id written once under the data root and kept for the life of that data root.
 *
 * - bridges:   br-<instance><6 hex of the network id>   (15 characters, IFNAMSIZ - 1)
 * - host veth: vb<instance><7 random hex>                (15 characters)
 * - nftables:  table ip berth_<instance>
 * - netns:     <exec-root>/netns/<container id>
 */
export class NetworkHost {
  readonly netns: NetnsDirectory;
  private firewallChain: Promise<void> = Promise.resolve();

  private constructor(
    readonly instanceId: string,
    execRoot: string,
  ) {
    this.netns = new NetnsDirectory(join(execRoot, 'netns'));
  }

  static async open(dataRoot: string, execRoot: string): Promise<NetworkHost> {
    const file = join(dataRoot, 'network', 'instance-id');
    let id: string;
    try {
      id = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      id = randomBytes(3).toString('hex');
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, `${id}\n`);
    }
    if (!/^[0-9a-f]{6}$/.test(id)) throw new Error(`corrupt network instance id in ${file}`);
    return new NetworkHost(id, execRoot);
  }

  get tableName(): string {
    return `berth_${this.instanceId}`;
  }

  get bridgePrefix(): string {
    return `br-${this.instanceId}`;
  }

  get vethPrefix(): string {
    return `vb${this.instanceId}`;
  }

  bridgeNameFor(networkId: string): string {
    return `${this.bridgePrefix}${networkId.slice(0, 6)}`;
  }

  newVethName(): string {
    return `${this.vethPrefix}${randomBytes(4).toString('hex').slice(0, 7)}`;
  }

  /**
   * Containers reach beyond their bridge only if the host routes between interfaces. Like
   * dockerd, Berth turns IPv4 forwarding on when it is off, and says so; it never turns it off
   * (other software may rely on it by then). Returns whether it changed the setting.
   */
  async ensureIpForwarding(): Promise<boolean> {
    const path = '/proc/sys/net/ipv4/ip_forward';
    if ((await readFile(path, 'utf8')).trim() === '1') return false;
    await writeFile(path, '1');
    return true;
  }

  /** Replaces the instance's table; calls are applied one after another, each with the model it was given. */
  applyFirewall(model: () => FirewallModel): Promise<void> {
    const next = this.firewallChain.catch(() => undefined).then(() => applyRuleset(this.tableName, model()));
    this.firewallChain = next;
    return next;
  }
}
