import { runTool } from './command.js';

/**
 * VXLAN devices that stretch a bridge network across hosts (docs/cluster.md, "Networks across
 * hosts"). Learning is off and there are no flood entries: every remote container is one FDB
 * entry (its MAC behind its host's address) and one permanent neighbour entry (its IP → MAC)
 * answered locally by the device (`proxy`), so no ARP leaves the host and a host's bridge
 * never answers for another host's gateway. All entries are given by the control plane.
 */

export const VXLAN_PORT = 4789;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers. */
export const VXLAN_OVERHEAD = 50;

export interface VxlanDevice {
  name: string;
  vni: number;
  /** Underlay address of this host (the agent's advertise address). */
  local: string;
  bridge: string;
}

export interface RemoteEntry {
  mac: string;
  ip: string;
  /** Underlay address of the host running it. */
  host: string;
}

/** MTU of the interface holding `address` (the underlay), 1500 when none does. */
export async function underlayMtu(address: string): Promise<number> {
  const out = await runTool('ip', ['-j', '-4', 'addr', 'show']);
  const links = JSON.parse(out || '[]') as { mtu: number; addr_info?: { local: string }[] }[];
  return links.find((l) => (l.addr_info ?? []).some((a) => a.local === address))?.mtu ?? 1500;
}

/** Names (and VNIs) of the VXLAN devices whose names start with `prefix`. */
export async function listVxlans(prefix: string): Promise<{ name: string; vni: number; local?: string }[]> {
  const out = await runTool('ip', ['-j', '-d', 'link', 'show', 'type', 'vxlan']);
  const links = JSON.parse(out || '[]') as { ifname: string; linkinfo?: { info_data?: { id?: number; local?: string } } }[];
  return links
    .filter((l) => l.ifname.startsWith(prefix))
    .map((l) => ({ name: l.ifname, vni: l.linkinfo?.info_data?.id ?? 0, ...(l.linkinfo?.info_data?.local ? { local: l.linkinfo.info_data.local } : {}) }));
}

/**
 * Creates the device (or recreates it when its VNI or local address changed), enslaves it to
 * the bridge and lowers the bridge's MTU to the device's, idempotently. Containers attached to
 * the bridge afterwards get its MTU on both veth ends from the helper (veth-netlink.c).
 */
export async function ensureVxlan(device: VxlanDevice, existing: { vni: number; local?: string } | undefined): Promise<void> {
  const mtu = (await underlayMtu(device.local)) - VXLAN_OVERHEAD;
  const lines: string[] = [];
  if (existing && (existing.vni !== device.vni || existing.local !== device.local)) lines.push(`link del ${device.name}`);
  if (!existing || existing.vni !== device.vni || existing.local !== device.local) {
    lines.push(`link add ${device.name} type vxlan id ${device.vni} local ${device.local} dstport ${VXLAN_PORT} nolearning proxy`);
  }
  lines.push(`link set ${device.name} mtu ${mtu}`, `link set ${device.bridge} mtu ${mtu}`, `link set ${device.name} master ${device.bridge} up`);
  await runTool('ip', ['-batch', '-'], `${lines.join('\n')}\n`);
}

/**
 * Makes the device's FDB and neighbour entries exactly `wanted`: stale ones go, missing or
 * changed ones are replaced. Entries the kernel adds itself (the device's own MAC) are left.
 */
export async function syncEntries(device: string, wanted: RemoteEntry[]): Promise<void> {
  const [fdbOut, neighOut] = await Promise.all([
    runTool('bridge', ['-j', 'fdb', 'show', 'dev', device]),
    runTool('ip', ['-j', '-4', 'neigh', 'show', 'dev', device]),
  ]);
  const fdb = (JSON.parse(fdbOut || '[]') as { mac: string; dst?: string }[]).filter((e) => e.dst !== undefined);
  const neigh = JSON.parse(neighOut || '[]') as { dst: string; lladdr?: string }[];
  const wantedMacs = new Map(wanted.map((e) => [e.mac, e.host]));
  const wantedIps = new Map(wanted.map((e) => [e.ip, e.mac]));
  const bridgeLines: string[] = [];
  const ipLines: string[] = [];
  for (const e of fdb) if (wantedMacs.get(e.mac) !== e.dst) bridgeLines.push(`fdb del ${e.mac} dev ${device} dst ${e.dst}`);
  for (const e of neigh) if (wantedIps.get(e.dst) !== e.lladdr) ipLines.push(`neigh del ${e.dst} dev ${device}`);
  const haveFdb = new Set(fdb.map((e) => `${e.mac}@${e.dst}`));
  const haveNeigh = new Set(neigh.map((e) => `${e.dst}@${e.lladdr}`));
  for (const e of wanted) {
    if (!haveFdb.has(`${e.mac}@${e.host}`)) bridgeLines.push(`fdb replace ${e.mac} dev ${device} dst ${e.host} self permanent`);
    if (!haveNeigh.has(`${e.ip}@${e.mac}`)) ipLines.push(`neigh replace ${e.ip} lladdr ${e.mac} dev ${device} nud permanent`);
  }
  if (bridgeLines.length > 0) await runTool('bridge', ['-force', '-batch', '-'], `${bridgeLines.join('\n')}\n`);
  if (ipLines.length > 0) await runTool('ip', ['-force', '-batch', '-'], `${ipLines.join('\n')}\n`);
}
