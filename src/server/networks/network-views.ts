import { invalidArgument } from '../../common/errors.js';
import type { Filters } from '../list-filters.js';
import type { NetworkRecord } from './model.js';
import { labelMatches } from '../list-filters.js';

/** GET /networks and /networks/{id} documents, shaped as dockerd's. */
export function networkView(network: NetworkRecord, containers: Record<string, unknown>): Record<string, unknown> {
  return {
    Name: network.name,
    Id: network.id,
    Created: network.created,
    Scope: 'local',
    Driver: network.driver,
    EnableIPv6: false,
    IPAM: {
      Driver: network.ipam.Driver,
      Options: network.ipam.Options,
      Config: network.ipam.Config.map((c) => ({ Subnet: c.Subnet, ...(c.IPRange ? { IPRange: c.IPRange } : {}), Gateway: c.Gateway })),
    },
    Internal: network.internal,
    Attachable: network.attachable,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: network.options,
    Labels: network.labels,
  };
}

const NETWORK_FILTERS = new Set(['driver', 'id', 'label', 'label!', 'name', 'scope', 'type', 'dangling', 'until']);
const PREDEFINED = new Set(['bridge', 'host', 'none']);


/** `docker network ls` filters: values of one key ORed, keys ANDed (labels ANDed). */
export function selectNetworks(records: NetworkRecord[], f: Filters, inUse: (id: string) => boolean): NetworkRecord[] {
  for (const key of Object.keys(f)) if (!NETWORK_FILTERS.has(key)) throw invalidArgument(`invalid filter '${key}'`);
  for (const t of f.type ?? []) if (t !== 'custom' && t !== 'builtin') throw invalidArgument(`invalid filter: 'type'='${t}'`);
  const untilMs = f.until?.[0] ? parseUntil(f.until[0]) : undefined;
  return records
    .filter((n) => {
      if (f.driver && !f.driver.includes(n.driver)) return false;
      if (f.id && !f.id.some((v) => n.id.startsWith(v))) return false;
      if (f.name && !f.name.some((v) => n.name.includes(v))) return false;
      if (f.label && !f.label.every((v) => labelMatches(n.labels, v))) return false;
      if (f['label!'] && f['label!'].some((v) => labelMatches(n.labels, v))) return false;
      if (f.scope && !f.scope.includes('local')) return false;
      if (f.type && !f.type.includes(PREDEFINED.has(n.name) ? 'builtin' : 'custom')) return false;
      if (f.dangling) {
        const wantDangling = f.dangling.includes('true') || f.dangling.includes('1');
        const dangling = !PREDEFINED.has(n.name) && !inUse(n.id);
        if (dangling !== wantDangling) return false;
      }
      if (untilMs !== undefined && Date.parse(n.created) >= untilMs) return false;
      return true;
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

function parseUntil(value: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const d = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(value);
  if (d && value !== '') return Date.now() - (Number(d[1] ?? 0) * 3600 + Number(d[2] ?? 0) * 60 + Number(d[3] ?? 0)) * 1000;
  const parsed = Date.parse(value);
  if (Number.isNaN(parsed)) throw invalidArgument(`invalid filter 'until=${value}'`);
  return parsed;
}
