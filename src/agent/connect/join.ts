import { X509Certificate } from 'node:crypto';
import { checkServerIdentity, connect, type DetailedPeerCertificate, type TLSSocket } from 'node:tls';
import { readLine, writeLine } from '../../common/json-lines.js';
import { JOIN_ALPN, MAX_JOIN_LINE, type JoinAnswer, type JoinRequest } from '../../common/agent-protocol.js';
import { parseJoinToken } from '../../server/cluster/join-tokens.js';
import { unauthenticated, unavailable } from '../../common/errors.js';
import { caFingerprint, normaliseFingerprint } from '../../server/tenancy/pki.js';
import type { AgentIdentity } from './identity.js';
import { parseServerAddress, serverNameOptions } from './server-address.js';

export interface JoinOptions {
  server: string;
  token: string;
  name: string;
  address: string;
  labels: Record<string, string>;
  timeoutMs?: number;
}

/**
 * Joins the cluster once: TLS to the server without a client certificate, the server's CA
 * checked against the fingerprint in the token *before* the token is sent (so a wrong server
 * never sees it), then one request line and one answer line.
 */
export async function joinCluster(options: JoinOptions): Promise<AgentIdentity> {
  const token = parseJoinToken(options.token);
  const { host, port } = parseServerAddress(options.server);
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connect({ ...serverNameOptions(host), port, ALPNProtocols: [JOIN_ALPN], rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    const timer = setTimeout(() => s.destroy(new Error('timed out')), options.timeoutMs ?? 15_000);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(unavailable(`cannot reach the control plane at ${options.server}: ${err.message}`, err));
    });
  });
  try {
    const caPem = pinnedCa(socket, host, token.caFingerprint);
    const request: JoinRequest = { token: options.token.trim(), name: options.name, address: options.address, labels: options.labels };
    await writeLine(socket, request);
    const answer = JSON.parse(await readLine(socket, MAX_JOIN_LINE)) as JoinAnswer;
    if (!answer.ok) throw unauthenticated(`the control plane refused the join: ${answer.message}`);
    if (caFingerprint(answer.caPem) !== token.caFingerprint || answer.caPem.trim() !== caPem.trim()) {
      throw unauthenticated('the control plane answered with a CA other than the one the join token names');
    }
    return { hostId: answer.hostId, server: options.server, certPem: answer.certPem, keyPem: answer.keyPem, caPem: answer.caPem };
  } finally {
    socket.destroy();
  }
}

/**
 * The CA the server presented, in PEM, once it is the one the token pins and it issued the
 * server's certificate for the address we dialled. Anything else is refused with what differs.
 */
function pinnedCa(socket: TLSSocket, host: string, fingerprint: string): string {
  const leaf = socket.getPeerCertificate(true);
  if (!leaf.raw) throw unauthenticated('the control plane presented no certificate');
  let ca: DetailedPeerCertificate | undefined;
  // The chain as sent; a self-signed root is its own issuer, which ends the walk.
  for (let cert: DetailedPeerCertificate | undefined = leaf, hops = 0; cert && hops < 4; hops++) {
    if (normaliseFingerprint(cert.fingerprint256) === fingerprint) ca = cert;
    cert = cert.issuerCertificate === cert ? undefined : cert.issuerCertificate;
  }
  if (!ca) throw unauthenticated(`the control plane at ${host} is not the one the join token names (its CA fingerprint differs): wrong server or wrong token`);
  const caX509 = new X509Certificate(ca.raw);
  const leafX509 = new X509Certificate(leaf.raw);
  if (!leafX509.checkIssued(caX509) || !leafX509.verify(caX509.publicKey)) throw unauthenticated('the control plane\'s certificate was not issued by the CA the join token names');
  const nameError = checkServerIdentity(host, leaf);
  if (nameError) throw unauthenticated(`the control plane's certificate does not name ${host}: ${nameError.message}`);
  return caX509.toString();
}
