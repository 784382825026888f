import { isIP } from 'node:net';
import { invalidArgument } from '../../common/errors.js';

/** The control plane's HOST:PORT as `berth agent --server` takes it ([v6]:port too). */
export function parseServerAddress(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.replace(/^tcp:\/\//, ''));
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port > 0 && port < 65536)) throw invalidArgument(`invalid --server ${text}: use HOST:PORT`);
  return { host: (match[1] ?? match[2])!, port };
}

/** TLS options naming the server: SNI only for DNS names (node refuses SNI of an IP). */
export function serverNameOptions(host: string): { host: string; servername?: string } {
  return isIP(host) ? { host } : { host, servername: host };
}
