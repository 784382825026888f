import { createServer, type Server } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';
import { conflict, errnoCode, invalidArgument } from '../../common/errors.js';
import { parseIPv4 } from '../../common/ipv4.js';
import type { PortMapping } from './model.js';

/**
 * Published ports: what the user asked for (HostConfig.PortBindings, PublishAllPorts with
 * ExposedPorts) and the host ports Berth holds for running containers.
 *
 * Packets reach a container through DNAT rules (firewall.ts); nothing is proxied in Berth. To
 * own a host port (so that two containers, another Berth instance or a host service cannot
 * take it too) Berth keeps a socket bound to it while the container runs: a bind failure is
 * the port conflict, and an ephemeral port (`-P`, `-p 80`) is whatever the kernel hands out
 * for port 0. The socket never sees a packet: DNAT happens before the socket lookup.
 */

export type PortBindings = Record<string, { HostIp: string; HostPort: string }[] | null>;

export interface WantedBinding {
  proto: 'tcp' | 'udp';
  containerPort: number;
  hostIp: string;
  /** Inclusive host port range; undefined for an ephemeral port. */
  hostPorts?: [number, number];
}

const PORT_KEY = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/;

function portNumber(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n < 1 || n > 65535) throw invalidArgument(`invalid ${what} port: ${text}`);
  return n;
}

/** Validates PortBindings as the docker CLI and Compose send them; returns the normalised map. */
export function normalisePortBindings(raw: unknown): PortBindings {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidArgument('invalid PortBindings: must be an object');
  const out: PortBindings = {};
  for (const [key, list] of Object.entries(raw as Record<string, unknown>)) {
    const m = PORT_KEY.exec(key);
    if (!m) throw invalidArgument(`invalid port specification: "${key}"`);
    portNumber(m[1]!, 'container');
    if (m[2] === 'sctp') throw invalidArgument('publishing sctp ports is not supported');
    const normalKey = `${Number(m[1])}/${m[2] ?? 'tcp'}`;
    if (list === null) {
      out[normalKey] = null;
      continue;
    }
    if (!Array.isArray(list)) throw invalidArgument(`invalid PortBindings for ${key}: must be a list`);
    out[normalKey] = list.map((item: unknown) => {
      const b = (item ?? {}) as { HostIp?: unknown; HostPort?: unknown };
      const hostIp = typeof b.HostIp === 'string' ? b.HostIp : '';
      const hostPort = typeof b.HostPort === 'string' ? b.HostPort : b.HostPort === undefined || b.HostPort === null ? '' : String(b.HostPort);
      if (hostIp !== '' && parseIPv4(hostIp) === undefined) {
        if (hostIp.includes(':')) throw invalidArgument(`publishing on IPv6 host addresses (${hostIp}) is not supported`);
        throw invalidArgument(`invalid IP address: ${hostIp}`);
      }
      if (hostPort !== '') parseHostPorts(hostPort);
      return { HostIp: hostIp, HostPort: hostPort };
    });
  }
  return out;
}

function parseHostPorts(text: string): [number, number] {
  const [lo, hi] = text.split('-');
  const start = portNumber(lo!, 'host');
  const end = hi === undefined ? start : portNumber(hi, 'host');
  if (end < start) throw invalidArgument(`invalid host port range: ${text}`);
  return [start, end];
}

/** The bindings a start must make: explicit ones, then (with -P) every other exposed port. */
export function wantedBindings(bindings: PortBindings, exposed: Record<string, object> | undefined, publishAll: boolean): WantedBinding[] {
  const wanted: WantedBinding[] = [];
  const keys = new Set(Object.keys(bindings));
  for (const [key, list] of Object.entries(bindings)) {
    const [port, proto] = key.split('/') as [string, 'tcp' | 'udp'];
    for (const b of list ?? []) {
      wanted.push({ proto, containerPort: Number(port), hostIp: b.HostIp || '0.0.0.0', ...(b.HostPort ? { hostPorts: parseHostPorts(b.HostPort) } : {}) });
    }
  }
  if (publishAll) {
    for (const key of Object.keys(exposed ?? {})) {
      const m = PORT_KEY.exec(key);
      if (!m || m[2] === 'sctp') continue;
      const normalKey = `${Number(m[1])}/${m[2] ?? 'tcp'}`;
      if (keys.has(normalKey)) continue;
      wanted.push({ proto: (m[2] ?? 'tcp') as 'tcp' | 'udp', containerPort: Number(m[1]), hostIp: '0.0.0.0' });
    }
  }
  return wanted;
}

