import type { FastifyInstance } from 'fastify';
import type { RequestContext } from '../../../common/context.js';
import { conflict, invalidArgument, isKind } from '../../../common/errors.js';
import { newId } from '../../../common/ids.js';
import type { Logger } from '../../../common/logging.js';
import { nowRfc3339Nano } from '../../../common/human-time.js';
import { requestContext } from '../../docker-api/request-context.js';
import { NETWORK_ID_HEADER } from '../../docker-api/control-plane-ids.js';
import { queryString } from '../../docker-api/query.js';
import { parseFilters } from '../../list-filters.js';
import { selectNetworks } from '../../networks/network-views.js';
import type { NetworkRecord } from '../../networks/model.js';
import type { Stored } from '../../store/store.js';
import type { ClusterHost } from '../agent-hub.js';
import type { FrontDeps } from './deps.js';
import { fanOut, holdersOf, pathAndQuery, upHosts } from './fan-out.js';

/**
 * User networks across the cluster: one network is one id and one subnet on every host.
 *
 * Record (kind `cluster-network`, tenant-scoped, id = the network's id, name = its name),
 * written once the first host made the network and before any other host is asked, so a
 * host that was down (or joins later) gets every network on `host-up`. The create body is
 * kept with the subnet the first host chose pinned in IPAM.Config, so every host's bridge
 * carries the same addresses. (Packets between hosts are the overlay's job: issue 7.)
 *
 * The predefined networks (bridge, host, none) are each host's own: listed once by name.
 * Containers connect on the host that runs them (the placement says which).
 */
export const CLUSTER_NETWORK_KIND = 'cluster-network';

export interface ClusterNetworkValue {
  name: string;
  /** The tenant's create body with IPAM.Config pinned to the subnet every host uses. */
  body: Record<string, unknown>;
  created: string;
  labels: Record<string, string>;
}

const PREDEFINED = new Set(['bridge', 'host', 'none']);

interface NetworkInspect {
  Id: string;
  Name: string;
  Created?: string;
  IPAM?: { Config?: { Subnet?: string; Gateway?: string; IPRange?: string }[] | null } | null;
  Containers?: Record<string, unknown> | null;
  [key: string]: unknown;
}

export async function registerNetworkRoutes(app: FastifyInstance, deps: FrontDeps): Promise<void> {
  // NetworkList: every host's list; a cluster network appears once, predefined ones once by name.
  app.get('/networks', async (request) => {
    const answers = await fanOut<NetworkInspect[]>(deps, requestContext(request), { method: 'GET', path: request.url });
    return mergeNetworkLists(answers.map((answer) => answer.value));
  });

  // NetworkInspect: the network as one host has it, with the containers of every host.
  app.get<{ Params: { id: string } }>('/networks/:id', async (request) => {
    const ctx = requestContext(request);
    const ref = (await findRecord(deps, ctx, request.params.id))?.id ?? request.params.id;
    const { query } = pathAndQuery(request.url);
    const holders = await holdersOf<NetworkInspect>(deps, ctx, `/networks/${encodeURIComponent(ref)}${query}`, upHosts(deps));
    if (holders.length === 0) {
      // The engine's own words for a missing network.
      return deps.hosts.json(ctx, upHosts(deps)[0]!.id, { method: 'GET', path: `/networks/${encodeURIComponent(ref)}${query}` });
    }
    return mergeNetworkInspects(holders.map((holder) => holder.value));
  });

  // NetworkCreate
  app.post('/networks/create', async (request, reply) => {
    const body = objectBody(request.body);
    const ctx = requestContext(request);
    const create = () => createNetwork(deps, ctx, body);
    const answer = deps.quotas ? await deps.quotas.guardNetworkCreate(ctx, create) : await create();
    return reply.code(201).send(answer);
  });

  // NetworkDelete
  app.delete<{ Params: { id: string } }>('/networks/:id', async (request, reply) => {
    const ctx = requestContext(request);
    const record = await findRecord(deps, ctx, request.params.id);
    if (record === undefined) {
      // Predefined or unknown: the engine answers (403 for predefined, 404 otherwise).
      await deps.hosts.json(ctx, upHosts(deps)[0]!.id, { method: 'DELETE', path: `/networks/${encodeURIComponent(request.params.id)}` });
      return reply.code(204).send();
    }
    await removeNetwork(deps, ctx, record);
    return reply.code(204).send();
  });

  // NetworkConnect / NetworkDisconnect: on the host that runs the container.
  for (const op of ['connect', 'disconnect'] as const) {
    app.post<{ Params: { id: string } }>(`/networks/:id/${op}`, async (request, reply) => {
      const ctx = requestContext(request);
      const body = objectBody(request.body);
      if (typeof body.Container !== 'string' || body.Container === '') throw invalidArgument('container is required');
      const placement = await deps.placements.resolve(ctx, body.Container);
      const ref = (await findRecord(deps, ctx, request.params.id))?.id ?? request.params.id;
      return deps.forward(request, reply, placement.value.hostId, { path: `/networks/${encodeURIComponent(ref)}/${op}` });
    });
  }

  // NetworkPrune: the tenant's unused cluster networks, removed everywhere or nowhere.
  app.post('/networks/prune', async (request) => pruneNetworks(deps, requestContext(request), queryString(request.query, 'filters')));

  // A host that joins (or comes back) gets the networks it lacks; creates on it wait for that.
  const onHostUp = (host: ClusterHost): void => {
    const previous = readiness.get(host.id) ?? Promise.resolve();
    const ready = previous
      .then(() => withRetries(() => ensureNetworksOnHost(deps, host), 3))
      .catch((err: unknown) => deps.logger.error({ err, host: host.name }, 'could not bring the cluster networks onto a host'));
    readiness.set(host.id, ready);
    void ready.finally(() => {
      if (readiness.get(host.id) === ready) readiness.delete(host.id);
    });
  };
  deps.hub.on('host-up', onHostUp);
  app.addHook('onClose', async () => {
    deps.hub.off('host-up', onHostUp);
  });
  for (const host of deps.hosts.up()) onHostUp(host);
}

