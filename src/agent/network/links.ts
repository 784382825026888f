import { writeFile } from 'node:fs/promises';
import { runTool } from './command.js';
import { deleteHostLinks, plugVeths } from './veth-helper.js';

/**
 * Bridges and veth pairs on the host, driven through iproute2. Names are chosen by the caller
 * (the network service) so that they are unique per Berth instance; this module never
 * touches a link whose name it was not given.
 */

export interface HostLink {
  name: string;
  kind: string | undefined;
}

/** Links whose names start with `prefix`, with their kind (bridge, veth). */
export async function listLinks(prefix: string): Promise<HostLink[]> {
  const out = await runTool('ip', ['-j', '-d', 'link', 'show']);
  const links = JSON.parse(out || '[]') as { ifname: string; linkinfo?: { info_kind?: string } }[];
  return links.filter((l) => l.ifname.startsWith(prefix)).map((l) => ({ name: l.ifname, kind: l.linkinfo?.info_kind }));
}

/**
 * Creates the bridge with its gateway address, up, idempotently. route_localnet lets
 * connections to 127.0.0.1 that the output chain DNATs to a container leave through the
 * bridge (the kernel drops loopback sources on other interfaces otherwise).
 */
export async function ensureBridge(name: string, gatewayCidr: string): Promise<void> {
  const existing = await runTool('ip', ['-j', 'addr', 'show', 'dev', name]).catch(() => undefined);
  const lines: string[] = [];
  if (existing === undefined) lines.push(`link add ${name} type bridge`);
  const addresses = existing ? (JSON.parse(existing) as { addr_info?: { local: string; prefixlen: number; family: string }[] }[]) : [];
  const has = addresses.some((l) => (l.addr_info ?? []).some((a) => `${a.local}/${a.prefixlen}` === gatewayCidr));
  if (!has) lines.push(`addr replace ${gatewayCidr} dev ${name}`);
  lines.push(`link set ${name} up`);
  await runTool('ip', ['-batch', '-'], `${lines.join('\n')}\n`);
  await writeFile(`/proc/sys/net/ipv4/conf/${name}/route_localnet`, '1');
}

/** Deletes one link; a missing one is no error. */
export async function deleteLink(name: string): Promise<void> {
  await deleteHostLinks([name]);
}

/** One interface of a container: a veth pair between the namespace and a bridge. */
export interface VethAttachment {
  /** Name inside the container (eth0, eth1, ...). */
  ifName: string;
  /** Name of the host end, unique per Berth instance. */
  hostName: string;
  bridge: string;
  mac: string;
  /** "172.18.0.2/16" */
  addressCidr: string;
  /** Default route through this interface's gateway (only one interface gets it). */
  defaultGateway?: string;
}

/** Hot-plugs one more interface into an existing namespace (network connect of a running container), in one helper request. */
export async function attachVeth(netnsPath: string, veth: VethAttachment): Promise<void> {
  await plugVeths(netnsPath, [veth]);
}

/** Deletes links in one helper request, best effort: a failure leaves the rest to the next reconcile. */
export async function deleteLinks(names: string[]): Promise<void> {
  await deleteHostLinks(names).catch(() => undefined);
}

/** Puts host veth ends (back) on their bridges, e.g. after a bridge was recreated. Missing ones are reported. */
export async function enslave(pairs: { veth: string; bridge: string }[]): Promise<string[]> {
  const present = new Set((await listLinks('')).map((l) => l.name));
  const missing = pairs.filter((p) => !present.has(p.veth)).map((p) => p.veth);
  const lines = pairs.filter((p) => present.has(p.veth)).map((p) => `link set ${p.veth} master ${p.bridge} up`);
  if (lines.length > 0) await runTool('ip', ['-batch', '-'], `${lines.join('\n')}\n`);
  return missing;
}

/**
 * Removes an interface from a container (network disconnect): deleting the host end deletes
 * the pair, so the container's end goes with it in the same step, without entering its namespace.
 */
export async function detachVeth(hostName: string): Promise<void> {
  await deleteLink(hostName);
}

/** Subnets of every IPv4 route and address on the host (any table), for overlap checks. */
export async function hostIPv4Prefixes(): Promise<string[]> {
  const [routes, addrs] = await Promise.all([
    runTool('ip', ['-j', '-4', 'route', 'show', 'table', 'all']),
    runTool('ip', ['-j', '-4', 'addr', 'show']),
  ]);
  const out: string[] = [];
  for (const r of JSON.parse(routes || '[]') as { dst: string; type?: string }[]) {
    if (r.dst === 'default' || r.type === 'broadcast') continue;
    out.push(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
  }
  for (const l of JSON.parse(addrs || '[]') as { addr_info?: { local: string; prefixlen: number }[] }[]) {
    for (const a of l.addr_info ?? []) out.push(`${a.local}/${a.prefixlen}`);
  }
  return out;
}
