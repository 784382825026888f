import { createServer as createH2Server, type Http2Session, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { Server as HttpServer } from 'node:http';
import { connect, type TLSSocket } from 'node:tls';
import type { Logger } from '../../common/logging.js';
import {
  HEARTBEAT_PATH,
  REFUSAL_PREFIX,
  SESSION_WINDOW,
  TUNNEL_SETTINGS,
  TUNNEL_ALPN,
  TUNNEL_PATH,
  type HostStatus,
} from '../../common/agent-protocol.js';
import type { AgentIdentity } from './identity.js';
import { parseServerAddress, serverNameOptions } from './server-address.js';
import { asEngineConnection } from './engine-connection.js';

export interface TunnelOptions {
  identity: AgentIdentity;
  /** The engine's HTTP server; every tunnel stream becomes one of its connections. */
  engine: HttpServer;
  /** This host as a heartbeat reports it; `localAddress` is the agent's end of the connection. */
  status: (link: { localAddress: string }) => Promise<HostStatus>;
  heartbeatMs: number;
  logger: Logger;
  /** The control plane refused this host for good (removed, unknown certificate). */
  onRefused: (reason: string) => void;
}

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5_000;
const PING_EVERY_MS = 2_000;
const PING_TIMEOUT_MS = 5_000;

/**
 * The agent's end of its one connection to the control plane: it dials out (mutual TLS with
 * its host certificate), then serves HTTP/2 on that connection — heartbeats on one stream, and
 * each tunnel stream handed to the engine's HTTP server as a connection of its own. When the
 * connection drops it dials again with backoff; a refusal ends it.
 *
 * Lifecycle: start() → (connected ⇄ dialling)* → close() | onRefused.
 */
export class AgentTunnel {
  private closed = false;
  private socket: TLSSocket | undefined;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: TunnelOptions) {}

  start(): void {
    this.dial();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.socket?.destroy();
  }

  private dial(): void {
    if (this.closed) return;
    const { identity, logger } = this.options;
    const { host, port } = parseServerAddress(identity.server);
    const socket = connect({
      ...serverNameOptions(host),
      port,
      ca: identity.caPem,
      cert: identity.certPem,
      key: identity.keyPem,
      ALPNProtocols: [TUNNEL_ALPN],
      minVersion: 'TLSv1.3',
    });
    this.socket = socket;
    let refusal: string | undefined;
    let opened = false;
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== TUNNEL_ALPN) {
        socket.destroy(new Error(`the control plane does not speak ${TUNNEL_ALPN}`));
        return;
      }
      opened = true;
      this.serve(socket, (reason) => (refusal = reason));
    });
    socket.on('error', (err) => logger.warn({ server: identity.server, err: err.message }, 'connection to the control plane failed'));
    socket.once('close', () => {
      if (refusal !== undefined) {
        this.closed = true;
        logger.error({ reason: refusal }, 'the control plane refused this host');
        this.options.onRefused(refusal);
        return;
      }
      if (this.closed) return;
      // A connection that came up resets the backoff: the next failure is a fresh one.
      if (opened) this.attempt = 0;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt++) * (0.75 + Math.random() * 0.5);
      logger.info({ delayMs: Math.round(delay) }, 'dialling the control plane again');
      this.retryTimer = setTimeout(() => this.dial(), delay);
    });
  }

  /** Serves HTTP/2 on the connection the agent opened; `refused` records a GOAWAY's reason. */
  private serve(socket: TLSSocket, refused: (reason: string) => void): void {
    const { logger, identity } = this.options;
    const h2 = createH2Server({ settings: TUNNEL_SETTINGS });
    const remote = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    h2.on('session', (session: Http2Session) => {
      session.on('goaway', (_code: number, _last: number, data?: Buffer) => {
        const text = data?.toString('utf8') ?? '';
        if (text.startsWith(REFUSAL_PREFIX)) refused(text.slice(REFUSAL_PREFIX.length));
      });
      session.once('localSettings', () => {
        try {
          session.setLocalWindowSize(SESSION_WINDOW);
        } catch {
          // an older peer; the default window works, only slower
        }
      });
      session.on('error', (err) => logger.debug({ err }, 'tunnel session error'));
      session.once('close', () => socket.destroy());
      this.keepAlive(session);
      logger.info({ server: identity.server, hostId: identity.hostId }, 'connected to the control plane');
    });
    h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      stream.on('error', (err) => logger.debug({ err }, 'tunnel stream error'));
      const path = headers[':path'];
      if (path === TUNNEL_PATH) {
        stream.respond({ ':status': 200 });
        this.options.engine.emit('connection', asEngineConnection(stream, remote));
      } else if (path === HEARTBEAT_PATH) {
        this.sendHeartbeats(stream, (socket.localAddress ?? '').replace(/^::ffff:/, ''));
      } else {
        stream.respond({ ':status': 404 }, { endStream: true });
      }
    });
    h2.emit('connection', socket);
  }

  private sendHeartbeats(stream: ServerHttp2Stream, localAddress: string): void {
    stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
    let busy = false;
    const beat = (): void => {
      if (busy || stream.destroyed) return;
      busy = true;
      this.options
        .status({ localAddress })
        .then((status) => {
          if (!stream.destroyed) stream.write(`${JSON.stringify(status)}\n`);
        })
        .catch((err: unknown) => this.options.logger.warn({ err }, 'cannot measure this host for a heartbeat'))
        .finally(() => (busy = false));
    };
    beat();
    const timer = setInterval(beat, this.options.heartbeatMs);
    stream.once('close', () => clearInterval(timer));
  }

  /** A peer that vanished without a FIN (its host died) shows as a ping that gets no answer. */
  private keepAlive(session: Http2Session): void {
    const timer = setInterval(() => {
      if (session.destroyed) return;
      const deadline = setTimeout(() => session.destroy(), PING_TIMEOUT_MS);
      try {
        session.ping(() => clearTimeout(deadline));
      } catch {
        clearTimeout(deadline);
      }
    }, PING_EVERY_MS);
    session.once('close', () => clearInterval(timer));
  }
}
