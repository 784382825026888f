import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OPERATOR_TENANT, type RequestContext } from '../../common/context.js';
import { forbidden, invalidArgument, notFound } from '../../common/errors.js';
import type { AdvisorService } from '../advisor/advisor-service.js';
import type { FeedSource } from '../advisor/feed-versions.js';
import { parseSeverity } from '../advisor/tenant-records.js';
import type { TenantService } from '../tenancy/tenant-service.js';
import { requireOperator } from '../docker-api/auth.js';
import { requestContext } from '../docker-api/request-context.js';
import { queryString } from '../docker-api/query.js';

/**
 * The Advisor's API under /berth/v1/advisor, in Docker's error shape, on every listener:
 *
 * - reports, SBOMs, scans, alerts and the list of exemptions are scoped like any Docker call:
 *   a tenant over mutual TLS sees only its own images and containers; the operator (local
 *   socket) sees its own, or a tenant's with `?tenant=NAME`;
 * - feeds, policy and exemption changes are the operator's only (403 for a tenant).
 */
export async function advisorRoutes(app: FastifyInstance, opts: { advisor: AdvisorService; tenants: TenantService }): Promise<void> {
  const { advisor, tenants } = opts;

  /** The scope of a request: the caller's own, or for the operator the tenant it names. */
  const scope = (request: FastifyRequest, named?: string): RequestContext => {
    const ctx = requestContext(request);
    const tenant = named ?? queryString(request.query, 'tenant');
    if (tenant === undefined || tenant === '' || tenant === ctx.tenant) return ctx;
    if (ctx.tenant !== OPERATOR_TENANT) throw forbidden('only the operator can act in another tenant\'s scope');
    if (tenant !== OPERATOR_TENANT) tenants.inspect(tenant); // NotFound: "No such tenant"
    return { tenant, requestId: ctx.requestId };
  };

  // ---- images: /berth/v1/advisor/images/{ref}/report | /sbom (references contain slashes) ----
  app.get('/berth/v1/advisor/images/*', async (request) => {
    const rest = (request.params as { '*': string })['*'];
    const match = /^(.+)\/(report|sbom)$/.exec(rest);
    if (!match) throw notFound('page not found');
    const ref = decodeURIComponent(match[1]!);
    if (match[2] === 'report') return advisor.imageReport(scope(request), ref);
    const format = queryString(request.query, 'format') ?? 'cyclonedx';
    if (format !== 'cyclonedx' && format !== 'spdx') throw invalidArgument('format must be cyclonedx or spdx');
    return advisor.imageSbom(scope(request), ref, format);
  });

  // ---- containers ------------------------------------------------------------------------
  app.get<{ Params: { id: string } }>('/berth/v1/advisor/containers/:id/report', async (request) =>
    advisor.containerReport(scope(request), request.params.id),
  );
  app.post<{ Params: { id: string } }>('/berth/v1/advisor/containers/:id/scan', async (request) =>
    advisor.scanContainer(scope(request), request.params.id),
  );
  app.post('/berth/v1/advisor/scan', async (request, reply) => {
    requireOperator(request);
    await advisor.scanRunning();
    return reply.code(204).send();
  });

  // ---- alerts, exemptions, policy --------------------------------------------------------
  app.get('/berth/v1/advisor/alerts', async (request) => advisor.alerts(scope(request)));
  app.get('/berth/v1/advisor/exemptions', async (request) => advisor.exemptions(scope(request)));

  app.post('/berth/v1/advisor/exemptions', async (request, reply) => {
    requireOperator(request);
    const body = objectBody(request.body);
    const ctx = scope(request, optionalString(body, 'Tenant'));
    const exemption = await advisor.addExemption(ctx, {
      image: requiredString(body, 'Image'),
      findingId: requiredString(body, 'Finding'),
      reason: requiredString(body, 'Reason'),
      expiresAt: optionalString(body, 'Expires') ?? null,
      createdBy: optionalString(body, 'By') ?? 'operator',
    });
    return reply.code(201).send(exemption);
  });

  app.delete<{ Params: { id: string } }>('/berth/v1/advisor/exemptions/:id', async (request, reply) => {
    requireOperator(request);
    await advisor.removeExemption(scope(request), request.params.id);
    return reply.code(204).send();
  });

  app.get<{ Params: { tenant: string } }>('/berth/v1/advisor/policies/:tenant', async (request) =>
    advisor.policy(scope(request, request.params.tenant)),
  );

  app.put<{ Params: { tenant: string } }>('/berth/v1/advisor/policies/:tenant', async (request) => {
    requireOperator(request);
    const body = objectBody(request.body);
    const raw = body.BlockSeverity;
    const severity = raw === null || raw === undefined || raw === '' || raw === 'none' ? null : parseSeverity(raw, 'BlockSeverity');
    return advisor.setPolicy(scope(request, request.params.tenant), severity);
  });

  // ---- feeds -----------------------------------------------------------------------------
  app.get('/berth/v1/advisor/feeds', async () => advisor.listFeeds());

  app.post('/berth/v1/advisor/feeds', async (request, reply) => {
    requireOperator(request);
    const body = objectBody(request.body);
    const sources = body.Sources;
    if (!Array.isArray(sources) || sources.length === 0) throw invalidArgument('Sources must be a non-empty list');
    const parsed: FeedSource[] = sources.map((s, i) => {
      const source = objectBody(s);
      const format = source.Format;
      if (format !== 'debian-tracker' && format !== 'osv') throw invalidArgument(`Sources[${i}].Format must be debian-tracker or osv`);
      return { format, name: optionalString(source, 'Name') ?? `source-${i}`, data: source.Data };
    });
    return reply.code(201).send(await advisor.importFeed(parsed, body.Replace === true));
  });

  app.post('/berth/v1/advisor/feeds/build', async (request, reply) => {
    requireOperator(request);
    const body = objectBody(request.body);
    const sourcePackages = body.SourcePackages;
    if (sourcePackages !== undefined && (!Array.isArray(sourcePackages) || !sourcePackages.every((p) => typeof p === 'string'))) {
      throw invalidArgument('SourcePackages must be a list of package names');
    }
    const release = optionalString(body, 'Release');
    const summary = await advisor.buildFeed({
      mirror: requiredString(body, 'Mirror'),
      suite: requiredString(body, 'Suite'),
      ...(release ? { release } : {}),
      ...(sourcePackages ? { sourcePackages: sourcePackages as string[] } : {}),
      replace: body.Replace === true,
    });
    return reply.code(201).send(summary);
  });

  app.get('/berth/v1/advisor/stats', async (request) => {
    requireOperator(request);
    return advisor.stats;
  });
}

function objectBody(raw: unknown): Record<string, unknown> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidArgument('the request body must be a JSON object');
  return raw as Record<string, unknown>;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalidArgument(`${key} must be a string`);
  return value;
}

function requiredString(body: Record<string, unknown>, key: string): string {
  const value = optionalString(body, key);
  if (value === undefined || value === '') throw invalidArgument(`${key} is required`);
  return value;
}
