import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../common/logging.js';
import {
  buildResponse,
  parseQuestion,
  RCODE_NOERROR,
  RCODE_SERVFAIL,
  reverseNameToIp,
  TYPE_A,
  TYPE_AAAA,
  TYPE_PTR,
  type Answer,
} from './dns-message.js';

/** Names and addresses of one network's running containers, as the resolver sees them. */
export interface DnsRecords {
  /** IPv4 addresses of a name (container name, alias, short id) on the network; [] if none. */
  addressesOf(networkId: string, name: string): string[];
  /** The container name holding `ip` on the network, for PTR queries. */
  nameOf(networkId: string, ip: string): string | undefined;
  /**
   * The networks whose names the container holding `ip` on `networkId` may resolve: that
   * network first, then the container's other user-defined networks (dockerd answers a
   * container for every network it is on, whichever resolver address it asked).
   */
  networksOf(networkId: string, ip: string): string[];
}

export interface Upstream {
  host: string;
  port: number;
}

/**
 * The embedded DNS server of user-defined networks. dockerd listens on 127.0.0.11 inside
 * every container's namespace; Berth listens once per network on the bridge's gateway
 * address, port 53 (UDP and TCP), in its own process, and containers' resolv.conf names that
 * address.
 * Names of containers on the same network are answered here (A; AAAA with no records; PTR);
 * every other query is relayed unchanged to the upstream resolvers.
 */
export class EmbeddedDns {
  private readonly sockets = new Map<string, Socket>();
  private readonly tcpServers = new Map<string, Server>();
  private readonly upstreams: Promise<Upstream[]>;

  constructor(
    private readonly records: DnsRecords,
    private readonly log: Logger,
    upstreams: string[] | undefined,
  ) {
    this.upstreams = upstreams && upstreams.length > 0 ? Promise.resolve(upstreams.map(parseUpstream)) : hostResolvers();
  }

  /** Serves `networkId` on gatewayIp:53; a second call for the same network is a no-op. */
  async listen(networkId: string, gatewayIp: string): Promise<void> {
    if (this.sockets.has(networkId)) return;
    const socket = createSocket({ type: 'udp4' });
    socket.on('message', (msg, rinfo) => {
      void this.answer(networkId, msg, rinfo.address).then((reply) => {
        if (reply) socket.send(reply, rinfo.port, rinfo.address);
      });
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: gatewayIp, port: 53 }, () => {
        socket.off('error', reject);
        socket.on('error', (err) => this.log.warn({ err, networkId }, 'embedded DNS socket error'));
        resolve();
      });
    });
    this.sockets.set(networkId, socket);
    // TCP: what resolvers fall back to for long answers (messages framed by a 2-byte length).
    const server = createServer((conn) => this.serveTcp(networkId, conn));
    server.on('error', (err) => this.log.warn({ err, networkId }, 'embedded DNS (tcp) error'));
    await new Promise<void>((resolve) => {
      server.once('error', () => resolve());
      server.listen({ host: gatewayIp, port: 53 }, () => resolve());
    });
    this.tcpServers.set(networkId, server);
  }

  private serveTcp(networkId: string, conn: TcpSocket): void {
    let buffered = Buffer.alloc(0);
    conn.setTimeout(10_000, () => conn.destroy());
    conn.on('error', () => conn.destroy());
    conn.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const msg = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + msg.length);
        void this.answer(networkId, Buffer.from(msg), conn.remoteAddress).then((reply) => {
          if (!reply || conn.destroyed) return;
          const length = Buffer.alloc(2);
          length.writeUInt16BE(reply.length);
          conn.write(Buffer.concat([length, reply]));
        });
      }
    });
  }

  stop(networkId: string): void {
    this.sockets.get(networkId)?.close();
    this.sockets.delete(networkId);
    this.tcpServers.get(networkId)?.close();
    this.tcpServers.delete(networkId);
  }

  close(): void {
    for (const id of [...this.sockets.keys()]) this.stop(id);
  }

  /**
   * The networks a query is answered from: the one it came in on, then the querier's other
   * networks. Those are found by a scan of every sandbox, so only when the first misses.
   */
  private *scopeOf(networkId: string, source: string | undefined): Generator<string> {
    yield networkId;
    if (source === undefined) return;
    yield* this.records.networksOf(networkId, source.replace(/^::ffff:/, '')).slice(1);
  }

  private async answer(networkId: string, msg: Buffer, source: string | undefined): Promise<Buffer | undefined> {
    const q = parseQuestion(msg);
    if (!q) return undefined;
    const name = q.name.toLowerCase().replace(/\.$/, '');
    const scope = (): Iterable<string> => this.scopeOf(networkId, source);
    if (q.class === 1 && (q.type === TYPE_A || q.type === TYPE_AAAA)) {
      for (const network of scope()) {
        const ips = this.records.addressesOf(network, name);
        if (ips.length === 0) continue;
        const answers: Answer[] = q.type === TYPE_A ? ips.map((ip) => ({ type: TYPE_A, ip })) : [];
        return buildResponse(msg, q, RCODE_NOERROR, answers);
      }
    }
    if (q.class === 1 && q.type === TYPE_PTR) {
      const ip = reverseNameToIp(name);
      for (const network of ip ? scope() : []) {
        const holder = this.records.nameOf(network, ip!);
        if (holder) return buildResponse(msg, q, RCODE_NOERROR, [{ type: TYPE_PTR, name: holder }]);
      }
    }
    const relayed = await this.forward(msg);
    return relayed ?? buildResponse(msg, q, RCODE_SERVFAIL, []);
  }

  /** Relays the query to each upstream in turn until one answers within 2 s. */
  private async forward(msg: Buffer): Promise<Buffer | undefined> {
    for (const upstream of await this.upstreams) {
      const reply = await relay(msg, upstream, 2000);
      if (reply) return reply;
    }
    return undefined;
  }
}

function relay(msg: Buffer, upstream: Upstream, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket(upstream.host.includes(':') ? 'udp6' : 'udp4');
    const done = (reply: Buffer | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('message', (reply) => {
      if (reply.length >= 2 && reply.readUInt16BE(0) === msg.readUInt16BE(0)) done(reply);
    });
    socket.on('error', () => done(undefined));
    socket.send(msg, upstream.port, upstream.host);
  });
}

/** "10.0.0.53", "127.0.0.5:5353", "[::1]:53" → host and port. */
export function parseUpstream(text: string): Upstream {
  const bracketed = /^\[(.+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return { host: bracketed[1]!, port: Number(bracketed[2] ?? 53) };
  const [host, port] = text.split(':');
  return text.split(':').length === 2 ? { host: host!, port: Number(port) } : { host: text, port: 53 };
}

/** The host's resolvers from /etc/resolv.conf (Berth runs on the host: loopback ones work too). */
async function hostResolvers(): Promise<Upstream[]> {
  const text = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => ({ host: m[1]!, port: 53 }));
}
