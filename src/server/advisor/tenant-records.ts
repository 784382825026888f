import { randomBytes } from 'node:crypto';
import type { RequestContext } from '../../common/context.js';
import { invalidArgument, isKind } from '../../common/errors.js';
import type { Store } from '../store/store.js';
import { SEVERITIES, type Severity } from './model.js';

/**
 * The Advisor's tenant-owned records, kept in the Store under the tenant's scope so they are
 * scoped, durable and (later) replicated like every other tenant record:
 * - `advisor-policy` (one record, id "policy"): the severity at or above which the tenant's
 *   container creates are refused;
 * - `advisor-exemption`: a finding the operator accepted for the tenant (image or every
 *   image; CVE/advisory id or compliance check id), with a reason, an expiry and who said so;
 * - `advisor-alert`: a running container became vulnerable or non-compliant.
 */
export const POLICY_KIND = 'advisor-policy';
export const EXEMPTION_KIND = 'advisor-exemption';
export const ALERT_KIND = 'advisor-alert';

export interface AdvisorPolicy {
  /** Refuse creates from images with a non-exempt finding at or above this; null: no blocking. */
  blockSeverity: Severity | null;
  updatedAt: string;
}

export interface Exemption {
  id: string;
  /** "sha256:<hex>" of the image, or "*" for every image of the tenant. */
  imageId: string;
  /** What the operator typed for the image (kept for display). */
  imageRef: string;
  /** An advisory id (CVE-…, DSA-…, GHSA-…; aliases match too) or a compliance check id. */
  findingId: string;
  reason: string;
  /** RFC 3339; null: until removed. */
  expiresAt: string | null;
  createdBy: string;
  createdAt: string;
}

export interface Alert {
  id: string;
  time: string;
  containerId: string;
  containerName: string;
  imageId: string;
  /** `advisor:vulnerable` or `advisor:noncompliant`. */
  action: string;
  /** Why it was evaluated: a scan (periodic or on demand) or a new feed version. */
  cause: string;
  /** The new findings: advisory or check ids with package and severity. */
  findings: { id: string; package?: string; severity: Severity }[];
}

export function parseSeverity(text: unknown, field: string): Severity {
  if (typeof text !== 'string' || !(SEVERITIES as readonly string[]).includes(text.toLowerCase())) {
    throw invalidArgument(`${field} must be one of ${SEVERITIES.join(', ')}`);
  }
  return text.toLowerCase() as Severity;
}

export class AdvisorRecords {
  constructor(private readonly store: Store) {}

  async policy(ctx: RequestContext): Promise<AdvisorPolicy> {
    try {
      return (await this.store.get<AdvisorPolicy>(ctx, POLICY_KIND, 'policy')).value;
    } catch (err) {
      if (isKind(err, 'NotFound')) return { blockSeverity: null, updatedAt: '' };
      throw err;
    }
  }

  async setPolicy(ctx: RequestContext, blockSeverity: Severity | null): Promise<AdvisorPolicy> {
    const value: AdvisorPolicy = { blockSeverity, updatedAt: new Date().toISOString() };
    try {
      const current = await this.store.get<AdvisorPolicy>(ctx, POLICY_KIND, 'policy');
      await this.store.update(ctx, POLICY_KIND, 'policy', { value, expectedRevision: current.revision });
    } catch (err) {
      if (!isKind(err, 'NotFound')) throw err;
      await this.store.create(ctx, POLICY_KIND, { id: 'policy', value });
    }
    return value;
  }

  async exemptions(ctx: RequestContext): Promise<Exemption[]> {
    return (await this.store.list<Exemption>(ctx, EXEMPTION_KIND)).map((r) => r.value).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async addExemption(ctx: RequestContext, input: Omit<Exemption, 'id' | 'createdAt'>): Promise<Exemption> {
    const value: Exemption = { ...input, id: randomBytes(6).toString('hex'), createdAt: new Date().toISOString() };
    await this.store.create(ctx, EXEMPTION_KIND, { id: value.id, value });
    return value;
  }

  async removeExemption(ctx: RequestContext, id: string): Promise<void> {
    await this.store.delete(ctx, EXEMPTION_KIND, id);
  }

  async alerts(ctx: RequestContext): Promise<Alert[]> {
    return (await this.store.list<Alert>(ctx, ALERT_KIND)).map((r) => r.value).sort((a, b) => a.time.localeCompare(b.time));
  }

  async addAlert(ctx: RequestContext, input: Omit<Alert, 'id' | 'time'>): Promise<Alert> {
    const time = new Date().toISOString();
    // Time first in the id, so ids sort as the alerts happened.
    const value: Alert = { ...input, id: `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`, time };
    await this.store.create(ctx, ALERT_KIND, { id: value.id, value });
    return value;
  }
}
