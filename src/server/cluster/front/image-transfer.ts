import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../../../common/context.js';
import { internal, isKind, notFound } from '../../../common/errors.js';
import { SingleFlight } from '../../../common/single-flight.js';
import { repositoryOf, tagOf } from '../../images/reference.js';
import type { FrontDeps } from './deps.js';
import { holdersOf } from './fan-out.js';
import { engineError, readAll } from './proxy.js';

/**
 * Brings an image onto one host before a container is created there.
 *
 * Order of preference, cheapest and most faithful first:
 * 1. the host already holds the reference: nothing to do;
 * 2. a holder's RepoDigests name the image in a registry: the host pulls it by digest (the
 *    same bytes, so the same image id, checked) and tags it as the reference named it;
 * 3. otherwise (an image built, loaded or imported on Berth, or a registry the host cannot
 *    reach) the control plane relays `GET /images/get` of a holder into `POST /images/load`
 *    of the host, streaming: nothing is written to the control plane's disk.
 * No up host holds the reference: NotFound "No such image: <ref>" in Docker's words, which
 * makes `docker run` pull and try again.
 *
 * Concurrent creates needing the same image on the same host share one transfer.
 */
export type ImageTransferDeps = Pick<FrontDeps, 'hosts' | 'logger'>;

interface ImageInspect {
  Id: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
}

const transfers = new SingleFlight<void>();

export async function ensureImageOnHost(deps: ImageTransferDeps, ctx: RequestContext, hostId: string, imageRef: string): Promise<void> {
  const key = `${ctx.tenant}\u0000${hostId}\u0000${imageRef}`;
  return transfers.run(key, () => transfer(deps, ctx, hostId, imageRef)).promise;
}

async function transfer(deps: ImageTransferDeps, ctx: RequestContext, hostId: string, imageRef: string): Promise<void> {
  const inspectPath = `/images/${imageRef}/json`;
  try {
    await deps.hosts.json<ImageInspect>(ctx, hostId, { method: 'GET', path: inspectPath });
    return;
  } catch (err) {
    if (!isKind(err, 'NotFound')) throw err;
  }
  const others = deps.hosts.up().filter((host) => host.id !== hostId);
  const [holder] = await holdersOf<ImageInspect>(deps, ctx, inspectPath, others);
  if (holder === undefined) throw notFound(`No such image: ${imageRef}`);
  const log = deps.logger.child({ image: imageRef, from: holder.host.name, to: hostId });
  for (const digestRef of holder.value.RepoDigests ?? []) {
    try {
      await pullByDigest(deps, ctx, hostId, digestRef, holder.value.Id, imageRef);
      log.info({ digestRef }, 'image pulled by digest onto the host');
      return;
    } catch (err) {
      log.info({ err, digestRef }, 'pull by digest failed; trying the next source');
    }
  }
  await relay(deps, ctx, holder.host.id, hostId, imageRef);
  // The archive carries the image's tags; an id reference has none, and inspect proves the load.
  await deps.hosts.json<ImageInspect>(ctx, hostId, { method: 'GET', path: inspectPath });
  log.info('image relayed from a holder onto the host');
}

/**
 * The id (sha256:...) of the image the tenant's reference names on the first up host that
 * holds it, or undefined when none does. Agents report the ids they hold, not tenants'
 * names (names are private to a tenant), so placement turns a reference into an id to let
 * image locality prefer the hosts holding it.
 */
export async function imageIdOf(deps: ImageTransferDeps, ctx: RequestContext, imageRef: string): Promise<string | undefined> {
  const [holder] = await holdersOf<ImageInspect>(deps, ctx, `/images/${imageRef}/json`).catch(() => []);
  return holder?.value.Id;
}

async function pullByDigest(deps: ImageTransferDeps, ctx: RequestContext, hostId: string, digestRef: string, expectedId: string, imageRef: string): Promise<void> {
  const at = digestRef.lastIndexOf('@');
  const query = new URLSearchParams({ fromImage: digestRef.slice(0, at), tag: digestRef.slice(at + 1) });
  const answer = await deps.hosts.request(ctx, hostId, { method: 'POST', path: `/images/create?${query.toString()}` });
  await progressOutcome(answer, 'pull');
  const pulled = await deps.hosts.json<ImageInspect>(ctx, hostId, { method: 'GET', path: `/images/${digestRef}/json` });
  if (pulled.Id !== expectedId) throw internal(`the registry's ${digestRef} is ${pulled.Id}, not ${expectedId}`);
  const tag = tagTarget(imageRef);
  if (tag === undefined) return;
  const tagQuery = new URLSearchParams({ repo: tag.repo, tag: tag.tag });
  await deps.hosts.json(ctx, hostId, { method: 'POST', path: `/images/${expectedId}/tag?${tagQuery.toString()}` });
}

async function relay(deps: ImageTransferDeps, ctx: RequestContext, fromHostId: string, toHostId: string, imageRef: string): Promise<void> {
  const archive = await deps.hosts.request(ctx, fromHostId, { method: 'GET', path: `/images/get?${new URLSearchParams({ names: imageRef }).toString()}` });
  if ((archive.statusCode ?? 500) >= 400) throw engineError(archive.statusCode ?? 500, await readAll(archive));
  try {
    const loaded = await deps.hosts.request(ctx, toHostId, {
      method: 'POST',
      path: '/images/load?quiet=1',
      headers: { 'content-type': 'application/x-tar' },
      body: archive,
    });
    await progressOutcome(loaded, 'load');
  } finally {
    // A load refused half-way must not leave the holder's save running into the void.
    if (!archive.readableEnded) archive.destroy();
  }
}

/**
 * Reads a JSON-lines answer (pull progress, load output) to its end. Docker reports a failure
 * after the 200 inside the stream, as {"errorDetail": {...}, "error": "..."}.
 */
async function progressOutcome(answer: IncomingMessage, operation: string): Promise<void> {
  const status = answer.statusCode ?? 500;
  const body = await readAll(answer);
  if (status >= 400) throw engineError(status, body);
  for (const line of body.toString('utf8').split('\n')) {
    if (line.trim() === '') continue;
    let message: { error?: unknown } | undefined;
    try {
      message = JSON.parse(line) as { error?: unknown };
    } catch {
      continue;
    }
    if (typeof message.error === 'string') throw internal(`${operation} on the host failed: ${message.error}`);
  }
}

/** The repository and tag a name reference asks for; undefined for ids and digest references. */
export function tagTarget(imageRef: string): { repo: string; tag: string } | undefined {
  if (imageRef.includes('@') || /^(sha256:)?[0-9a-f]{12,64}$/.test(imageRef)) return undefined;
  return { repo: repositoryOf(imageRef), tag: tagOf(imageRef) };
}
