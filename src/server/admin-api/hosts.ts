import type { FastifyInstance } from 'fastify';
import { invalidArgument } from '../../common/errors.js';
import { requireOperator } from '../docker-api/auth.js';
import type { HostAdmin } from '../cluster/hub/start-agent-hub.js';
import type { HostDetail } from '../cluster/hub/host-registry.js';

type RefParams = { Params: { ref: string } };

/** A host as the admin API shows it (Docker-style capitalised fields). */
export interface HostView {
  ID: string;
  Name: string;
  Address: string;
  State: 'up' | 'down';
  Cordoned: boolean;
  Labels: Record<string, string>;
  AgentLabels: Record<string, string>;
  OperatorLabels: Record<string, string>;
  Capacity: { Cpus: number; MemoryBytes: number; DiskBytes: number; Devices: { Kind: string; Path: string }[] };
  Containers: number;
  Images: number;
  EngineVersion: string;
  LastSeen: string | null;
  JoinedAt: string;
  CertificateSerial: string;
}

export function hostView(h: HostDetail): HostView {
  return {
    ID: h.id,
    Name: h.name,
    Address: h.address,
    State: h.state,
    Cordoned: h.cordoned,
    Labels: h.labels,
    AgentLabels: h.agentLabels,
    OperatorLabels: h.operatorLabels,
    Capacity: {
      Cpus: h.capacity.cpus,
      MemoryBytes: h.capacity.memoryBytes,
      DiskBytes: h.capacity.diskBytes,
      Devices: h.capacity.devices.map((d) => ({ Kind: d.kind, Path: d.path })),
    },
    Containers: h.containerCount,
    Images: h.imageIds.length,
    EngineVersion: h.engineVersion,
    LastSeen: h.lastSeen > 0 ? new Date(h.lastSeen).toISOString() : null,
    JoinedAt: h.joinedAt,
    CertificateSerial: h.certSerial,
  };
}

function stringMap(raw: unknown, field: string): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw) || !Object.values(raw).every((v) => typeof v === 'string')) {
    throw invalidArgument(`${field} must map label names to strings`);
  }
  return raw as Record<string, string>;
}

function stringList(raw: unknown, field: string): string[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || !raw.every((v) => typeof v === 'string')) throw invalidArgument(`${field} must be a list of label names`);
  return raw as string[];
}

/**
 * The hosts admin API under /berth/v1 (operator only, like the tenants'): hosts of the cluster,
 * their labels, cordon and drain, removal, and the join tokens new hosts use.
 */
export async function hostAdminRoutes(app: FastifyInstance, opts: { hosts: HostAdmin }): Promise<void> {
  const { hosts } = opts;
  app.addHook('onRequest', async (request) => requireOperator(request));

  app.get('/berth/v1/hosts', async () => hosts.list().map(hostView));
  app.get<RefParams>('/berth/v1/hosts/:ref', async (request) => hostView(hosts.inspect(request.params.ref)));
  app.post<RefParams>('/berth/v1/hosts/:ref/labels', async (request) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    return hostView(await hosts.label(request.params.ref, stringMap(body.Add, 'Add'), stringList(body.Remove, 'Remove')));
  });
  app.post<RefParams>('/berth/v1/hosts/:ref/cordon', async (request) => hostView(await hosts.cordon(request.params.ref)));
  app.post<RefParams>('/berth/v1/hosts/:ref/uncordon', async (request) => hostView(await hosts.uncordon(request.params.ref)));
  app.post<RefParams>('/berth/v1/hosts/:ref/drain', async (request) => hostView(await hosts.drain(request.params.ref)));
  app.delete<RefParams & { Querystring: { force?: string } }>('/berth/v1/hosts/:ref', async (request, reply) => {
    const force = request.query.force === '1' || request.query.force === 'true';
    await hosts.remove(request.params.ref, force);
    return reply.code(204).send();
  });

  app.get('/berth/v1/join-tokens', async () => hosts.joinTokens.list());
  app.post('/berth/v1/join-tokens', async (request, reply) => {
    const description = (request.body as Record<string, unknown> | undefined)?.Description;
    if (description !== undefined && typeof description !== 'string') throw invalidArgument('Description must be a string');
    const issued = await hosts.joinTokens.create(description);
    return reply.code(201).send({ ID: issued.id, Token: issued.token });
  });
  app.post<{ Params: { id: string } }>('/berth/v1/join-tokens/:id/revoke', async (request) => hosts.joinTokens.revoke(request.params.id));
}
