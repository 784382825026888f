import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { alreadyExists, conflict, invalidArgument, isKind, notFound, unauthenticated, forbidden } from '../../common/errors.js';
import { OPERATOR_TENANT, operatorContext, type RequestContext } from '../../common/context.js';
import { KeyedMutex } from '../../common/keyed-mutex.js';
import type { Store, Stored } from '../store/store.js';
import type { CertificateAuthority, IssuedCertificate } from './pki.js';
import { normaliseSerial } from './pki.js';
import { DEFAULT_POLICY, validatePolicyAllow, type TenantPolicy } from './policy.js';
import { STRATEGIES, type Strategy } from '../scheduler/types.js';
import { applyQuotaChange, quotasView, type QuotaChange, type QuotasView, type TenantQuotas } from './quotas.js';
import { DEFAULT_USERNS_BASE, type IdRange } from '../../agent/userns/id-range.js';
import { nextIdRange } from './userns-ranges.js';

/**
 * Tenants and their credentials. The operator manages them (berth tenant ..., the admin API on
 * the local socket); every request that arrives over TCP is mapped to its tenant here.
 *
 * Records live in the operator's scope of the Store (kinds "tenant" and "credential"), so
 * they are durable like everything else. An in-memory index over them answers the per-request
 * question without touching the store; every write here updates it after the store accepted
 * the change. Only this service writes these kinds.
 *
 * A credential is either a client certificate (id: its serial number) or an API token (id: a
 * random public part; the secret part is kept only as a SHA-256 hash). Revoked credentials
 * stay as records, marked, so a revoked certificate is refused for the rest of its life.
 */

export type TenantState = 'active' | 'disabled';

export interface TenantRecord {
  name: string;
  state: TenantState;
  createdAt: string;
  /** Every request must also carry one of the tenant's API tokens (a second factor). */
  requireToken?: boolean;
  /** What the operator loosened and the default limits; absent fields take DEFAULT_POLICY's. */
  policy?: Partial<TenantPolicy>;
  /** The operator's ceilings; an absent one is unlimited. */
  quotas?: TenantQuotas;
  /** The tenant's user-namespace ID range (userns-ranges.ts); given at create, never changed. */
  userns?: IdRange;
}

export type CredentialKind = 'certificate' | 'token';

export interface CredentialRecord {
  kind: CredentialKind;
  tenant: string;
  createdAt: string;
  revokedAt?: string;
  /** certificate: when it expires. */
  notAfter?: string;
  /** token: SHA-256 of the secret, hex. */
  secretHash?: string;
  /** A label the operator gave (e.g. "ci"). */
  description?: string;
}

export interface TenantView {
  Name: string;
  State: TenantState;
  CreatedAt: string;
  RequireToken: boolean;
  Policy: { Allow: string[]; DefaultMemory: number; DefaultPidsLimit: number; PlacementStrategy?: Strategy };
  Quotas: QuotasView;
  /** Host uid/gid of root in the tenant's containers, and how many ids follow it. */
  UsernsRange?: { Base: number; Size: number };
  Credentials: CredentialView[];
}

export interface CredentialView {
  ID: string;
  Kind: CredentialKind;
  CreatedAt: string;
  RevokedAt?: string;
  NotAfter?: string;
  Description?: string;
}

export interface IssuedToken {
  id: string;
  /** Shown once: "berth_<id>_<secret>". */
  token: string;
}

/** Names a tenant may have: they become parts of host-level names, so keep them plain. */
const TENANT_NAME = /^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$/;
const TOKEN_FORMAT = /^berth_([0-9a-f]{16})_([0-9A-Za-z_-]{43})$/;

const TENANT_KIND = 'tenant';
/** One record: the end of the highest user-namespace ID range ever handed out. */
const RANGES_KIND = 'userns-ranges';
const RANGES_ID = 'top';
interface RangesTop {
  top: number;
}
const CREDENTIAL_KIND = 'credential';

export interface TenantServiceOptions {
  store: Store;
  ca: CertificateAuthority;
  /** Whether a tenant still owns containers (they must go before the tenant does). */
  ownsContainers: (tenant: string) => Promise<boolean>;
  /** Where user-namespace ID ranges start (berth up --userns-base); default 2^20. */
  usernsBase?: number;
}

export class TenantService {
  private readonly store: Store;
  private readonly ca: CertificateAuthority;
  private readonly ownsContainers: (tenant: string) => Promise<boolean>;
  private readonly admin = operatorContext('tenancy');
  private readonly tenants = new Map<string, Stored<TenantRecord>>();
  private readonly credentials = new Map<string, Stored<CredentialRecord>>();
  private readonly usernsBase: number;
  private rangesTop: Stored<RangesTop> | undefined;
  /** Creations for ensure() one at a time: they allocate ID ranges from one stored top. */
  private readonly ensuring = new KeyedMutex();

