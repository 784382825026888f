import type { FastifyInstance } from 'fastify';
import { invalidArgument } from '../../common/errors.js';
import type { TenantService, TenantState } from '../tenancy/tenant-service.js';
import type { TenantPolicy } from '../tenancy/policy.js';
import type { Strategy } from '../scheduler/types.js';
import { requireOperator } from '../docker-api/auth.js';

type NameParams = { Params: { name: string } };

function policyChange(raw: unknown): Partial<TenantPolicy> | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidArgument('Policy must be an object');
  const p = raw as Record<string, unknown>;
  const out: Partial<TenantPolicy> = {};
  if (p.Allow !== undefined) {
    if (!Array.isArray(p.Allow) || !p.Allow.every((a) => typeof a === 'string')) throw invalidArgument('Policy.Allow must be a list of rule ids');
    out.allow = p.Allow as string[];
  }
  for (const [field, key] of [['DefaultMemory', 'defaultMemory'], ['DefaultPidsLimit', 'defaultPidsLimit']] as const) {
    if (p[field] === undefined) continue;
    if (typeof p[field] !== 'number') throw invalidArgument(`Policy.${field} must be a number`);
    out[key] = p[field];
  }
  if (p.PlacementStrategy !== undefined) {
    // Validated by TenantService.update (spread or binpack).
    if (typeof p.PlacementStrategy !== 'string') throw invalidArgument('Policy.PlacementStrategy must be "spread" or "binpack"');
    out.placementStrategy = p.PlacementStrategy as Strategy;
  }
  return out;
}

function optionalString(body: unknown, key: string): string | undefined {
  const value = (body as Record<string, unknown> | undefined)?.[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalidArgument(`${key} must be a string`);
  return value;
}

function optionalBool(body: unknown, key: string): boolean | undefined {
  const value = (body as Record<string, unknown> | undefined)?.[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw invalidArgument(`${key} must be true or false`);
  return value;
}

/**
 * Berth's admin API for tenants, under /berth/v1 beside the Docker API and in its error shape.
 * Served to the operator only (the local socket); the berth CLI is its client.
 */
export async function tenantAdminRoutes(app: FastifyInstance, opts: { tenants: TenantService; endpoints: string[] }): Promise<void> {
  const { tenants, endpoints } = opts;
  app.addHook('onRequest', async (request) => requireOperator(request));

  app.get('/berth/v1/tenants', async () => tenants.list());

  app.post('/berth/v1/tenants', async (request, reply) => {
    const name = optionalString(request.body, 'Name');
    if (!name) throw invalidArgument('Name is required');
    const requireToken = optionalBool(request.body, 'RequireToken');
    const view = await tenants.create(name, requireToken === undefined ? {} : { requireToken });
    return reply.code(201).send(view);
  });

  app.get<NameParams>('/berth/v1/tenants/:name', async (request) => tenants.inspect(request.params.name));

  app.post<NameParams>('/berth/v1/tenants/:name/update', async (request) => {
    const state = optionalString(request.body, 'State');
    if (state !== undefined && state !== 'active' && state !== 'disabled') throw invalidArgument('State must be "active" or "disabled"');
    const requireToken = optionalBool(request.body, 'RequireToken');
    const policy = policyChange((request.body as Record<string, unknown> | undefined)?.Policy);
    return tenants.update(request.params.name, {
      ...(state !== undefined ? { state: state as TenantState } : {}),
      ...(requireToken !== undefined ? { requireToken } : {}),
      ...(policy !== undefined ? { policy } : {}),
    });
  });

  app.delete<NameParams>('/berth/v1/tenants/:name', async (request, reply) => {
    await tenants.remove(request.params.name);
    return reply.code(204).send();
  });

  app.post<NameParams>('/berth/v1/tenants/:name/certificates', async (request, reply) => {
    const issued = await tenants.issueCertificate(request.params.name, optionalString(request.body, 'Description'));
    return reply.code(201).send({
      ID: issued.serial,
      NotAfter: issued.notAfter,
      CaPem: tenants.caPem,
      CertPem: issued.certPem,
      KeyPem: issued.keyPem,
      // Where tenants reach this Berth (its tcp:// listeners), for the docker context line.
      Endpoints: endpoints,
    });
  });

  app.post<NameParams>('/berth/v1/tenants/:name/tokens', async (request, reply) => {
    const issued = await tenants.issueToken(request.params.name, optionalString(request.body, 'Description'));
    return reply.code(201).send({ ID: issued.id, Token: issued.token });
  });

  app.post<{ Params: { name: string; id: string } }>('/berth/v1/tenants/:name/credentials/:id/revoke', async (request) =>
    tenants.revoke(request.params.name, request.params.id),
  );
}
