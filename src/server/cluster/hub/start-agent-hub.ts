import { hostname, networkInterfaces } from 'node:os';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { conflict, invalidArgument } from '../../../common/errors.js';
import type { Logger } from '../../../common/logging.js';
import { JOIN_ALPN, TUNNEL_ALPN, type HostStatus } from '../../../common/agent-protocol.js';
import type { Store } from '../../store/store.js';
import { HOST_ORGANIZATION, normaliseSerial, type CertificateAuthority } from '../../tenancy/pki.js';
import type { AgentHub, ClusterHost } from '../agent-hub.js';
import { JoinTokens } from '../join-tokens.js';
import { HostRegistry, type HostDetail, type HostRecord } from './host-registry.js';
import { HostSessions } from './host-sessions.js';
import { handleJoin } from './join-handler.js';
import type { Duplex } from 'node:stream';

export interface AgentHubOptions {
  store: Store;
  ca: CertificateAuthority;
  /** Where agents dial in: tcp://IP:PORT (port 0: any free port, see `address`). */
  listen: string;
  logger: Logger;
  /** A host without a heartbeat for this long is down (default 5 s). */
  downTimeoutMs?: number;
  /** Moves a drained host's containers elsewhere (the server's composition supplies it). */
  onDrain?: (host: ClusterHost) => Promise<void>;
  /** Extra DNS names or IPs for the agents' listener certificate. */
  tlsSan?: string[];
  /** Other servers write the same store (etcd): follow their host writes (cluster/ha). */
  sharedStore?: boolean;
}

/** What the hosts admin API (admin-api/hosts.ts) does through the hub. */
export interface HostAdmin {
  list(): HostDetail[];
  inspect(ref: string): HostDetail;
  label(ref: string, add: Record<string, string>, remove: string[]): Promise<HostDetail>;
  cordon(ref: string): Promise<HostDetail>;
  uncordon(ref: string): Promise<HostDetail>;
  drain(ref: string): Promise<HostDetail>;
  /** Refuses an up host that has containers unless `force`; the agent is disconnected and refused from then on. */
  remove(ref: string, force: boolean): Promise<HostDetail>;
  joinTokens: JoinTokens;
}

export type RunningAgentHub = AgentHub & {
  admin: HostAdmin;
  /** The address agents dial (with the real port when `listen` named 0). */
  address: { host: string; port: number };
  close(): Promise<void>;
};

/**
 * The control plane's end of the agents' transport (docs/cluster.md): a TLS listener where
 * agents join (token → host certificate) and then keep one mutually authenticated HTTP/2
 * connection each, a registry of hosts in the store, and a timer marking silent hosts down.
 */
