import type { FastifyInstance } from 'fastify';
import type { AuditEntry, AuditLog } from '../audit/audit-log.js';
import { invalidArgument } from '../../common/errors.js';
import { parseTimeSpec } from '../events/time-spec.js';
import { queryString } from '../docker-api/query.js';
import { requireOperator } from '../docker-api/auth.js';

/**
 * GET /berth/v1/audit?tenant=T&since=TIME&until=TIME&limit=N: the audit log, newest first, for
 * the operator only. TIME takes what `docker events --since` does (RFC 3339, unix seconds, or a
 * duration such as 1h meaning that long ago). Tenants cannot read it, not even their own part:
 * it names credentials and failed attempts, which are the operator's to investigate.
 */
export async function auditAdminRoutes(app: FastifyInstance, opts: { audit: AuditLog }): Promise<void> {
  app.addHook('onRequest', async (request) => requireOperator(request));

  app.get('/berth/v1/audit', async (request) => {
    const q = request.query;
    const now = BigInt(Date.now()) * 1_000_000n;
    const time = (key: string): Date | undefined => {
      const ns = parseTimeSpec(queryString(q, key), now);
      return ns === undefined ? undefined : new Date(Number(ns / 1_000_000n));
    };
    const limitText = queryString(q, 'limit');
    const limit = limitText === undefined || limitText === '' ? 100 : Number(limitText);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 100_000) throw invalidArgument('limit must be a whole number from 1 to 100000');
    const tenant = queryString(q, 'tenant');
    const since = time('since');
    const until = time('until');
    const entries = await opts.audit.query({
      limit,
      ...(tenant !== undefined && tenant !== '' ? { tenant } : {}),
      ...(since ? { since } : {}),
      ...(until ? { until } : {}),
    });
    return entries.map(entryView);
  });
}

function entryView(e: AuditEntry): Record<string, unknown> {
  return {
    Seq: e.seq,
    Time: e.time.toISOString(),
    Tenant: e.tenant,
    Credential: e.credential,
    Method: e.method,
    Path: e.path,
    Object: e.result?.object ?? e.object ?? null,
    RequestId: e.requestId,
    Result: e.result
      ? { Time: e.result.time.toISOString(), Status: e.result.status, ...(e.result.error !== undefined ? { Error: e.result.error } : {}) }
      : null,
  };
}
