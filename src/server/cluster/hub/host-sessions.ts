import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { StreamConnection } from '../../../common/stream-connection.js';
import { jsonLines } from '../../../common/json-lines.js';
import { unavailable } from '../../../common/errors.js';
import type { Logger } from '../../../common/logging.js';
import { HEARTBEAT_PATH, REFUSAL_PREFIX, SESSION_WINDOW, TUNNEL_SETTINGS, TUNNEL_PATH, type HostStatus } from '../../../common/agent-protocol.js';

/**
 * The control plane's side of each connected agent: one HTTP/2 client session over the TLS
 * socket the agent opened. At most one session per host; a newer one (the agent reconnected)
 * replaces the older. Heartbeats arrive on one long stream the control plane opens.
 */
export class HostSessions {
  private readonly sessions = new Map<string, ClientHttp2Session>();

  constructor(
    private readonly logger: Logger,
    private readonly onHeartbeat: (hostId: string, status: HostStatus) => void,
  ) {}

  /** Starts HTTP/2 on an authenticated agent socket and follows its heartbeats. */
  attach(hostId: string, socket: TLSSocket): void {
    const session = connect(`https://${hostId}.host.berth`, { createConnection: () => socket, settings: TUNNEL_SETTINGS });
    session.on('error', (err) => this.logger.debug({ hostId, err }, 'agent session error'));
    session.once('connect', () => session.setLocalWindowSize(SESSION_WINDOW));
    const previous = this.sessions.get(hostId);
    this.sessions.set(hostId, session);
    if (previous && !previous.destroyed) previous.destroy();
    session.once('close', () => {
      if (this.sessions.get(hostId) === session) this.sessions.delete(hostId);
    });
    this.followHeartbeats(hostId, session);
  }

  /** Starts HTTP/2 only to tell the agent why it is refused (GOAWAY debug data), then closes. */
  refuse(socket: TLSSocket, reason: string): void {
    const session = connect('https://refused.host.berth', { createConnection: () => socket });
    session.on('error', () => undefined);
    this.goAway(session, reason);
  }

  /** Ends a host's session, telling the agent why (e.g. it was removed). */
  disconnect(hostId: string, reason: string): void {
    const session = this.sessions.get(hostId);
    if (!session) return;
    this.sessions.delete(hostId);
    if (!session.destroyed) this.goAway(session, reason);
  }

  /** GOAWAY with the refusal's reason as debug data; the session ends shortly after. */
  private goAway(session: ClientHttp2Session, reason: string): void {
    session.goaway(constants.NGHTTP2_REFUSED_STREAM, 0, Buffer.from(`${REFUSAL_PREFIX}${reason}`));
    setTimeout(() => session.destroy(), 200).unref();
  }

  /** Drops a host's session without a word (it went silent; the agent will dial again). */
  drop(hostId: string): void {
    const session = this.sessions.get(hostId);
    this.sessions.delete(hostId);
    session?.destroy();
  }

  async openStream(hostId: string, hostName: string): Promise<Duplex> {
    const session = this.sessions.get(hostId);
    if (!session || session.closed || session.destroyed) throw unavailable(`host ${hostName} is not connected`);
    const stream = session.request({ ':method': 'POST', ':path': TUNNEL_PATH });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        done();
        reject(unavailable(`host ${hostName} refused a stream`, err));
      };
      const onClose = (): void => {
        done();
        reject(unavailable(`host ${hostName} closed the stream`));
      };
      const onResponse = (headers: Record<string, unknown>): void => {
        done();
        if (headers[':status'] === 200) resolve();
        else {
          stream.destroy();
          reject(unavailable(`host ${hostName} answered the tunnel with status ${String(headers[':status'])}`));
        }
      };
      const done = (): void => {
        stream.off('error', onError);
        stream.off('close', onClose);
        stream.off('response', onResponse);
      };
      stream.on('error', onError);
      stream.on('close', onClose);
      stream.on('response', onResponse);
    });
    return new StreamConnection(stream);
  }

  closeAll(): void {
    for (const session of this.sessions.values()) session.destroy();
    this.sessions.clear();
  }

  private followHeartbeats(hostId: string, session: ClientHttp2Session): void {
    const stream: ClientHttp2Stream = session.request({ ':method': 'GET', ':path': HEARTBEAT_PATH }, { endStream: true });
    const heartbeats = jsonLines<HostStatus>(stream, { maxLine: 1 << 20, onBadLine: (_line, err) => this.logger.warn({ hostId, err }, 'unreadable heartbeat') });
    stream.on('error', () => undefined);
    void (async () => {
      try {
        for await (const status of heartbeats) this.onHeartbeat(hostId, status);
      } catch {
        // the stream failed, or sent a line beyond the cap
      }
      // Without heartbeats the session is of no use: end it, the agent dials again.
      if (!session.destroyed) session.destroy();
    })();
  }
}
