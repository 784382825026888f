import type { TLSSocket } from 'node:tls';
import { invalidArgument } from '../../../common/errors.js';
import { newId } from '../../../common/ids.js';
import type { Logger } from '../../../common/logging.js';
import { MAX_JOIN_LINE, type JoinAnswer, type JoinRequest } from '../../../common/agent-protocol.js';
import type { CertificateAuthority } from '../../tenancy/pki.js';
import type { JoinTokens } from '../join-tokens.js';
import type { HostRegistry } from './host-registry.js';
import { readLine, writeLine } from '../../../common/json-lines.js';

/** Host names: they show in `berth host ls` and placement reasons; keep them plain. */
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/**
 * One join conversation (ALPN berth-join/1): a JoinRequest line in, a JoinAnswer line out.
 * The host certificate is issued before the host record is written, and the record names its
 * serial: a crash in between leaves a certificate no host record accepts, never a host
 * without a certificate.
 */
export async function handleJoin(
  socket: TLSSocket,
  deps: { tokens: JoinTokens; registry: HostRegistry; ca: CertificateAuthority; logger: Logger },
): Promise<void> {
  let answer: JoinAnswer;
  try {
    const request = parseJoinRequest(await readLine(socket, MAX_JOIN_LINE));
    // Refuse a taken name before the token is spent on it.
    if (deps.registry.hasName(request.name)) {
      throw invalidArgument(`a host named ${request.name} has already joined; remove it (berth host rm) or start the agent with another --name`);
    }
    const tokenId = await deps.tokens.redeem(request.token);
    const hostId = newId();
    const issued = await deps.ca.hostCertificate(hostId);
    const address = request.address || (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    await deps.registry.add({ id: hostId, name: request.name, address, labels: request.labels, certSerial: issued.serial, joinTokenId: tokenId });
    deps.logger.info({ hostId, name: request.name, address }, 'host joined');
    answer = { ok: true, hostId, certPem: issued.certPem, keyPem: issued.keyPem, caPem: deps.ca.caPem };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    deps.logger.warn({ remote: socket.remoteAddress, message }, 'join refused');
    answer = { ok: false, message };
  }
  await writeLine(socket, answer).catch(() => undefined);
  socket.end();
}

function parseJoinRequest(line: string): JoinRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw invalidArgument('join request is not JSON');
  }
  const r = raw as Partial<JoinRequest>;
  if (typeof r.token !== 'string') throw invalidArgument('join request lacks a token');
  if (typeof r.name !== 'string' || !HOST_NAME.test(r.name)) {
    throw invalidArgument(`invalid host name "${String(r.name)}": use up to 63 letters, digits, '.', '_' and '-', starting with a letter or digit`);
  }
  const labels = r.labels ?? {};
  if (typeof labels !== 'object' || Array.isArray(labels) || !Object.values(labels).every((v) => typeof v === 'string')) {
    throw invalidArgument('join request labels must map names to strings');
  }
  return { token: r.token, name: r.name, address: typeof r.address === 'string' ? r.address : '', labels };
}
