import { isIPv4 } from 'node:net';
import { invalidArgument } from '../../common/errors.js';

/**
 * Where a repository lives and how to reach it.
 *
 * Terms: a familiar repository name ("busybox", "127.0.0.1:5000/app") splits into a *domain*
 * (the registry: "docker.io", "127.0.0.1:5000") and a *path* within it ("library/busybox",
 * "app"). The *endpoint* is the base URL Berth talks to: Docker Hub's API lives on
 * registry-1.docker.io; loopback registries (localhost, 127.0.0.0/8, ::1) and those the
 * operator lists with `--insecure-registry` are spoken to over plain HTTP, as dockerd does;
 * everything else over verified TLS.
 */
export interface RemoteRepository {
  domain: string;
  path: string;
}

export const DOCKER_HUB_DOMAIN = 'docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';
/** The address the docker CLI sends for Docker Hub logins. */
export const DOCKER_HUB_SERVER_ADDRESS = 'https://index.docker.io/v1/';

export function splitRepository(familiarName: string): RemoteRepository {
  const slash = familiarName.indexOf('/');
  const first = slash === -1 ? '' : familiarName.slice(0, slash);
  const hasDomain = slash !== -1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasDomain) {
    return { domain: DOCKER_HUB_DOMAIN, path: slash === -1 ? `library/${familiarName}` : familiarName };
  }
  return { domain: first, path: familiarName.slice(slash + 1) };
}

/**
 * The registry a login's `serveraddress` names, as the key credentials are kept under:
 * "https://index.docker.io/v1/" and "docker.io" are Docker Hub; "http://h:5000/v2/" is "h:5000".
 */
export function registryKey(serverAddress: string): string {
  let address = serverAddress.trim();
  if (address === '' || address === DOCKER_HUB_SERVER_ADDRESS) return DOCKER_HUB_DOMAIN;
  address = address.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (address === 'index.docker.io' || address === DOCKER_HUB_API || address === DOCKER_HUB_DOMAIN) return DOCKER_HUB_DOMAIN;
  if (address === '') throw invalidArgument(`invalid registry address: ${serverAddress}`);
  return address;
}

export interface Endpoint {
  domain: string;
  /** "https://registry-1.docker.io", "http://127.0.0.1:5000" */
  baseUrl: string;
  /** TLS without certificate verification (insecure registry tried over HTTPS first). */
  skipTlsVerify: boolean;
  /** For an insecure registry: the plain-HTTP URL to fall back to when TLS fails. */
  fallbackUrl?: string;
}

/**
 * Insecure registries as dockerd's `--insecure-registry` takes them: "host[:port]" or an IPv4
 * CIDR ("10.0.0.0/8"). Loopback is always insecure.
 */
export class RegistryEndpoints {
  private readonly hosts = new Set<string>();
  private readonly cidrs: { base: number; bits: number }[] = [];

  constructor(insecure: readonly string[] = []) {
    for (const entry of insecure) {
      const value = entry.replace(/^https?:\/\//, '').replace(/\/$/, '');
      const cidr = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(value);
      if (cidr && isIPv4(cidr[1]!) && Number(cidr[2]) <= 32) {
        this.cidrs.push({ base: ipv4Number(cidr[1]!), bits: Number(cidr[2]) });
      } else if (/^[A-Za-z0-9.:[\]-]+$/.test(value)) {
        this.hosts.add(value.toLowerCase());
      } else {
        throw invalidArgument(`invalid --insecure-registry value: ${entry}`);
      }
    }
  }

  resolve(domain: string): Endpoint {
    if (domain === DOCKER_HUB_DOMAIN) return { domain, baseUrl: `https://${DOCKER_HUB_API}`, skipTlsVerify: false };
    const host = hostOf(domain);
    if (isLoopback(host)) return { domain, baseUrl: `http://${domain}`, skipTlsVerify: false };
    if (this.isInsecure(domain, host)) {
      return { domain, baseUrl: `https://${domain}`, skipTlsVerify: true, fallbackUrl: `http://${domain}` };
    }
    return { domain, baseUrl: `https://${domain}`, skipTlsVerify: false };
  }

  private isInsecure(domain: string, host: string): boolean {
    if (this.hosts.has(domain.toLowerCase()) || this.hosts.has(host.toLowerCase())) return true;
    if (!isIPv4(host)) return false;
    const address = ipv4Number(host);
    return this.cidrs.some(({ base, bits }) => bits === 0 || (address >>> (32 - bits)) === (base >>> (32 - bits)));
  }
}

/** The host of "host:port", "[v6]:port" or "host". */
function hostOf(domain: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(domain);
  if (bracketed) return bracketed[1]!;
  const colon = domain.lastIndexOf(':');
  return colon === -1 ? domain : domain.slice(0, colon);
}

/**
 * Whether a registry domain names this host or its private networks by address: loopback,
 * "localhost", link-local (cloud metadata lives there), RFC 1918 and unique-local IPv6. Names
 * are not resolved; a DNS name pointing inward is not caught here.
 */
export function isHostNetworkDomain(domain: string): boolean {
  const host = hostOf(domain).toLowerCase();
  if (isLoopback(host) || host.endsWith('.localhost')) return true;
  if (isIPv4(host)) {
    const [a, b] = host.split('.').map(Number) as [number, number];
    return a === 0 || a === 10 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
  }
  return /^(fe[89ab][0-9a-f]:|f[cd][0-9a-f]{2}:|::$|::ffff:)/.test(host);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));
}

function ipv4Number(address: string): number {
  return address.split('.').reduce((n, octet) => ((n << 8) | Number(octet)) >>> 0, 0);
}
