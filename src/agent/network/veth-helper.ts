import { helperServer } from './helper-server.js';
import type { IdRange } from '../userns/id-range.js';
import type { VethAttachment } from './links.js';

/**
 * Attaching a container to its networks through the native helper's net-* commands
 * (native/berth-userns.c with native/veth-netlink.c): one process makes the namespace (or
 * enters it), creates every veth pair with the container end inside and the host end in
 * Berth's namespace, addresses and routes the container ends and puts the host ends on their
 * bridges, all over rtnetlink, run by the resident helper server (helper-server.ts): no
 * process start from Node per attach, where there used to be two spawns of `ip` behind
 * unshare or nsenter and those process starts were most of an attach (docs/benchmarks.md).
 * The helper deletes the pairs it made when a step fails; the namespace files stay the
 * caller's to remove.
 */

/** The helper's six arguments per veth: IFNAME HOST_END BRIDGE MAC ADDRESS/LEN GATEWAY|-. */
export function vethArgs(veths: VethAttachment[]): string[] {
  return veths.flatMap((v) => [v.ifName, v.hostName, v.bridge, v.mac, v.addressCidr, v.defaultGateway ?? '-']);
}

/** A namespace owned by a new user namespace of `range`, pinned on `usernsFile`. */
export interface UsernsOwner {
  range: IdRange;
  usernsFile: string;
}

/**
 * Makes a network namespace pinned on `netnsFile` (an existing empty file) with lo up and the
 * veths plugged. With `owner` the namespace belongs to a new user namespace of its range.
 */
export async function createNetnsWithVeths(netnsFile: string, veths: VethAttachment[], owner?: UsernsOwner): Promise<void> {
  const args = owner
    ? ['net-new-userns', String(owner.range.base), String(owner.range.count), owner.usernsFile, netnsFile]
    : ['net-new', netnsFile];
  await helperServer.run([...args, ...vethArgs(veths)]);
}

/** Hot-plugs veths into the namespace pinned on `netnsFile` (network connect of a running container). */
export async function plugVeths(netnsFile: string, veths: VethAttachment[]): Promise<void> {
  await helperServer.run(['net-plug', netnsFile, ...vethArgs(veths)]);
}

/**
 * Deletes host links by name (a veth's host end takes the pair with it, a bridge its ports'
 * enslavement) in one helper request. A link that is already gone is no error: a container's
 * namespace may have taken its pairs first. Rejects with the kernel's reason for any other.
 */
export async function deleteHostLinks(names: string[]): Promise<void> {
  if (names.length === 0) return;
  await helperServer.run(['net-del', ...names]);
}
