import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../../common/context.js';
import { invalidArgument, isKind, notFound, notImplemented } from '../../../common/errors.js';
import { requestContext } from '../../docker-api/request-context.js';
import { repositoryOf as repositoryOfTagged } from '../../images/reference.js';
import { queryList, queryString } from '../../docker-api/query.js';
import type { ClusterHost } from '../agent-hub.js';
import type { FrontDeps } from './deps.js';
import { fanOut, holdersOf, leastLoaded, pathAndQuery, upHosts, type HostAnswer } from './fan-out.js';
import { ensureImageOnHost } from './image-transfer.js';
import { peekBuildContext } from './images-build.js';

/**
 * Docker's image operations across the cluster. An image lives on the hosts that pulled,
 * loaded, built or received it; the front never stores images itself.
 *
 * - list: every up host's list, merged by image id (tags and digests unioned);
 * - inspect, history, save, push: answered by one holder (the first up host holding it);
 * - tag, rmi: on every holder; a holder that refuses (an image in use) answers for all;
 * - pull, load, import: on one host: for a pull, a host already holding the repository
 *   (its layers are likely there), else the least loaded up host;
 * - build: on the host holding most of the Dockerfile's base images, which first gets the
 *   ones it lacks (images-build.ts).
 * Images reach other hosts when a container is placed there (image-transfer.ts).
 */
