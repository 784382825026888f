import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { operatorContext } from '../../common/context.js';
import { invalidArgument, isKind, notFound, unauthenticated } from '../../common/errors.js';
import type { Store, Stored } from '../store/store.js';

/**
 * Join tokens: what an operator hands to a new host so its agent may join the cluster (as
 * Swarm's SWMTKN). A token reads `BERTHJT-1-<ca>-<id>-<secret>`:
 *
 * - ca: SHA-256 of the control plane's CA certificate. The agent checks the server's CA
 *   against it before it sends anything, so the token also authenticates the server.
 * - id: public, names the token for listing and revocation.
 * - secret: 32 random bytes; stored only as its SHA-256.
 *
 * Records are kind "join-token" in the operator's scope. A revoked token stays, marked, so the
 * operator sees what was refused; tokens never expire on their own.
 */

export interface JoinTokenRecord {
  secretHash: string;
  createdAt: string;
  revokedAt?: string;
  description?: string;
  /** How many hosts joined with it. */
  uses: number;
}

export interface JoinTokenView {
  ID: string;
  CreatedAt: string;
  RevokedAt?: string;
  Description?: string;
  Uses: number;
}

const KIND = 'join-token';
const FORMAT = /^BERTHJT-1-([0-9a-f]{64})-([0-9a-f]{16})-([0-9a-f]{64})$/;

export interface ParsedJoinToken {
  caFingerprint: string;
  id: string;
  secret: string;
}

/** Splits a token; a malformed one is InvalidArgument, so both ends word it alike. */
export function parseJoinToken(token: string): ParsedJoinToken {
  const match = FORMAT.exec(token.trim());
  if (!match) throw invalidArgument('malformed join token: expected BERTHJT-1-<ca fingerprint>-<id>-<secret> as `berth host join-token` prints it');
  return { caFingerprint: match[1]!, id: match[2]!, secret: match[3]! };
}

export class JoinTokens {
  private readonly admin = operatorContext('join-tokens');

  constructor(
    private readonly store: Store,
    private readonly caFingerprint: string,
  ) {}

  async create(description?: string): Promise<{ id: string; token: string }> {
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('hex');
    await this.store.create<JoinTokenRecord>(this.admin, KIND, {
      id,
      value: { secretHash: sha256(secret), createdAt: new Date().toISOString(), uses: 0, ...(description ? { description } : {}) },
    });
    return { id, token: `BERTHJT-1-${this.caFingerprint}-${id}-${secret}` };
  }

  async list(): Promise<JoinTokenView[]> {
    const records = await this.store.list<JoinTokenRecord>(this.admin, KIND);
    return records.sort((a, b) => a.value.createdAt.localeCompare(b.value.createdAt)).map(view);
  }

  async revoke(id: string): Promise<JoinTokenView> {
    const current = await this.get(id);
    if (current.value.revokedAt) return view(current);
    const updated = await this.store.update<JoinTokenRecord>(this.admin, KIND, id, {
      value: { ...current.value, revokedAt: new Date().toISOString() },
      expectedRevision: current.revision,
    });
    return view(updated);
  }

  /** Checks a presented token and counts the use; every refusal is Unauthenticated. */
  async redeem(token: string): Promise<string> {
    let parsed: ParsedJoinToken;
    try {
      parsed = parseJoinToken(token);
    } catch (err) {
      throw unauthenticated(err instanceof Error ? err.message : 'malformed join token');
    }
    if (parsed.caFingerprint !== this.caFingerprint) throw unauthenticated('join token refused: it was made for another control plane (its CA fingerprint differs)');
    const record = await this.get(parsed.id).catch((err: unknown) => {
      if (isKind(err, 'NotFound')) throw unauthenticated('join token refused: no such token');
      throw err;
    });
    const good = timingSafeEqual(Buffer.from(record.value.secretHash, 'hex'), Buffer.from(sha256(parsed.secret), 'hex'));
    if (!good) throw unauthenticated('join token refused: the secret does not match');
    if (record.value.revokedAt) throw unauthenticated('join token refused: it was revoked');
    await this.store.update<JoinTokenRecord>(this.admin, KIND, parsed.id, {
      value: { ...record.value, uses: record.value.uses + 1 },
    });
    return parsed.id;
  }

  private async get(id: string): Promise<Stored<JoinTokenRecord>> {
    return this.store.get<JoinTokenRecord>(this.admin, KIND, id).catch((err: unknown) => {
      if (isKind(err, 'NotFound')) throw notFound(`No such join token: ${id}`);
      throw err;
    });
  }
}

function view(record: Stored<JoinTokenRecord>): JoinTokenView {
  return {
    ID: record.id,
    CreatedAt: record.value.createdAt,
    ...(record.value.revokedAt ? { RevokedAt: record.value.revokedAt } : {}),
    ...(record.value.description ? { Description: record.value.description } : {}),
    Uses: record.value.uses,
  };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
