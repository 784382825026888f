import type { HostCapacity } from '../server/cluster/agent-hub.js';

/**
 * The wire between an agent and the control plane (docs/cluster.md). One TLS port on the
 * server; ALPN says which of two conversations a connection holds:
 *
 * - JOIN_ALPN: an agent without a host certificate, which has already checked the server's CA
 *   against the fingerprint in its join token, sends one JoinRequest line of JSON and gets one
 *   JoinAnswer line back; then the connection closes.
 * - "h2": an agent with its host certificate (mutual TLS). The agent dialed out, yet it is the
 *   HTTP/2 *server* and the control plane the client: the control plane opens a stream to
 *   HEARTBEAT_PATH (the agent answers with one HostStatus line per interval) and one stream to
 *   TUNNEL_PATH per connection it wants to the agent's engine (plain HTTP/1.1 inside). A
 *   refusal (unknown or removed host, wrong certificate) is a GOAWAY whose debug data says why.
 */
export const JOIN_ALPN = 'berth-join/1';
export const TUNNEL_ALPN = 'h2';
export const HEARTBEAT_PATH = '/berth/agent/heartbeats';
export const TUNNEL_PATH = '/berth/agent/tunnel';

/**
 * HTTP/2 settings of both ends: image layers, archives and logs flow through the tunnel, so
 * windows are wide (a 64 KiB default window would stall every stream on the round trip).
 * Frames stay at the default 16 KiB: with 1 MiB frames node's session failed with
 * INTERNAL_ERROR on a 128 MiB upload.
 */
export const TUNNEL_SETTINGS = { initialWindowSize: 8 << 20 };
export const SESSION_WINDOW = 32 << 20;

/** GOAWAY debug data of a refusal starts with this; the rest is the reason. */
export const REFUSAL_PREFIX = 'refused: ';

/** The longest JSON line either side accepts on the join connection. */
export const MAX_JOIN_LINE = 64 * 1024;

export interface JoinRequest {
  token: string;
  name: string;
  /** Empty: the server takes the address the agent connected from. */
  address: string;
  labels: Record<string, string>;
}

export type JoinAnswer =
  | { ok: true; hostId: string; certPem: string; keyPem: string; caPem: string }
  | { ok: false; message: string };

/** What an agent reports on every heartbeat. */
export interface HostStatus {
  name: string;
  address: string;
  labels: Record<string, string>;
  capacity: HostCapacity;
  imageIds: string[];
  containerCount: number;
  engineVersion: string;
}