export async function registerImageRoutes(app: FastifyInstance, deps: FrontDeps): Promise<void> {
  // ImageList
  app.get('/images/json', async (request) => {
    const ctx = requestContext(request);
    const answers = await fanOut<ImageSummary[]>(deps, ctx, { method: 'GET', path: request.url });
    return mergeImageLists(answers.map((answer) => answer.value));
  });

  // ImageGetAll: one holder must hold every name (an archive is written by one engine).
  app.get('/images/get', async (request, reply) => {
    const ctx = requestContext(request);
    const names = queryList(request.query, 'names');
    if (names.length === 0) throw invalidArgument('no image names given');
    let candidates = upHosts(deps);
    for (const name of names) {
      const holders = await holdersOf(deps, ctx, imagePath(name, 'json'), candidates);
      if (holders.length === 0) {
        if ((await holdersOf(deps, ctx, imagePath(name, 'json'))).length === 0) throw notFound(`No such image: ${name}`);
        throw notImplemented('these images are held by different hosts of the cluster; save them one at a time');
      }
      candidates = holders.map((holder) => holder.host);
    }
    return deps.forward(request, reply, candidates[0]!.id);
  });

  // ImageInspect, ImageHistory, ImageGet: answered by the first holder.
  app.get('/images/*', async (request, reply) => {
    const { name, op } = splitOperation(request);
    if (name === '' || !['json', 'history', 'get'].includes(op)) return reply.code(404).send({ message: 'page not found' });
    const holder = await firstHolder(deps, requestContext(request), name);
    return deps.forward(request, reply, holder.host.id);
  });

  // ImageLoad
  app.post('/images/load', async (request, reply) => imageQuota(deps, request, 'load', undefined, () => deps.forward(request, reply, leastLoaded(deps).id)));

  // ImageCreate: pull (fromImage) or import (fromSrc=-).
  app.post('/images/create', async (request, reply) => {
    const fromImage = queryString(request.query, 'fromImage');
    if (queryString(request.query, 'fromSrc') !== undefined || fromImage === undefined || fromImage === '') {
      return imageQuota(deps, request, 'import', undefined, () => deps.forward(request, reply, leastLoaded(deps).id));
    }
    const tag = queryString(request.query, 'tag');
    return imageQuota(deps, request, 'pull', tag ? `${fromImage}:${tag}` : fromImage, async () => {
      const host = await pullTarget(deps, requestContext(request), fromImage);
      return deps.forward(request, reply, host.id);
    });
  });

  // ImagePrune: every host prunes its own; the answers add up.
  app.post('/images/prune', async (request) => {
    const answers = await fanOut<PruneAnswer>(deps, requestContext(request), { method: 'POST', path: request.url });
    const deleted = answers.flatMap((answer) => answer.value.ImagesDeleted ?? []);
    return {
      ImagesDeleted: deleted.length > 0 ? deleted : null,
      SpaceReclaimed: answers.reduce((sum, answer) => sum + (answer.value.SpaceReclaimed ?? 0), 0),
    };
  });

  // ImageTag (every holder), ImagePush (one holder; X-Registry-Auth travels with the request).
  app.post('/images/*', async (request, reply) => {
    const { name, op } = splitOperation(request);
    const ctx = requestContext(request);
    if (name !== '' && op === 'tag') {
      const holders = await holdersOf(deps, ctx, imagePath(name, 'json'));
      if (holders.length === 0) throw notFound(`No such image: ${name}`);
      const { query } = pathAndQuery(request.url);
      for (const holder of holders) await deps.hosts.json(ctx, holder.host.id, { method: 'POST', path: `${imagePath(name, 'tag')}${query}` });
      return reply.code(201).send();
    }
    if (name !== '' && op === 'push') {
      // Without a tag the CLI pushes every tag of the repository: any holder of one will do.
      const tag = queryString(request.query, 'tag');
      const holder = tag ? (await firstHolder(deps, ctx, `${name}:${tag}`)).host : await repositoryHolder(deps, ctx, name);
      return deps.forward(request, reply, holder.id);
    }
    return reply.code(404).send({ message: 'page not found' });
  });

  // ImageDelete: on every holder, those running containers of the image first, so a refusal
  // (409, image in use) comes before any other holder has removed its copy.
  app.delete('/images/*', async (request) => {
    const name = (request.params as { '*': string })['*'];
    const ctx = requestContext(request);
    const holders = await holdersOf(deps, ctx, imagePath(name, 'json'));
    if (holders.length === 0) throw notFound(`No such image: ${name}`);
    const { query } = pathAndQuery(request.url);
    const ordered = await usersFirst(deps, ctx, name, holders);
    const removed: Record<string, string>[] = [];
    for (const holder of ordered) {
      const answer = await deps.hosts.json<Record<string, string>[]>(ctx, holder.host.id, { method: 'DELETE', path: `${imagePath(name, '')}${query}` });
      for (const entry of answer ?? []) {
        if (!removed.some((seen) => sameEntry(seen, entry))) removed.push(entry);
      }
    }
    return removed;
  });

  // ImageBuild: the context streams to one host, its progress streams back. The host is one
  // holding the Dockerfile's base images, and gets those it lacks from their holders first.
  app.post('/build', async (request, reply) => imageQuota(deps, request, 'build', undefined, async () => {
    const ctx = requestContext(request);
    if (!(request.body instanceof Readable)) return deps.forward(request, reply, (await buildTarget(deps, ctx, [], queryString(request.query, 't'))).id);
    const peeked = await peekBuildContext(request.body, queryString(request.query, 'dockerfile') ?? '');
    const host = await buildTarget(deps, ctx, peeked.baseImages, queryString(request.query, 't'));
    for (const image of peeked.baseImages) {
      await ensureImageOnHost(deps, ctx, host.id, image).catch((err: unknown) => {
        // Held nowhere (the builder pulls it) or not transferable: the build says what fails.
        if (!isKind(err, 'NotFound')) deps.logger.warn({ err, image, host: host.name }, 'could not bring a base image to the build host');
      });
    }
    return deps.forward(request, reply, host.id, { body: peeked.body });
  }));

  // BuildPrune: every host's build cache.
  app.post('/build/prune', async (request) => {
    const answers = await fanOut<{ CachesDeleted?: string[] | null; SpaceReclaimed?: number }>(deps, requestContext(request), { method: 'POST', path: request.url });
    const deleted = answers.flatMap((answer) => answer.value.CachesDeleted ?? []);
    return { CachesDeleted: deleted.length > 0 ? deleted : null, SpaceReclaimed: answers.reduce((sum, answer) => sum + (answer.value.SpaceReclaimed ?? 0), 0) };
  });
}

/** Runs an operation that may add images under the tenant's images and disk quotas (front/quotas.ts). */
function imageQuota<T>(deps: FrontDeps, request: FastifyRequest, operation: string, pullRef: string | undefined, work: () => Promise<T>): Promise<T> {
  return deps.quotas ? deps.quotas.guardImageAdd(requestContext(request), operation, pullRef, work) : work();
}

export interface ImageSummary {
  Id: string;
  Created: number;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Containers?: number;
  [key: string]: unknown;
}

interface PruneAnswer {
  ImagesDeleted?: Record<string, string>[] | null;
  SpaceReclaimed?: number;
}

/**
 * One list from every host's: an image (same id) held by several hosts appears once, with
 * the union of the tags and digests the hosts give it and the containers using it added up.
 * Newest first, as dockerd sorts.
 */
export function mergeImageLists(lists: ImageSummary[][]): ImageSummary[] {
  const byId = new Map<string, ImageSummary>();
  for (const list of lists) {
    for (const image of list) {
      const seen = byId.get(image.Id);
      if (seen === undefined) {
        byId.set(image.Id, { ...image, RepoTags: image.RepoTags ?? [], RepoDigests: image.RepoDigests ?? [] });
        continue;
      }
      seen.RepoTags = union(seen.RepoTags ?? [], image.RepoTags ?? []);
      seen.RepoDigests = union(seen.RepoDigests ?? [], image.RepoDigests ?? []);
      if (typeof seen.Containers === 'number' && typeof image.Containers === 'number') {
        seen.Containers = seen.Containers < 0 || image.Containers < 0 ? -1 : seen.Containers + image.Containers;
      }
    }
  }
  return [...byId.values()].sort((a, b) => b.Created - a.Created || a.Id.localeCompare(b.Id));
}

