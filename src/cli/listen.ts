import { chmod, mkdir, rm } from 'node:fs/promises';
import { createServer, type Server as NetServer } from 'node:net';
import { hostname } from 'node:os';
import { createServer as createTlsServer } from 'node:tls';
import { dirname } from 'node:path';
import type { Server as HttpServer } from 'node:http';
import { invalidArgument } from '../common/errors.js';

export type ListenAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** Parses dockerd-style -H values: unix:///path.sock, tcp://host:port, or a bare /path. */
export function parseListenAddress(value: string): ListenAddress {
  if (value.startsWith('unix://')) return { kind: 'unix', path: value.slice('unix://'.length) };
  if (value.startsWith('/')) return { kind: 'unix', path: value };
  if (value.startsWith('tcp://')) {
    const url = new URL(value.replace(/^tcp:/, 'http:'));
    const port = Number(url.port || 2375);
    return { kind: 'tcp', host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port };
  }
  throw invalidArgument(`invalid listen address ${value}: use unix:///path/to.sock or tcp://host:port`);
}

/**
 * Where tenants reach the API: each tcp:// listener, with a wildcard address named by this
 * machine's hostname and an IPv6 address in brackets.
 */
export function tenantEndpointsOf(addresses: ListenAddress[]): string[] {
  return addresses.flatMap((a) =>
    a.kind === 'tcp' ? [`tcp://${a.host === '0.0.0.0' || a.host === '::' ? hostname() : a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`] : [],
  );
}

/** The listener's key and certificate, and the CA whose client certificates it accepts. */
export interface TlsIdentity {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/**
 * Serves one HTTP server on several addresses. Each address gets its own listener that hands
 * accepted connections to the HTTP server, so every endpoint shares one app. TCP is always
 * mutual TLS (dockerd's --tlsverify): a client without a certificate from `tls.caPem` fails the
 * handshake and never reaches HTTP.
 */
export async function listenOn(http: HttpServer, addresses: ListenAddress[], tls?: TlsIdentity): Promise<NetServer[]> {
  const listeners: NetServer[] = [];
  for (const address of addresses) {
    // allowHalfOpen: the docker CLI closes its write side of an attach at once when it sends no
    // stdin; the stream back to it must stay open until the container is done.
    const hand = (socket: unknown): void => {
      http.emit('connection', socket);
    };
    let listener: NetServer;
    if (address.kind === 'unix') listener = createServer({ allowHalfOpen: true }, hand);
    else {
      if (!tls) throw invalidArgument('a TCP address needs the TLS identity');
      listener = createTlsServer(
        {
          key: tls.keyPem,
          cert: tls.certPem,
          ca: tls.caPem,
          requestCert: true,
          rejectUnauthorized: true,
          minVersion: 'TLSv1.2',
          allowHalfOpen: true,
        },
        hand,
      );
    }
    if (address.kind === 'unix') {
      await mkdir(dirname(address.path), { recursive: true });
      await rm(address.path, { force: true });
      await new Promise<void>((resolve, reject) => {
        listener.once('error', reject);
        listener.listen(address.path, resolve);
      });
      await chmod(address.path, 0o660);
    } else {
      await new Promise<void>((resolve, reject) => {
        listener.once('error', reject);
        listener.listen(address.port, address.host, resolve);
      });
    }
    listeners.push(listener);
  }
  return listeners;
}