  constructor(options: TenantServiceOptions) {
    this.usernsBase = options.usernsBase ?? DEFAULT_USERNS_BASE;
    this.store = options.store;
    this.ca = options.ca;
    this.ownsContainers = options.ownsContainers;
  }

  /** Loads the index; call once before serving. */
  async load(): Promise<void> {
    for (const t of await this.store.list<TenantRecord>(this.admin, TENANT_KIND)) this.tenants.set(t.id, t);
    for (const c of await this.store.list<CredentialRecord>(this.admin, CREDENTIAL_KIND)) this.credentials.set(c.id, c);
    this.rangesTop = await this.store.get<RangesTop>(this.admin, RANGES_KIND, RANGES_ID).catch((err: unknown) => {
      if (isKind(err, 'NotFound')) return undefined;
      throw err;
    });
    // Tenants made before ranges existed get theirs now, before any of their containers starts.
    for (const t of [...this.tenants.values()].sort((a, b) => a.value.createdAt.localeCompare(b.value.createdAt))) {
      if (t.value.userns) continue;
      const updated = await this.store.update<TenantRecord>(this.admin, TENANT_KIND, t.id, {
        value: { ...t.value, userns: await this.allocateRange() },
        expectedRevision: t.revision,
      });
      this.tenants.set(t.id, updated);
    }
  }

  /** The kinds whose writes by other servers sharing the store this index must take in. */
  static readonly SHARED_KINDS = [TENANT_KIND, CREDENTIAL_KIND, RANGES_KIND];

  /**
   * Takes in a write another server sharing the store made (cluster/ha/store-sync.ts): a
   * tenant, credential or revocation made there is known here at once. Our own writes come
   * back too; the revision tells them apart.
   */
  absorb(kind: string, id: string, record: Stored<unknown> | null): void {
    if (kind === RANGES_KIND) {
      if (record && (!this.rangesTop || this.rangesTop.revision < record.revision)) this.rangesTop = record as Stored<RangesTop>;
      return;
    }
    const index: Map<string, Stored<unknown>> | undefined = kind === TENANT_KIND ? this.tenants : kind === CREDENTIAL_KIND ? this.credentials : undefined;
    if (!index) return;
    if (record === null) index.delete(id);
    else if ((index.get(id)?.revision ?? 0) < record.revision) index.set(id, record);
  }

  /** The ID range of a tenant's containers; undefined for the operator (no user namespace). */
  usernsOf(tenant: string): IdRange | undefined {
    if (tenant === OPERATOR_TENANT) return undefined;
    return this.tenants.get(tenant)?.value.userns;
  }

  /**
   * A new range, above every range handed out so far: the top is stored before the tenant
   * that gets the range, so a crash in between wastes a range and never hands one out twice.
   */
  private async allocateRange(): Promise<IdRange> {
    const taken = [...this.tenants.values()].flatMap((t) => (t.value.userns ? [t.value.userns] : []));
    if (this.rangesTop) taken.push({ base: this.rangesTop.value.top, count: 0 });
    const range = nextIdRange(this.usernsBase, taken);
    const value: RangesTop = { top: range.base + range.count };
    this.rangesTop = this.rangesTop
      ? await this.store.update<RangesTop>(this.admin, RANGES_KIND, RANGES_ID, { value, expectedRevision: this.rangesTop.revision })
      : await this.store.create<RangesTop>(this.admin, RANGES_KIND, { id: RANGES_ID, value });
    return range;
  }

  get caPem(): string {
    return this.ca.caPem;
  }

  async create(name: string, options: { requireToken?: boolean } = {}): Promise<TenantView> {
    if (!TENANT_NAME.test(name)) {
      throw invalidArgument(`invalid tenant name "${name}": use 3 to 32 lower-case letters, digits and dashes, starting and ending with a letter or digit`);
    }
    if (name === OPERATOR_TENANT) throw invalidArgument(`"${OPERATOR_TENANT}" is the operator's own scope and cannot be a tenant`);
    if (this.tenants.has(name)) throw alreadyExists(`tenant ${name} already exists`);
    const userns = await this.allocateRange();
    const record = await this.store.create<TenantRecord>(this.admin, TENANT_KIND, {
      id: name,
      name,
      value: { name, state: 'active', createdAt: new Date().toISOString(), requireToken: options.requireToken ?? false, userns },
    });
    this.tenants.set(name, record);
    return this.view(record);
  }

