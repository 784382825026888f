import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { internal } from '../../common/errors.js';

const run = promisify(execFile);

/**
 * Berth's own certificate authority, kept under `<data-root>/pki`. It signs the certificate of
 * the TLS listener and every tenant's client certificate; the Docker API on TCP trusts no
 * other issuer.
 *
 * Keys are EC P-256 and certificates are made by Debian's openssl command: the field's
 * well-kept X.509 tool, run only when a CA, a listener or a tenant credential is created,
 * never on a request's path. Files are written 0600 (keys) in a 0700 directory.
 */

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  /** Upper-case hex without leading zeros, as node's TLSSocket.getPeerCertificate() reports it. */
  serial: string;
  notAfter: string;
}

export interface ServerIdentity {
  caPem: string;
  certPem: string;
  keyPem: string;
}

const CA_DAYS = 3650;
const LEAF_DAYS = 825;

export class CertificateAuthority {
  private constructor(
    private readonly dir: string,
    readonly caPem: string,
  ) {}

  /** Opens the CA under `dir`, creating it on first use. */
  static async open(dir: string): Promise<CertificateAuthority> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const caCert = join(dir, 'ca.pem');
    const existing = await readFile(caCert, 'utf8').catch(() => undefined);
    if (existing !== undefined) return new CertificateAuthority(dir, existing);
    const caKey = join(dir, 'ca-key.pem');
    await openssl([
      'req', '-x509', '-new', '-nodes',
      '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
      '-keyout', caKey, '-out', `${caCert}.tmp`,
      '-days', String(CA_DAYS), '-subj', '/O=Berth/CN=Berth CA',
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    await chmod(caKey, 0o600);
    // Renamed last, so a crash half-way leaves no CA that seems whole.
    const pem = await readFile(`${caCert}.tmp`, 'utf8');
    await writeFile(caCert, pem, { mode: 0o644 });
    await rm(`${caCert}.tmp`, { force: true });
    return new CertificateAuthority(dir, pem);
  }

  /**
   * The listener's certificate for `names` (DNS names and IP addresses), reissued when they
   * change. `stem` keeps listeners apart (the agents' listener is "agent-listener").
   */
  async serverIdentity(names: string[], stem = 'server'): Promise<ServerIdentity> {
    const certPath = join(this.dir, `${stem}-cert.pem`);
    const keyPath = join(this.dir, `${stem}-key.pem`);
    const wanted = [...new Set(names)].sort();
    const current = await readFile(certPath, 'utf8').catch(() => undefined);
    if (current !== undefined && sameNames(current, wanted) && !expiresSoon(current)) {
      return { caPem: this.caPem, certPem: current, keyPem: await readFile(keyPath, 'utf8') };
    }
    const san = wanted.map((n) => (isIpAddress(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    const issued = await this.issue('/O=Berth/CN=berth server', [
      `subjectAltName=${san}`,
      'extendedKeyUsage=serverAuth',
      'keyUsage=critical,digitalSignature,keyEncipherment',
    ]);
    await writeFile(keyPath, issued.keyPem, { mode: 0o600 });
    await writeFile(certPath, issued.certPem, { mode: 0o644 });
    return { caPem: this.caPem, certPem: issued.certPem, keyPem: issued.keyPem };
  }

  /** A client certificate naming `tenant` (CN) for the Docker API over mutual TLS. */
  async clientCertificate(tenant: string): Promise<IssuedCertificate> {
    return this.issue(`/O=berth-tenant/CN=${tenant}`, ['extendedKeyUsage=clientAuth', 'keyUsage=critical,digitalSignature']);
  }

  /**
   * A host's certificate for the agents' mutual TLS: O=berth-host tells it from a tenant's
   * (O=berth-tenant), and CN is the host id the control plane gave at join.
   */
  async hostCertificate(hostId: string): Promise<IssuedCertificate> {
    return this.issue(`/O=${HOST_ORGANIZATION}/CN=${hostId}`, ['extendedKeyUsage=clientAuth', 'keyUsage=critical,digitalSignature']);
  }

  /** SHA-256 of the CA certificate (DER), lower-case hex: what a join token pins. */
  get fingerprint(): string {
    return caFingerprint(this.caPem);
  }

  private async issue(subject: string, extensions: string[]): Promise<IssuedCertificate> {
    const work = await mkdtemp(join(this.dir, 'issue-'));
    try {
      const key = join(work, 'key.pem');
      const csr = join(work, 'req.csr');
      const cert = join(work, 'cert.pem');
      const ext = join(work, 'ext.cnf');
      await openssl(['req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-keyout', key, '-out', csr, '-subj', subject]);
      await writeFile(ext, `${extensions.join('\n')}\nbasicConstraints=critical,CA:FALSE\n`);
      // A random 16-byte serial (positive: high bit clear) names the credential for revocation.
      const serialBytes = randomBytes(16);
      serialBytes[0] = (serialBytes[0]! & 0x7f) | 0x10;
      await openssl([
        'x509', '-req', '-in', csr, '-CA', join(this.dir, 'ca.pem'), '-CAkey', join(this.dir, 'ca-key.pem'),
        '-set_serial', `0x${serialBytes.toString('hex')}`, '-days', String(LEAF_DAYS), '-extfile', ext, '-out', cert,
      ]);
      const certPem = await readFile(cert, 'utf8');
      const x509 = new X509Certificate(certPem);
      return { certPem, keyPem: await readFile(key, 'utf8'), serial: normaliseSerial(x509.serialNumber), notAfter: x509.validTo };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
}

/** The subject organisation of host certificates. */
export const HOST_ORGANIZATION = 'berth-host';

export function caFingerprint(pem: string): string {
  return normaliseFingerprint(new X509Certificate(pem).fingerprint256);
}

/** Fingerprints compare as lower-case hex without colons, whoever printed them. */
export function normaliseFingerprint(fingerprint: string): string {
  return fingerprint.replace(/:/g, '').toLowerCase();
}

/** Serial numbers compare as upper-case hex without leading zeros, whoever printed them. */
export function normaliseSerial(serial: string): string {
  return serial.replace(/:/g, '').toUpperCase().replace(/^0+(?=.)/, '');
}

function isIpAddress(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || name.includes(':');
}

function sameNames(pem: string, wanted: string[]): boolean {
  const alt = new X509Certificate(pem).subjectAltName ?? '';
  const have = alt
    .split(', ')
    .map((entry) => entry.replace(/^(DNS|IP Address):/, ''))
    .map((n) => (n.includes(':') ? n.toLowerCase() : n))
    .sort();
  return JSON.stringify(have) === JSON.stringify(wanted.map((n) => (n.includes(':') ? expandIpv6(n) : n)).sort());
}

/** node prints IPv6 SANs fully expanded (0:0:0:0:0:0:0:1); compare in that form. */
function expandIpv6(address: string): string {
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = address.includes('::') ? Array(8 - left.length - right.length).fill('0') : [];
  return [...left, ...fill, ...right].map((p) => p.replace(/^0+(?=.)/, '').toLowerCase()).join(':');
}

function expiresSoon(pem: string): boolean {
  return Date.parse(new X509Certificate(pem).validTo) - Date.now() < 30 * 24 * 3600 * 1000;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw internal(`openssl ${args[0]} failed: ${stderr.trim().split('\n').pop() ?? ''}`, err);
  }
}