/** A host that just came up may not answer its first streams yet: try again a few times. */
async function withRetries(work: () => Promise<void>, attempts: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    }
  }
}

/** Per host: the bringing of recorded networks onto it after it came up, while it runs. */
const readiness = new Map<string, Promise<void>>();

/**
 * Resolves once a host that just came up has every recorded network (at once otherwise), so
 * a container created there right after the host joined finds its network. Never rejects: a
 * network that could not be made is logged, and the engine's own "not found" answers.
 */
export function networksReadyOn(hostId: string): Promise<void> {
  return readiness.get(hostId) ?? Promise.resolve();
}

function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidArgument('invalid request body: a JSON object is required');
  return body as Record<string, unknown>;
}

async function findRecord(deps: FrontDeps, ctx: RequestContext, ref: string): Promise<Stored<ClusterNetworkValue> | undefined> {
  try {
    return await deps.store.lookup<ClusterNetworkValue>(ctx, CLUSTER_NETWORK_KIND, ref);
  } catch (err) {
    if (isKind(err, 'NotFound')) return undefined;
    throw err;
  }
}

/** At least this many rounds of "the first host chooses, the others take it" before giving up. */
const SUBNET_ATTEMPTS = 8;

/**
 * The first host chooses the subnet (it knows its own routes); the others get it pinned. A
 * host that refuses the pinned subnet (a bridge of its own uses it) makes the attempt roll
 * back and the next attempt start on that host, so its free subnet is the one chosen.
 */
export async function createNetwork(deps: FrontDeps, ctx: RequestContext, body: Record<string, unknown>): Promise<{ Id: string; Warning: string }> {
  const name = typeof body.Name === 'string' ? body.Name : '';
  const hosts = upHosts(deps);
  if (name === '' || PREDEFINED.has(name)) {
    // The engine's validation and words (name required, predefined names).
    return deps.hosts.json(ctx, hosts[0]!.id, { method: 'POST', path: '/networks/create', body });
  }
  if ((await findRecord(deps, ctx, name))?.name === name) throw conflict(`network with name ${name} already exists`);
  const id = newId();
  let order = hosts;
  // Each host picks at random among its first free subnets, so a clash with another host's own
  // bridges is chance, not fate: with two hosts, two attempts were too few (CI saw it).
  const attempts = Math.max(hosts.length, SUBNET_ATTEMPTS);
  for (let attempt = 0; attempt < attempts; attempt++) {
    const outcome = await createEverywhere(deps, ctx, id, body, order);
    if (outcome.created) return { Id: id, Warning: '' };
    const refusing = outcome.refusingHost;
    order = [refusing, ...hosts.filter((host) => host.id !== refusing.id)];
  }
  throw conflict(`no subnet is free on every host for network ${name}; name one with --subnet`);
}

