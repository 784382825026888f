import { invalidArgument } from '../../common/errors.js';
import {
  contains,
  formatCidr,
  formatIPv4,
  lastAddress,
  overlaps,
  parseCidr,
  parseIPv4,
  splitSubnet,
  type Subnet,
} from '../../common/ipv4.js';
import type { IpamPool } from './model.js';

/**
 * Address management for bridge networks: picking a subnet for a network and an address for
 * an interface. Allocations are not kept here: the records (networks, sandboxes) are the
 * allocations, and the caller passes what is taken.
 */

export interface AddressPool {
  base: string;
  size: number;
}

/** dockerd's default pools: 172.17–31.0.0/16, then 192.168.0.0/16 cut in /20s. */
export const DEFAULT_ADDRESS_POOLS: AddressPool[] = [
  { base: '172.17.0.0/16', size: 16 },
  { base: '172.18.0.0/15', size: 16 },
  { base: '172.20.0.0/14', size: 16 },
  { base: '172.24.0.0/13', size: 16 },
  { base: '192.168.0.0/16', size: 20 },
];

/** `base=10.10.0.0/16,size=24`, as dockerd's --default-address-pool. */
export function parseAddressPool(text: string): AddressPool {
  const fields = Object.fromEntries(text.split(',').map((kv) => kv.split('=', 2) as [string, string]));
  const base = fields.base ? parseCidr(fields.base) : undefined;
  const size = Number(fields.size);
  if (!base || !Number.isInteger(size) || size < base.prefix || size > 30) {
    throw invalidArgument(`invalid default address pool "${text}": want base=<CIDR>,size=<prefix length>`);
  }
  return { base: formatCidr(base), size };
}

/**
 * A free subnet from the pools: one overlapping neither `taken` (this instance's networks)
 * nor anything the host routes or holds (`hostPrefixes`: its routes, addresses, and the
 * addresses of its resolvers, which a default route may reach). Among the free candidates
 * the choice is random, so Berth instances starting at the same moment rarely race for one.
 */
export function chooseSubnet(pools: AddressPool[], taken: Subnet[], hostPrefixes: string[]): Subnet | undefined {
  const blocked = [...taken, ...hostPrefixes.map((p) => parseCidr(p)).filter((s): s is Subnet => s !== undefined)];
  const free: Subnet[] = [];
  for (const pool of pools) {
    const base = parseCidr(pool.base);
    if (!base) continue;
    for (const candidate of splitSubnet(base, pool.size)) {
      if (!blocked.some((b) => overlaps(b, candidate))) free.push(candidate);
      if (free.length >= 64) break;
    }
    if (free.length >= 8) break;
  }
  if (free.length === 0) return undefined;
  return free[Math.floor(Math.random() * free.length)];
}

/** The pool of a network from --subnet/--gateway/--ip-range, validated with dockerd's messages. */
export function userPool(raw: { Subnet?: unknown; Gateway?: unknown; IPRange?: unknown }): { subnet: Subnet; gateway?: number; range?: Subnet } {
  if (typeof raw.Subnet !== 'string' || raw.Subnet === '') throw invalidArgument('ipam config requires a subnet');
  const subnet = parseCidr(raw.Subnet);
  if (!subnet || `${formatIPv4(parseIPv4(raw.Subnet.split('/')[0]!) ?? -1)}/${subnet.prefix}` !== formatCidr(subnet)) {
    throw invalidArgument(`invalid subnet ${raw.Subnet}: it must be a network address, for example ${subnet ? formatCidr(subnet) : '10.0.0.0/24'}`);
  }
  if (subnet.prefix > 30) throw invalidArgument(`invalid subnet ${raw.Subnet}: too small, the longest prefix is /30`);
  let gateway: number | undefined;
  if (typeof raw.Gateway === 'string' && raw.Gateway !== '') {
    gateway = parseIPv4(raw.Gateway);
    if (gateway === undefined) throw invalidArgument(`invalid gateway address ${raw.Gateway}`);
    if (!contains(subnet, gateway)) throw invalidArgument(`no matching subnet for gateway ${raw.Gateway}`);
  }
  let range: Subnet | undefined;
  if (typeof raw.IPRange === 'string' && raw.IPRange !== '') {
    range = parseCidr(raw.IPRange);
    if (!range) throw invalidArgument(`invalid ip range ${raw.IPRange}`);
    if (!contains(subnet, range.base) || range.prefix < subnet.prefix) throw invalidArgument(`no matching subnet for range ${raw.IPRange}`);
  }
  return { subnet, ...(gateway !== undefined ? { gateway } : {}), ...(range ? { range } : {}) };
}

export function poolOf(subnet: Subnet, gateway?: number, range?: Subnet): IpamPool {
  return {
    Subnet: formatCidr(subnet),
    Gateway: formatIPv4(gateway ?? subnet.base + 1),
    ...(range ? { IPRange: formatCidr(range) } : {}),
  };
}

/**
 * The next free address of a pool (lowest first, like dockerd), or the requested one when it
 * is valid and free. Network address, broadcast and gateway are never handed out.
 */
export function allocateAddress(pool: IpamPool, used: Set<string>, requested?: string): string {
  const subnet = parseCidr(pool.Subnet)!;
  const gateway = parseIPv4(pool.Gateway);
  const reserved = (ip: number): boolean => ip === subnet.base || ip === lastAddress(subnet) || ip === gateway || used.has(formatIPv4(ip));
  if (requested) {
    const ip = parseIPv4(requested);
    if (ip === undefined) throw invalidArgument(`invalid IPv4 address: ${requested}`);
    if (!contains(subnet, ip)) throw invalidArgument(`Invalid address ${requested}: It does not belong to any of this network's subnets`);
    if (reserved(ip)) throw invalidArgument(`Address already in use`);
    return requested;
  }
  const range = pool.IPRange ? parseCidr(pool.IPRange)! : subnet;
  for (let ip = range.base; ip <= lastAddress(range); ip++) {
    if (!reserved(ip)) return formatIPv4(ip);
  }
  throw invalidArgument(`no available addresses on this pool`);
}

/** dockerd's MAC for an IPv4 address: 02:42 followed by the four address bytes. */
export function macFor(ip: string): string {
  const value = parseIPv4(ip) ?? 0;
  const bytes = [0x02, 0x42, value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}
