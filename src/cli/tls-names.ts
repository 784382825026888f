import { hostname, networkInterfaces } from 'node:os';
import type { ListenAddress } from './listen.js';

/**
 * The names the TLS listener's certificate must carry: loopback always, the machine's name,
 * each address it listens on, and every interface address when it listens on all of them
 * (0.0.0.0 or ::), so clients can verify the server by any address they may dial.
 */
export function listenerNames(addresses: ListenAddress[], extra: string[]): string[] {
  const names = new Set<string>(['localhost', '127.0.0.1', '::1', hostname(), ...extra]);
  for (const address of addresses) {
    if (address.kind !== 'tcp') continue;
    if (address.host === '0.0.0.0' || address.host === '::') {
      for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) names.add(i.address.replace(/%.*$/, ''));
    } else names.add(address.host);
  }
  return [...names];
}
