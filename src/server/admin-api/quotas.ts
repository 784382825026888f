import type { FastifyInstance } from 'fastify';
import type { TenantService } from '../tenancy/tenant-service.js';
import type { QuotaService } from '../tenancy/quota-service.js';
import { parseQuotaChange, quotasView } from '../tenancy/quotas.js';
import { requireOperator } from '../docker-api/auth.js';

type NameParams = { Params: { name: string } };

/**
 * Tenant quotas on the admin API (operator only):
 *   GET  /berth/v1/tenants/NAME/quota  → {"Quotas": {...}, "Usage": {...}}, every quota's use
 *   POST /berth/v1/tenants/NAME/quota  {"Memory": 4294967296, "Cpus": null} sets or clears
 * Sizes are bytes, CPUs a number; an absent quota is unlimited.
 */
export async function quotaAdminRoutes(app: FastifyInstance, opts: { tenants: TenantService; quotas: QuotaService }): Promise<void> {
  const { tenants, quotas } = opts;
  app.addHook('onRequest', async (request) => requireOperator(request));

  const answer = async (name: string): Promise<{ Tenant: string; Quotas: object; Usage: object }> => {
    const { quotas: set, usage } = await quotas.usage({ tenant: name, requestId: 'admin-quota' }, true);
    return { Tenant: name, Quotas: quotasView(set), Usage: quotasView(usage) };
  };

  app.get<NameParams>('/berth/v1/tenants/:name/quota', async (request) => {
    tenants.inspect(request.params.name); // 404 for an unknown tenant
    return answer(request.params.name);
  });

  app.post<NameParams>('/berth/v1/tenants/:name/quota', async (request) => {
    await tenants.update(request.params.name, { quotas: parseQuotaChange(request.body ?? {}) });
    return answer(request.params.name);
  });
}