export async function startAgentHub(options: AgentHubOptions): Promise<RunningAgentHub> {
  const { store, ca, logger } = options;
  const downTimeoutMs = options.downTimeoutMs ?? 5000;
  const listen = parseTcp(options.listen);
  const registry = new HostRegistry(store);
  await registry.load();
  // Servers sharing the store (etcd) learn of each other's joins, labels and removals.
  const hostWatch = options.sharedStore ? await store.watch?.<HostRecord>('host', (change) => registry.absorb(change.id, change.record)) : undefined;
  const tokens = new JoinTokens(store, ca.fingerprint);
  const sessions = new HostSessions(logger, (hostId, status: HostStatus) => {
    registry.heartbeat(hostId, status).catch((err: unknown) => logger.error({ err, hostId }, 'cannot record a heartbeat'));
  });
  const identity = await ca.serverIdentity(listenerNames(listen.host, options.tlsSan ?? []), 'agent-listener');

  const server: TlsServer = createTlsServer(
    {
      key: identity.keyPem,
      // The CA goes with the leaf: a joining agent pins it by fingerprint before it trusts anything.
      cert: identity.certPem + identity.caPem,
      ca: identity.caPem,
      requestCert: true,
      // Unauthorised peers are refused in HTTP/2 with a reason, not by a bare TLS alert.
      rejectUnauthorized: false,
      ALPNProtocols: [TUNNEL_ALPN, JOIN_ALPN],
      minVersion: 'TLSv1.3',
    },
    (socket) => {
      socket.on('error', (err) => logger.debug({ err, remote: socket.remoteAddress }, 'agent connection error'));
      if (socket.alpnProtocol === JOIN_ALPN) {
        void handleJoin(socket, { tokens, registry, ca, logger });
        return;
      }
      if (socket.alpnProtocol !== TUNNEL_ALPN) {
        socket.destroy();
        return;
      }
      void (async () => {
        let refusal = hostOf(socket);
        // With a shared store the host may have joined at another server an instant ago.
        if (typeof refusal === 'string' && options.sharedStore && socket.authorized) {
          await registry.refresh().catch((err: unknown) => logger.warn({ err }, 'cannot re-read hosts'));
          refusal = hostOf(socket);
        }
        if (typeof refusal === 'string') {
          logger.warn({ remote: socket.remoteAddress, reason: refusal }, 'agent refused');
          sessions.refuse(socket, refusal);
          return;
        }
        logger.info({ hostId: refusal.id, name: refusal.name }, 'agent connected');
        sessions.attach(refusal.id, socket);
      })();
    },
  );
  server.on('tlsClientError', (err) => logger.debug({ err }, 'agent TLS handshake failed'));

  /** The host an authenticated socket belongs to, or why it is refused. */
  const hostOf = (socket: TLSSocket): { id: string; name: string } | string => {
    if (!socket.authorized) return `the certificate was not issued by this control plane (${String(socket.authorizationError ?? 'no certificate')})`;
    const peer = socket.getPeerCertificate();
    const raw = peer.raw ? new X509Certificate(peer.raw) : undefined;
    if (!raw || !/(^|\n)O=berth-host(\n|$)/.test(raw.subject)) return `not a host certificate (only certificates issued at join, O=${HOST_ORGANIZATION}, open a tunnel)`;
    const record = registry.bySerial(normaliseSerial(peer.serialNumber));
    if (!record) return 'this host was removed from the cluster (berth host rm); join again with a new token';
    if (!raw.subject.includes(`CN=${record.id}`)) return 'the host certificate does not name this host';
    return { id: record.id, name: record.value.name };
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as { address: string; port: number };
  const expiry = setInterval(() => registry.expire(downTimeoutMs), Math.max(50, Math.min(500, downTimeoutMs / 5)));
  expiry.unref();
  logger.info({ listen: `${bound.address}:${bound.port}`, downTimeoutMs }, 'listening for agents');

  // A silent host's connection is dead or worse (a stream opened on it would hang): drop it.
  registry.on('host-down', (host: ClusterHost) => sessions.drop(host.id));

  const admin: HostAdmin = {
    list: () => registry.hosts(),
    inspect: (ref) => registry.get(ref),
    label: (ref, add, remove) => registry.label(ref, add, remove),
    cordon: (ref) => registry.setCordon(ref, true),
    uncordon: (ref) => registry.setCordon(ref, false),
    drain: async (ref) => {
      const host = await registry.setCordon(ref, true);
      if (options.onDrain) await options.onDrain(host);
      return registry.get(host.id);
    },
    remove: async (ref, force) => {
      const host = registry.get(ref);
      if (host.state === 'up' && host.containerCount > 0 && !force) {
        throw conflict(`host ${host.name} is up and has ${host.containerCount} containers: drain it first, or remove it with --force`);
      }
      const removed = await registry.remove(host.id);
      sessions.disconnect(host.id, 'this host was removed from the cluster (berth host rm); join again with a new token');
      return removed;
    },
    joinTokens: tokens,
  };

  const hub: RunningAgentHub = {
    hosts: () => registry.hosts(),
    host: (ref) => {
      try {
        return registry.host(ref);
      } catch {
        return undefined;
      }
    },
    openStream: (hostId): Promise<Duplex> => {
      const host = registry.get(hostId);
      return sessions.openStream(host.id, host.name);
    },
    on(event, listener) {
      registry.on(event, listener);
      return this;
    },
    off(event, listener) {
      registry.off(event, listener);
      return this;
    },
    admin,
    address: { host: bound.address, port: bound.port },
    close: async () => {
      clearInterval(expiry);
      await hostWatch?.close().catch(() => undefined);
      sessions.closeAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return hub;
}

function parseTcp(listen: string): { host: string; port: number } {
  if (!listen.startsWith('tcp://')) throw invalidArgument(`invalid agent listen address ${listen}: use tcp://IP:PORT`);
  const url = new URL(listen.replace(/^tcp:/, 'http:'));
  const port = Number(url.port || 0);
  return { host: url.hostname.replace(/^\[|\]$/g, '') || '0.0.0.0', port };
}

/** Names for the listener's certificate: the listen address, or every local address for a wildcard. */
function listenerNames(host: string, extra: string[]): string[] {
  const names = new Set<string>([hostname(), ...extra]);
  if (host === '0.0.0.0' || host === '::') {
    for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) names.add(i.address.replace(/%.*$/, ''));
  } else names.add(host);
  return [...names];
}
