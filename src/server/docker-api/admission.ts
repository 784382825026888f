import type { FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { enforceCreatePolicy, enforceExecPolicy, enforceUpdatePolicy } from '../tenancy/policy.js';

/**
 * Admission at the API boundary: a tenant's create, update and exec requests pass its policy
 * (escape hatches refused, default limits filled in) before any service sees them. The
 * operator's own requests pass unchanged.
 */
export function admitCreate(services: Services, request: FastifyRequest, body: Record<string, unknown>): Record<string, unknown> {
  const policy = services.tenants.policyOf(request.tenant);
  if (!policy) return body;
  return { ...body, HostConfig: enforceCreatePolicy(policy, body.HostConfig) };
}

export function admitUpdate(services: Services, request: FastifyRequest, body: Record<string, unknown>): Record<string, unknown> {
  const policy = services.tenants.policyOf(request.tenant);
  return policy ? enforceUpdatePolicy(policy, body) : body;
}

export function admitExec(services: Services, request: FastifyRequest, body: unknown): void {
  const policy = services.tenants.policyOf(request.tenant);
  if (policy) enforceExecPolicy(policy, body);
}
