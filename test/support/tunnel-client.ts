/**
 * HTTP/1.1 through the control plane's tunnel to one agent's engine, the way the server's
 * front speaks to it: one hub stream per request, the tenant in TENANT_HEADER.
 */
import { request, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { createReadStream } from 'node:fs';
import type { AgentHub } from '../../src/server/cluster/agent-hub.js';
import { TENANT_HEADER } from '../../src/server/cluster/agent-hub.js';

export interface TunnelAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

export async function tunnelRequest(
  hub: AgentHub,
  hostId: string,
  method: string,
  path: string,
  options: { tenant?: string; json?: unknown; file?: string } = {},
): Promise<TunnelAnswer> {
  const stream = await hub.openStream(hostId);
  const payload = options.json === undefined ? undefined : Buffer.from(JSON.stringify(options.json));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        method,
        path,
        createConnection: () => stream as never,
        headers: {
          host: 'engine',
          connection: 'close',
          ...(options.tenant ? { [TENANT_HEADER]: options.tenant } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          ...(options.file ? { 'content-type': 'application/x-tar' } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.file) createReadStream(options.file).pipe(req);
    else req.end(payload);
  });
}

/** An upgraded connection (attach, exec start) through the tunnel: the raw duplex after the 101. */
export async function tunnelUpgrade(
  hub: AgentHub,
  hostId: string,
  path: string,
  options: { tenant?: string; json?: unknown } = {},
): Promise<{ status: number; socket: Duplex; head: Buffer }> {
  const stream = await hub.openStream(hostId);
  const payload = Buffer.from(JSON.stringify(options.json ?? {}));
  return new Promise((resolve, reject) => {
    const req = request({
      method: 'POST',
      path,
      createConnection: () => stream as never,
      headers: {
        host: 'engine',
        connection: 'Upgrade',
        upgrade: 'tcp',
        'content-type': 'application/json',
        'content-length': payload.length,
        ...(options.tenant ? { [TENANT_HEADER]: options.tenant } : {}),
      },
    });
    req.on('upgrade', (res, socket, head) => resolve({ status: res.statusCode ?? 0, socket, head }));
    req.on('response', (res) => {
      res.resume();
      reject(new Error(`expected an upgrade, got ${res.statusCode}`));
    });
    req.on('error', reject);
    req.end(payload);
  });
}
