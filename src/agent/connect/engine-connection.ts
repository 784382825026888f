import type { Http2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { trustUpstreamConnection } from '../../server/docker-api/upstream-trust.js';
import { StreamConnection } from '../../common/stream-connection.js';

/**
 * A tunnel stream as one connection of the engine's HTTP server, marked as coming from the
 * control plane, whose tenant header the engine then believes.
 */
export function asEngineConnection(stream: Http2Stream, remoteAddress: string): Duplex {
  const connection = new StreamConnection(stream, remoteAddress);
  trustUpstreamConnection(connection);
  return connection;
}