  /**
   * Makes a tenant the control plane vouches for known here (an agent's engine, for a request
   * that came through its tunnel): created with its own user-namespace range on this host the
   * first time it is named, as it is.
   */
  async ensure(name: string): Promise<void> {
    if (name === OPERATOR_TENANT || this.tenants.has(name)) return;
    await this.ensuring.run('create', async () => {
      if (!this.tenants.has(name)) await this.create(name);
    });
  }

  list(): TenantView[] {
    return [...this.tenants.values()].sort((a, b) => a.id.localeCompare(b.id)).map((t) => this.view(t));
  }

  inspect(name: string): TenantView {
    return this.view(this.tenant(name));
  }

  async update(
    name: string,
    change: { state?: TenantState; requireToken?: boolean; policy?: Partial<TenantPolicy>; quotas?: QuotaChange },
  ): Promise<TenantView> {
    const current = this.tenant(name);
    if (change.policy?.allow) validatePolicyAllow(change.policy.allow);
    for (const key of ['defaultMemory', 'defaultPidsLimit'] as const) {
      const v = change.policy?.[key];
      if (v !== undefined && !(Number.isSafeInteger(v) && v > 0)) throw invalidArgument(`${key} must be a positive integer`);
    }
    const strategy = change.policy?.placementStrategy;
    if (strategy !== undefined && !(STRATEGIES as readonly string[]).includes(strategy)) {
      throw invalidArgument(`unknown placement strategy "${String(strategy)}": use ${STRATEGIES.join(' or ')}`);
    }
    if (change.policy?.defaultMemory !== undefined && change.policy.defaultMemory < 6 * 1024 * 1024) {
      throw invalidArgument('defaultMemory must be at least 6MB (Docker\'s minimum memory limit)');
    }
    const value: TenantRecord = {
      ...current.value,
      ...(change.state !== undefined ? { state: change.state } : {}),
      ...(change.requireToken !== undefined ? { requireToken: change.requireToken } : {}),
      ...(change.policy !== undefined ? { policy: { ...current.value.policy, ...change.policy } } : {}),
      ...(change.quotas !== undefined ? { quotas: applyQuotaChange(current.value.quotas, change.quotas) } : {}),
    };
    if (JSON.stringify(value) === JSON.stringify(current.value)) return this.view(current);
    const updated = await this.store.update<TenantRecord>(this.admin, TENANT_KIND, name, { value, expectedRevision: current.revision });
    this.tenants.set(name, updated);
    return this.view(updated);
  }

  /** Removes a tenant that owns no containers; its credentials are revoked first. */
  async remove(name: string): Promise<void> {
    this.tenant(name);
    if (await this.ownsContainers(name)) throw conflict(`tenant ${name} still has containers; remove them first`);
    for (const cred of this.credentialsOf(name)) await this.revoke(name, cred.id).catch(() => undefined);
    for (const cred of this.credentialsOf(name)) {
      await this.store.delete(this.admin, CREDENTIAL_KIND, cred.id);
      this.credentials.delete(cred.id);
    }
    await this.store.delete(this.admin, TENANT_KIND, name);
    this.tenants.delete(name);
  }

  /** Issues a client certificate; the key is returned once and never stored by Berth. */
  async issueCertificate(name: string, description?: string): Promise<IssuedCertificate> {
    this.activeTenant(name);
    const issued = await this.ca.clientCertificate(name);
    const record = await this.store.create<CredentialRecord>(this.admin, CREDENTIAL_KIND, {
      id: issued.serial,
      value: {
        kind: 'certificate',
        tenant: name,
        createdAt: new Date().toISOString(),
        notAfter: new Date(issued.notAfter).toISOString(),
        ...(description ? { description } : {}),
      },
    });
    this.credentials.set(record.id, record);
    return issued;
  }

  async issueToken(name: string, description?: string): Promise<IssuedToken> {
    this.activeTenant(name);
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const record = await this.store.create<CredentialRecord>(this.admin, CREDENTIAL_KIND, {
      id,
      value: {
        kind: 'token',
        tenant: name,
        createdAt: new Date().toISOString(),
        secretHash: sha256(secret),
        ...(description ? { description } : {}),
      },
    });
    this.credentials.set(record.id, record);
    return { id, token: `berth_${id}_${secret}` };
  }

  async revoke(name: string, credentialId: string): Promise<CredentialView> {
    const id = /^[0-9a-fA-F:]+$/.test(credentialId) && credentialId.length > 16 ? normaliseSerial(credentialId) : credentialId;
    const current = this.credentials.get(id);
    if (!current || current.value.tenant !== name) throw notFound(`tenant ${name} has no credential ${credentialId}`);
    if (current.value.revokedAt) return credentialView(current);
    const updated = await this.store.update<CredentialRecord>(this.admin, CREDENTIAL_KIND, id, {
      value: { ...current.value, revokedAt: new Date().toISOString() },
      expectedRevision: current.revision,
    });
    this.credentials.set(id, updated);
    return credentialView(updated);
  }

