import type { FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { enforceCreatePolicy, enforceExecPolicy, enforceRegistryPolicy, enforceUpdatePolicy, enforceVolumeCreatePolicy } from '../tenancy/policy.js';
import { isHostNetworkDomain, registryKey, splitRepository } from '../registry/endpoint.js';
import { parseReference } from '../images/reference.js';

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

/**
 * A tenant's pull, push or login may not make Berth dial the host's own networks (an SSRF
 * into the provider) unless the operator allowed it. `name` is an image reference, or with
 * `isServerAddress` a login's server address.
 */
export function admitRegistry(tenants: Pick<Services['tenants'], 'policyOf'>, request: FastifyRequest, name: string, isServerAddress = false): void {
  const policy = tenants.policyOf(request.tenant);
  if (!policy) return;
  const domain = isServerAddress ? registryKey(name) : splitRepository(parseReference(name).name).domain;
  enforceRegistryPolicy(policy, isHostNetworkDomain(domain), domain);
}

export function admitExec(services: Services, request: FastifyRequest, body: unknown): void {
  const policy = services.tenants.policyOf(request.tenant);
  if (policy) enforceExecPolicy(policy, body);
}

export function admitVolumeCreate(services: Services, request: FastifyRequest, body: unknown): void {
  const policy = services.tenants.policyOf(request.tenant);
  if (policy) enforceVolumeCreatePolicy(policy, body);
}
