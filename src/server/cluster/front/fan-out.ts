import type { RequestContext } from '../../../common/context.js';
import { isKind, unavailable } from '../../../common/errors.js';
import type { ClusterHost } from '../agent-hub.js';
import type { FrontDeps, HostCall } from './deps.js';

/**
 * Helpers the image, network, volume and event routes share to ask several hosts the same
 * question. Terms: a *holder* is an up host on which the tenant's object (image, network,
 * volume) exists; *least loaded* is the up, uncordoned host with the fewest containers in the
 * scheduler's cache (ties: the most memory), the host a new object without a better home goes to.
 */
export interface HostAnswer<T> {
  host: ClusterHost;
  value: T;
}

type FanOutDeps = Pick<FrontDeps, 'hosts' | 'logger'>;

/**
 * Sends one call to every up host at once, in the hub's stable order. A host that fails (it
 * went down between the hub's list and the call) is logged and left out: a list must not
 * fail because one host is leaving.
 */
export async function fanOut<T>(deps: FanOutDeps, ctx: RequestContext, call: HostCall | ((host: ClusterHost) => HostCall)): Promise<HostAnswer<T>[]> {
  const hosts = deps.hosts.up();
  const settled = await Promise.allSettled(hosts.map((host) => deps.hosts.json<T>(ctx, host.id, typeof call === 'function' ? call(host) : call)));
  const answers: HostAnswer<T>[] = [];
  settled.forEach((result, index) => {
    const host = hosts[index]!;
    if (result.status === 'fulfilled') answers.push({ host, value: result.value });
    else deps.logger.warn({ err: result.reason, host: host.name }, 'a host did not answer a fan-out call');
  });
  return answers;
}

/**
 * The up hosts on which `path` (an inspect path such as `/images/busybox/json`) answers, with
 * the answer, in the hub's order. NotFound answers are left out; any other refusal is thrown,
 * so a malformed reference gets the engine's own 400.
 */
export async function holdersOf<T>(deps: FanOutDeps, ctx: RequestContext, path: string, hosts = deps.hosts.up()): Promise<HostAnswer<T>[]> {
  const settled = await Promise.allSettled(hosts.map((host) => deps.hosts.json<T>(ctx, host.id, { method: 'GET', path })));
  const holders: HostAnswer<T>[] = [];
  let refusal: unknown;
  settled.forEach((result, index) => {
    if (result.status === 'fulfilled') holders.push({ host: hosts[index]!, value: result.value });
    else if (isKind(result.reason, 'InvalidArgument')) refusal ??= result.reason;
    else if (!isKind(result.reason, 'NotFound')) deps.logger.warn({ err: result.reason, host: hosts[index]!.name, path }, 'a host failed to answer an inspect');
  });
  if (holders.length === 0 && refusal !== undefined) throw refusal;
  return holders;
}

/** Up hosts, or Docker's 503 naming the reason (no other tenant's data is involved). */
export function upHosts(deps: Pick<FrontDeps, 'hosts'>): ClusterHost[] {
  const hosts = deps.hosts.up();
  if (hosts.length === 0) throw unavailable('no host of the cluster is up');
  return hosts;
}

/** The host a new image, volume or build goes to when none is better placed; see the terms above. */
export function leastLoaded(deps: Pick<FrontDeps, 'hosts' | 'scheduler'>, candidates: ClusterHost[] = upHosts(deps)): ClusterHost {
  const open = candidates.filter((host) => !host.cordoned);
  const pool = open.length > 0 ? open : candidates;
  if (pool.length === 0) throw unavailable('no host of the cluster is up');
  const load = (host: ClusterHost): number => deps.scheduler.cluster.host(host.id)?.containerCount ?? 0;
  return pool.reduce((best, host) => {
    const difference = load(host) - load(best);
    if (difference < 0) return host;
    if (difference === 0 && host.capacity.memoryBytes > best.capacity.memoryBytes) return host;
    return best;
  });
}

/** The path and query of a request as the front received it, without the API-version prefix. */
export function pathAndQuery(url: string): { path: string; query: string } {
  const mark = url.indexOf('?');
  return mark === -1 ? { path: url, query: '' } : { path: url.slice(0, mark), query: url.slice(mark) };
}
