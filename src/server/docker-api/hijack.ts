import type { Duplex } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const RAW_STREAM = 'application/vnd.docker.raw-stream';
export const MULTIPLEXED_STREAM = 'application/vnd.docker.multiplexed-stream';

/**
 * Takes over the connection the way dockerd does for attach and exec start: a client that
 * asked to upgrade (`Upgrade: tcp`) gets `101 UPGRADED`, an older one a bare 200; after the
 * header the socket carries the raw or multiplexed stream in both directions. Fastify steps
 * aside (reply.hijack) so nothing else writes to the socket.
 */
export function hijackConnection(request: FastifyRequest, reply: FastifyReply, contentType: string): Duplex {
  reply.hijack();
  const socket = request.raw.socket;
  const upgrade = String(request.headers.upgrade ?? '').toLowerCase() === 'tcp';
  const head = upgrade
    ? `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`
    : `HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\n\r\n`;
  socket.write(head);
  socket.setTimeout(0);
  socket.setNoDelay(true);
  return socket;
}