async function createEverywhere(
  deps: FrontDeps,
  ctx: RequestContext,
  id: string,
  body: Record<string, unknown>,
  hosts: ClusterHost[],
): Promise<{ created: true } | { created: false; refusingHost: ClusterHost }> {
  const [first, ...rest] = hosts;
  const headers = { [NETWORK_ID_HEADER]: id };
  // The first host validates for everybody: its refusal is the tenant's answer.
  await deps.hosts.json(ctx, first!.id, { method: 'POST', path: '/networks/create', headers, body });
  const done: ClusterHost[] = [first!];
  let pinned: Record<string, unknown>;
  try {
    const inspect = await deps.hosts.json<NetworkInspect>(ctx, first!.id, { method: 'GET', path: `/networks/${id}` });
    pinned = pinSubnet(body, inspect);
    await deps.store.create<ClusterNetworkValue>(ctx, CLUSTER_NETWORK_KIND, {
      id,
      name: String(body.Name),
      value: { name: String(body.Name), body: pinned, created: inspect.Created ?? nowRfc3339Nano(), labels: stringMap(body.Labels) },
    });
  } catch (err) {
    await dropFrom(deps, ctx, id, done, deps.logger);
    throw err;
  }
  for (const host of rest) {
    try {
      await deps.hosts.json(ctx, host.id, { method: 'POST', path: '/networks/create', headers, body: pinned });
      done.push(host);
    } catch (err) {
      await dropFrom(deps, ctx, id, done, deps.logger);
      await deps.store.delete(ctx, CLUSTER_NETWORK_KIND, id).catch(() => undefined);
      // A refusal of the pinned subnet (the tenant asked for none) is worth another attempt.
      if (isKind(err, 'Forbidden') && !hasOwnSubnet(body)) return { created: false, refusingHost: host };
      throw err;
    }
  }
  return { created: true };
}

async function dropFrom(deps: FrontDeps, ctx: RequestContext, id: string, hosts: ClusterHost[], log: Logger): Promise<void> {
  for (const host of hosts) {
    await deps.hosts.json(ctx, host.id, { method: 'DELETE', path: `/networks/${id}` }).catch((err: unknown) => {
      if (!isKind(err, 'NotFound')) log.warn({ err, host: host.name, network: id }, 'rollback could not remove a network from a host');
    });
  }
}

const hasOwnSubnet = (body: Record<string, unknown>): boolean => {
  const config = (body.IPAM as { Config?: unknown } | undefined)?.Config;
  return Array.isArray(config) && config.length > 0;
};

/** The create body with the subnet (gateway, range) the first host chose. */
export function pinSubnet(body: Record<string, unknown>, inspect: NetworkInspect): Record<string, unknown> {
  const chosen = inspect.IPAM?.Config?.[0];
  if (chosen?.Subnet === undefined) return body;
  const ipam = (typeof body.IPAM === 'object' && body.IPAM !== null ? body.IPAM : {}) as Record<string, unknown>;
  const pool: Record<string, string> = { Subnet: chosen.Subnet };
  if (chosen.Gateway) pool.Gateway = chosen.Gateway;
  if (chosen.IPRange) pool.IPRange = chosen.IPRange;
  return { ...body, IPAM: { ...ipam, Config: [pool] } };
}

/**
 * Removes a cluster network from every up host, then its record. A host that refuses (a
 * container of it still uses the network) gets the others' copies made again, so the
 * network stays everywhere or goes everywhere.
 */
export async function removeNetwork(deps: FrontDeps, ctx: RequestContext, record: Stored<ClusterNetworkValue>): Promise<void> {
  const removed: ClusterHost[] = [];
  for (const host of upHosts(deps)) {
    try {
      await deps.hosts.json(ctx, host.id, { method: 'DELETE', path: `/networks/${record.id}` });
      removed.push(host);
    } catch (err) {
      if (isKind(err, 'NotFound')) continue;
      for (const done of removed) {
        await deps.hosts
          .json(ctx, done.id, { method: 'POST', path: '/networks/create', headers: { [NETWORK_ID_HEADER]: record.id }, body: record.value.body })
          .catch((undo: unknown) => deps.logger.error({ err: undo, host: done.name, network: record.id }, 'could not restore a network after a refused removal'));
      }
      throw err;
    }
  }
  await deps.store.delete(ctx, CLUSTER_NETWORK_KIND, record.id).catch((err: unknown) => {
    if (!isKind(err, 'NotFound')) throw err;
  });
}