  /**
   * The tenant a TLS client is, from its verified certificate's serial and, when the request
   * carries one, its bearer token. A token must belong to the certificate's tenant: it narrows
   * a connection, it never widens it to another tenant.
   */
  authenticate(certificateSerial: string, bearer: string | undefined, requestId: string): RequestContext {
    const cert = this.credentials.get(normaliseSerial(certificateSerial));
    if (!cert || cert.value.kind !== 'certificate') throw unauthenticated('authentication required: the client certificate is not known to this Berth');
    if (cert.value.revokedAt) throw unauthenticated('authentication failed: the client certificate was revoked');
    const tenant = cert.value.tenant;
    const record = this.tenants.get(tenant);
    if (!record) throw unauthenticated('authentication failed: the tenant no longer exists');
    if (bearer !== undefined) this.checkToken(bearer, tenant);
    else if (record.value.requireToken) throw unauthenticated(`authentication required: tenant ${tenant} requires an API token (Authorization: Bearer ...)`);
    if (record.value.state !== 'active') throw forbidden(`tenant ${tenant} is disabled; ask the operator to enable it`);
    return { tenant, requestId };
  }

  private checkToken(bearer: string, tenant: string): void {
    const match = TOKEN_FORMAT.exec(bearer);
    const cred = match ? this.credentials.get(match[1]!) : undefined;
    const valid =
      match !== null &&
      cred !== undefined &&
      cred.value.kind === 'token' &&
      cred.value.secretHash !== undefined &&
      timingSafeEqual(Buffer.from(cred.value.secretHash, 'hex'), Buffer.from(sha256(match[2]!), 'hex'));
    if (!valid) throw unauthenticated('authentication failed: the API token is not valid');
    if (cred!.value.revokedAt) throw unauthenticated('authentication failed: the API token was revoked');
    if (cred!.value.tenant !== tenant) throw unauthenticated('authentication failed: the API token belongs to another tenant than the client certificate');
  }

  /** The policy a tenant's requests pass; undefined for the operator (not restricted). */
  policyOf(tenant: string): TenantPolicy | undefined {
    if (tenant === OPERATOR_TENANT) return undefined;
    const record = this.tenants.get(tenant);
    // A request reaches here only after authenticate found the tenant; be strict regardless.
    return { ...DEFAULT_POLICY, ...(record?.value.policy ?? {}) };
  }

  /** A tenant's quotas; undefined for the operator and for a tenant without any. */
  quotasOf(tenant: string): TenantQuotas | undefined {
    const quotas = this.tenants.get(tenant)?.value.quotas;
    return quotas && Object.keys(quotas).length > 0 ? quotas : undefined;
  }

  private tenant(name: string): Stored<TenantRecord> {
    const record = this.tenants.get(name);
    if (!record) throw notFound(`No such tenant: ${name}`);
    return record;
  }

  private activeTenant(name: string): Stored<TenantRecord> {
    const record = this.tenant(name);
    if (record.value.state !== 'active') throw conflict(`tenant ${name} is disabled`);
    return record;
  }

  private credentialsOf(name: string): Stored<CredentialRecord>[] {
    return [...this.credentials.values()].filter((c) => c.value.tenant === name);
  }

  private view(record: Stored<TenantRecord>): TenantView {
    return {
      Name: record.value.name,
      State: record.value.state,
      CreatedAt: record.value.createdAt,
      RequireToken: record.value.requireToken ?? false,
      Policy: (() => {
        const p = this.policyOf(record.id)!;
        return {
          Allow: p.allow,
          DefaultMemory: p.defaultMemory,
          DefaultPidsLimit: p.defaultPidsLimit,
          ...(p.placementStrategy !== undefined ? { PlacementStrategy: p.placementStrategy } : {}),
        };
      })(),
      Quotas: quotasView(record.value.quotas ?? {}),
      ...(record.value.userns ? { UsernsRange: { Base: record.value.userns.base, Size: record.value.userns.count } } : {}),
      Credentials: this.credentialsOf(record.id)
        .sort((a, b) => a.value.createdAt.localeCompare(b.value.createdAt))
        .map(credentialView),
    };
  }
}

function credentialView(c: Stored<CredentialRecord>): CredentialView {
  return {
    ID: c.id,
    Kind: c.value.kind,
    CreatedAt: c.value.createdAt,
    ...(c.value.revokedAt ? { RevokedAt: c.value.revokedAt } : {}),
    ...(c.value.notAfter ? { NotAfter: c.value.notAfter } : {}),
    ...(c.value.description ? { Description: c.value.description } : {}),
  };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