type Holder = { close(): void };

/** Host ports held by this Berth, per container. */
export class PortReservations {
  private readonly held = new Map<string, { mapping: PortMapping; holder: Holder }[]>();

  /** Every binding this instance holds, for conflict messages and listings. */
  all(): PortMapping[] {
    return [...this.held.values()].flat().map((h) => h.mapping);
  }

  /**
   * Takes host ports for one container, all or none. The error is Docker's: "Bind for
   * 0.0.0.0:8080 failed: port is already allocated" when a container of this Berth holds it,
   * the bind error otherwise.
   */
  async reserve(containerId: string, wanted: WantedBinding[], endpoint = ''): Promise<PortMapping[]> {
    const taken: { mapping: PortMapping; holder: Holder }[] = [];
    try {
      for (const w of wanted) taken.push(await this.reserveOne(w, [...this.all(), ...taken.map((t) => t.mapping)], endpoint));
    } catch (err) {
      for (const t of taken) t.holder.close();
      throw err;
    }
    const list = this.held.get(containerId) ?? [];
    list.push(...taken);
    this.held.set(containerId, list);
    return taken.map((t) => t.mapping);
  }

  /** Takes exactly these ports again (reconcile after a restart); failures are returned, not thrown. */
  async retake(containerId: string, mappings: PortMapping[]): Promise<unknown[]> {
    const errors: unknown[] = [];
    for (const m of mappings) {
      try {
        await this.reserve(containerId, [{ proto: m.proto, containerPort: m.containerPort, hostIp: m.hostIp, hostPorts: [m.hostPort, m.hostPort] }]);
      } catch (err) {
        errors.push(err);
      }
    }
    return errors;
  }

  release(containerId: string): void {
    for (const h of this.held.get(containerId) ?? []) h.holder.close();
    this.held.delete(containerId);
  }

  releaseAll(): void {
    for (const id of [...this.held.keys()]) this.release(id);
  }

  private async reserveOne(w: WantedBinding, current: PortMapping[], endpoint: string): Promise<{ mapping: PortMapping; holder: Holder }> {
    const clashes = (port: number): boolean =>
      current.some((m) => m.proto === w.proto && m.hostPort === port && (m.hostIp === '0.0.0.0' || w.hostIp === '0.0.0.0' || m.hostIp === w.hostIp));
    if (w.hostPorts === undefined) {
      const { port, holder } = await bindPort(w.proto, w.hostIp, 0);
      return { mapping: { proto: w.proto, containerPort: w.containerPort, hostIp: w.hostIp, hostPort: port }, holder };
    }
    const [lo, hi] = w.hostPorts;
    let lastError: unknown;
    for (let port = lo; port <= hi; port++) {
      if (clashes(port)) {
        lastError = conflict(`driver failed programming external connectivity on endpoint ${endpoint}: Bind for ${w.hostIp}:${port} failed: port is already allocated`);
        continue;
      }
      try {
        const { holder } = await bindPort(w.proto, w.hostIp, port);
        return { mapping: { proto: w.proto, containerPort: w.containerPort, hostIp: w.hostIp, hostPort: port }, holder };
      } catch (err) {
        lastError = conflict(
          `driver failed programming external connectivity on endpoint ${endpoint}: failed to bind port ${w.hostIp}:${port}/${w.proto}: listen ${w.proto}4 ${w.hostIp}:${port}: bind: ${errnoCode(err) === 'EADDRINUSE' ? 'address already in use' : String((err as Error).message)}`,
          err,
        );
      }
    }
    throw lastError;
  }
}

function bindPort(proto: 'tcp' | 'udp', hostIp: string, port: number): Promise<{ port: number; holder: Holder }> {
  return new Promise((resolve, reject) => {
    if (proto === 'tcp') {
      const server: Server = createServer((socket) => socket.destroy());
      server.once('error', reject);
      server.listen({ host: hostIp, port, exclusive: true, backlog: 1 }, () => {
        server.off('error', reject);
        const address = server.address();
        const bound = typeof address === 'object' && address ? address.port : port;
        resolve({ port: bound, holder: { close: () => server.close() } });
      });
      server.unref();
    } else {
      const socket: Socket = createSocket({ type: 'udp4', reuseAddr: false });
      socket.once('error', reject);
      socket.bind({ address: hostIp, port, exclusive: true }, () => {
        socket.off('error', reject);
        resolve({ port: socket.address().port, holder: { close: () => socket.close() } });
      });
      socket.unref();
    }
  });
}