async function pruneNetworks(deps: FrontDeps, ctx: RequestContext, rawFilters: string | undefined): Promise<{ NetworksDeleted: string[] }> {
  const filters = parseFilters(rawFilters);
  for (const key of Object.keys(filters)) {
    if (!['until', 'label', 'label!'].includes(key)) throw invalidArgument(`invalid filter '${key}'`);
  }
  const records = await deps.store.list<ClusterNetworkValue>(ctx, CLUSTER_NETWORK_KIND);
  const asNetworks = records.map((record) => networkLike(record));
  const chosen = new Set(selectNetworks(asNetworks, filters, () => false).map((network) => network.id));
  const deleted: string[] = [];
  for (const record of records) {
    if (!chosen.has(record.id)) continue;
    try {
      await removeNetwork(deps, ctx, record);
      deleted.push(record.value.name);
    } catch (err) {
      if (!isKind(err, 'Forbidden') && !isKind(err, 'Conflict')) deps.logger.warn({ err, network: record.value.name }, 'prune could not remove a network');
    }
  }
  return { NetworksDeleted: deleted };
}

/** Enough of an engine record for the engine's own filter function. */
function networkLike(record: Stored<ClusterNetworkValue>): NetworkRecord {
  return {
    id: record.id,
    name: record.value.name,
    driver: 'bridge',
    created: record.value.created,
    internal: false,
    attachable: false,
    labels: record.value.labels,
    options: {},
    ipam: { Driver: 'default', Config: [], Options: null },
  };
}

/** Makes every recorded network (all tenants) exist on a host that just came up. */
export async function ensureNetworksOnHost(deps: FrontDeps, host: ClusterHost): Promise<void> {
  for (const record of await deps.store.listAllTenants<ClusterNetworkValue>(CLUSTER_NETWORK_KIND)) {
    const ctx: RequestContext = { tenant: record.tenant, requestId: `host-up-${host.id}` };
    // Create first, no lookup before: a lookup would make the tenant's default bridge on a
    // fresh host before the engine knows which subnet this network needs. "Already exists"
    // (409) means the host has it.
    try {
      await deps.hosts.json(ctx, host.id, { method: 'POST', path: '/networks/create', headers: { [NETWORK_ID_HEADER]: record.id }, body: record.value.body });
      deps.logger.info({ host: host.name, network: record.value.name }, 'network created on a host that joined');
    } catch (err) {
      if (!isKind(err, 'Conflict')) throw err;
    }
  }
}

/**
 * Makes the cluster networks a container create names (its NetworkMode and the networks of its
 * NetworkingConfig) exist on a host; true when any was missing there and is now made.
 */
export async function ensureContainerNetworksOnHost(deps: FrontDeps, ctx: RequestContext, hostId: string, body: Record<string, unknown>): Promise<boolean> {
  const hostConfig = (body.HostConfig ?? {}) as { NetworkMode?: unknown };
  const endpoints = ((body.NetworkingConfig ?? {}) as { EndpointsConfig?: Record<string, unknown> | null }).EndpointsConfig ?? {};
  const names = new Set<string>(Object.keys(endpoints));
  if (typeof hostConfig.NetworkMode === 'string') names.add(hostConfig.NetworkMode);
  let made = false;
  for (const name of names) {
    const record = await findRecord(deps, ctx, name);
    if (!record) continue; // bridge, host, none, container:<id>, or unknown: the engine answers
    try {
      await deps.hosts.json(ctx, hostId, { method: 'POST', path: '/networks/create', headers: { [NETWORK_ID_HEADER]: record.id }, body: record.value.body });
      made = true;
    } catch (err) {
      if (!isKind(err, 'Conflict')) throw err;
    }
  }
  return made;
}

/** One list from every host's: by id for cluster networks, by name for predefined ones. */
export function mergeNetworkLists(lists: NetworkInspect[][]): NetworkInspect[] {
  const seen = new Map<string, NetworkInspect>();
  for (const list of lists) {
    for (const network of list) {
      const key = PREDEFINED.has(network.Name) ? `name:${network.Name}` : `id:${network.Id}`;
      if (!seen.has(key)) seen.set(key, network);
    }
  }
  return [...seen.values()].sort((a, b) => a.Name.localeCompare(b.Name));
}

/** The first host's view, with the containers every host has on the network. */
export function mergeNetworkInspects(views: NetworkInspect[]): NetworkInspect {
  const [first] = views;
  const containers: Record<string, unknown> = {};
  for (const view of views) Object.assign(containers, view.Containers ?? {});
  return { ...first!, Containers: containers };
}

function stringMap(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null) return {};
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
}

