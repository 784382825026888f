import type { ContainerRecord } from '../containers/model.js';
import type { Filters } from '../list-filters.js';

/**
 * The `docker ps` filters that need network facts: `network` (name or id prefix of a network
 * the container is connected to), `publish` (a container port with a published binding, while
 * it runs) and `expose` (a port in Config.ExposedPorts). Port values take dockerd's forms:
 * `80`, `80/udp`, `8000-8080/tcp`; the protocol defaults to tcp.
 */

export interface ContainerNetworkFacts {
  networks: { id: string; name: string }[];
  /** "80/tcp" keys with a host binding (running containers only). */
  published: string[];
}

function portMatches(wanted: string, key: string): boolean {
  const [range = '', proto = 'tcp'] = wanted.split('/');
  const [port, keyProto] = key.split('/');
  if (keyProto !== proto) return false;
  const [lo, hi] = range.split('-').map(Number);
  const n = Number(port);
  return hi === undefined ? n === lo : n >= lo! && n <= hi;
}

export function matchesNetworkFilters(filters: Filters, record: ContainerRecord, facts: ContainerNetworkFacts | undefined): boolean {
  if (filters.network && !filters.network.some((v) => (facts?.networks ?? []).some((n) => n.name === v || n.id.startsWith(v)))) return false;
  if (filters.publish && !filters.publish.some((v) => (facts?.published ?? []).some((key) => portMatches(v, key)))) return false;
  const exposed = Object.keys(record.config.ExposedPorts ?? {}).map((k) => (k.includes('/') ? k : `${k}/tcp`));
  if (filters.expose && !filters.expose.some((v) => exposed.some((key) => portMatches(v, key)))) return false;
  return true;
}
