import { runTool } from './command.js';

/**
 * The packet rules of one Berth instance: one nftables table (family ip) that Berth renders
 * whole from its records and replaces in one `nft -f` transaction. Nothing else on the host
 * is touched: not the host's own tables, not other Berth instances' tables.
 *
 * Why the nft CLI with a text ruleset (not `nft -j`): the text form is what operators read in
 * `nft list table`, the whole table fits in one short file, and the "create, delete, define"
 * idiom makes the replacement atomic: packets see the old rules or the new ones, never none.
 *
 * Chains:
 * - published (jumped to from nat prerouting and output for local destinations): DNAT of
 *   published ports. Output covers connections from the host itself, 127.0.0.1 included
 *   (with route_localnet on the bridge and the masquerade below).
 * - postrouting: masquerade of traffic leaving a non-internal network (outbound NAT), of
 *   host-loopback sources sent into a bridge, and of hairpin traffic (a container reaching a
 *   published port of its own network).
 * - forward: internal networks have no way out or in; different networks of this instance
 *   cannot reach each other.
 * - input: containers do not reach the host itself (its services on any address, loopback
 *   included, which route_localnet would otherwise expose to crafted packets), except the
 *   embedded DNS on their own gateway, ping of the gateway, and replies to connections the
 *   host opened. Tenants share the host; its services are not theirs. (dockerd lets
 *   containers reach every host service.)
 */

export interface FirewallNetwork {
  bridge: string;
  /** CIDR */
  subnet: string;
  gateway: string;
  internal: boolean;
}

export interface FirewallPort {
  proto: 'tcp' | 'udp';
  /** '' or '0.0.0.0' for every local address. */
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

export interface FirewallModel {
  networks: FirewallNetwork[];
  ports: FirewallPort[];
}

const q = (name: string): string => `"${name}"`;

export function renderRuleset(table: string, model: FirewallModel): string {
  const published = model.ports.map((p) => {
    const dst = p.hostIp && p.hostIp !== '0.0.0.0' ? `ip daddr ${p.hostIp} ` : '';
    return `    ${dst}${p.proto} dport ${p.hostPort} dnat to ${p.containerIp}:${p.containerPort}`;
  });
  const postrouting: string[] = [];
  const forward: string[] = [];
  const input: string[] = ['    ct state established,related accept'];
  for (const n of model.networks) {
    input.push(`    iifname ${q(n.bridge)} ip daddr ${n.gateway} udp dport 53 accept`);
    input.push(`    iifname ${q(n.bridge)} ip daddr ${n.gateway} tcp dport 53 accept`);
    input.push(`    iifname ${q(n.bridge)} ip daddr ${n.gateway} icmp type echo-request accept`);
  }
  if (model.networks.length > 0) input.push(`    iifname { ${model.networks.map((n) => q(n.bridge)).join(', ')} } drop`);
  for (const n of model.networks) {
    if (!n.internal) postrouting.push(`    ip saddr ${n.subnet} oifname != ${q(n.bridge)} masquerade`);
    postrouting.push(`    oifname ${q(n.bridge)} ip saddr 127.0.0.0/8 masquerade`);
    postrouting.push(`    oifname ${q(n.bridge)} ip saddr ${n.subnet} ct status dnat masquerade`);
    if (n.internal) {
      forward.push(`    iifname ${q(n.bridge)} oifname != ${q(n.bridge)} drop`);
      forward.push(`    oifname ${q(n.bridge)} iifname != ${q(n.bridge)} drop`);
    }
  }
  forward.push('    ct status dnat accept');
  for (const n of model.networks) {
    const others = model.networks.filter((o) => o.bridge !== n.bridge).map((o) => q(o.bridge));
    if (others.length > 0) forward.push(`    iifname ${q(n.bridge)} oifname { ${others.join(', ')} } drop`);
  }
  return [
    `table ip ${table} {}`,
    `delete table ip ${table}`,
    `table ip ${table} {`,
    '  chain published {',
    ...published,
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    '    fib daddr type local jump published',
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    '    fib daddr type local jump published',
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...postrouting,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    ...forward,
    '  }',
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    ...input,
    '  }',
    '}',
    '',
  ].join('\n');
}

export async function applyRuleset(table: string, model: FirewallModel): Promise<void> {
  await runTool('nft', ['-f', '-'], renderRuleset(table, model));
}

export async function deleteTable(table: string): Promise<void> {
  await runTool('nft', ['delete', 'table', 'ip', table]).catch(() => undefined);
}

export async function tableExists(table: string): Promise<boolean> {
  return runTool('nft', ['list', 'table', 'ip', table]).then(
    () => true,
    () => false,
  );
}
