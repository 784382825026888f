/**
 * IPv4 addresses and subnets as plain numbers: enough for IPAM, overlap checks and rule
 * rendering without a dependency. An address is an unsigned 32-bit integer.
 */

export interface Subnet {
  /** Network address (host bits zero). */
  base: number;
  prefix: number;
}

export function parseIPv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** "10.1.0.0/16" → subnet; host bits set ("10.1.0.5/16") are refused as dockerd does. */
export function parseCidr(text: string): Subnet | undefined {
  const [addr, len, extra] = text.trim().split('/');
  if (addr === undefined || len === undefined || extra !== undefined || !/^\d{1,2}$/.test(len)) return undefined;
  const ip = parseIPv4(addr);
  const prefix = Number(len);
  if (ip === undefined || prefix > 32) return undefined;
  return { base: (ip & maskOf(prefix)) >>> 0, prefix };
}

/** Like parseCidr but keeps the address part (for "ip/prefix" of an interface). */
export function parseAddressWithPrefix(text: string): { ip: number; subnet: Subnet } | undefined {
  const [addr, len] = text.split('/');
  const ip = addr === undefined ? undefined : parseIPv4(addr);
  const subnet = parseCidr(text);
  if (ip === undefined || subnet === undefined || len === undefined) return undefined;
  return { ip, subnet };
}

export function formatCidr(subnet: Subnet): string {
  return `${formatIPv4(subnet.base)}/${subnet.prefix}`;
}

export function subnetSize(subnet: Subnet): number {
  return 2 ** (32 - subnet.prefix);
}

export function lastAddress(subnet: Subnet): number {
  return (subnet.base + subnetSize(subnet) - 1) >>> 0;
}

export function contains(subnet: Subnet, ip: number): boolean {
  return ((ip & maskOf(subnet.prefix)) >>> 0) === subnet.base;
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  return a.base <= lastAddress(b) && b.base <= lastAddress(a);
}

/** Splits `pool` into subnets of `prefix` length, in order. */
export function* splitSubnet(pool: Subnet, prefix: number): Generator<Subnet> {
  if (prefix < pool.prefix) return;
  const step = 2 ** (32 - prefix);
  for (let base = pool.base; base <= lastAddress(pool); base += step) yield { base: base >>> 0, prefix };
}