const union = (a: string[], b: string[]): string[] => [...new Set([...a, ...b])];

const sameEntry = (a: Record<string, string>, b: Record<string, string>): boolean =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([key, value]) => b[key] === value);

/** The path of an image operation on an engine; names keep their slashes (`localhost:5000/app`). */
function imagePath(name: string, op: string): string {
  return op === '' ? `/images/${name}` : `/images/${name}/${op}`;
}

/** Image names contain slashes, so the routes are wildcards: the operation is the last segment. */
function splitOperation(request: FastifyRequest): { name: string; op: string } {
  const path = (request.params as { '*': string })['*'];
  const slash = path.lastIndexOf('/');
  if (slash <= 0) return { name: '', op: '' };
  return { name: path.slice(0, slash), op: path.slice(slash + 1) };
}

async function firstHolder(deps: FrontDeps, ctx: RequestContext, name: string): Promise<HostAnswer<unknown>> {
  const [holder] = await holdersOf(deps, ctx, imagePath(name, 'json'));
  if (holder === undefined) throw notFound(`No such image: ${name}`);
  return holder;
}

async function repositoryHolder(deps: FrontDeps, ctx: RequestContext, repository: string): Promise<ClusterHost> {
  const filters = encodeURIComponent(JSON.stringify({ reference: [repository] }));
  const answers = await fanOut<ImageSummary[]>(deps, ctx, { method: 'GET', path: `/images/json?filters=${filters}` });
  const holder = answers.find((answer) => answer.value.length > 0);
  if (holder === undefined) throw notFound(`No such image: ${repository}`);
  return holder.host;
}

/**
 * Where a pull (or a build tagged `repo:tag`) goes: a host already holding an image of the
 * repository, which likely has most of the layers, else the least loaded host.
 */
async function pullTarget(deps: FrontDeps, ctx: RequestContext, reference: string): Promise<ClusterHost> {
  const repository = repositoryOf(reference);
  const filters = encodeURIComponent(JSON.stringify({ reference: [repository] }));
  const answers = await fanOut<ImageSummary[]>(deps, ctx, { method: 'GET', path: `/images/json?filters=${filters}` });
  const holders = answers.filter((answer) => answer.value.length > 0 && !answer.host.cordoned).map((answer) => answer.host);
  return holders.length > 0 ? leastLoaded(deps, holders) : leastLoaded(deps);
}

/**
 * Where a build goes: the host holding the most of its base images (so the fewest move),
 * else where its tag's repository is, else the least loaded host.
 */
async function buildTarget(deps: FrontDeps, ctx: RequestContext, baseImages: string[], tag: string | undefined): Promise<ClusterHost> {
  const held = new Map<string, number>();
  for (const image of baseImages) {
    for (const holder of await holdersOf(deps, ctx, imagePath(image, 'json')).catch(() => [])) {
      if (!holder.host.cordoned) held.set(holder.host.id, (held.get(holder.host.id) ?? 0) + 1);
    }
  }
  const most = Math.max(0, ...held.values());
  if (most > 0) return leastLoaded(deps, upHosts(deps).filter((host) => held.get(host.id) === most));
  return tag ? pullTarget(deps, ctx, tag) : leastLoaded(deps);
}

/** `repo` of `repo:tag` or `repo@sha256:...` (a port in the registry's address is kept). */
export function repositoryOf(reference: string): string {
  const at = reference.indexOf('@');
  return repositoryOfTagged(at === -1 ? reference : reference.slice(0, at));
}

async function usersFirst<T>(deps: FrontDeps, ctx: RequestContext, name: string, holders: HostAnswer<T>[]): Promise<HostAnswer<T>[]> {
  const filters = encodeURIComponent(JSON.stringify({ ancestor: [name] }));
  const inUse = new Set<string>();
  await Promise.all(
    holders.map(async (holder) => {
      const containers = await deps.hosts
        .json<unknown[]>(ctx, holder.host.id, { method: 'GET', path: `/containers/json?all=1&filters=${filters}` })
        .catch(() => []);
      if (containers.length > 0) inUse.add(holder.host.id);
    }),
  );
  return [...holders].sort((a, b) => Number(inUse.has(b.host.id)) - Number(inUse.has(a.host.id)));
}

