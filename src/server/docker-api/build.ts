import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BerthError, invalidArgument, notImplemented } from '../../common/errors.js';
import type { BuildService } from '../build/build-service.js';
import { StepFailed, type BuildOptions } from '../build/types.js';
import { parseFilterJson } from '../events/filters.js';
import { queryBool, queryList, queryString } from './query.js';
import { requestContext } from './request-context.js';
import type { QuotaService } from '../tenancy/quota-service.js';
import './audit-hooks.js';

/** The services build routes call (a subset of Services). */
export interface BuildRouteServices {
  builds: BuildService;
  /** Tenant quotas on images and disk (absent in tests of the build routes alone). */
  quotas?: Pick<QuotaService, 'guardImageAdd'>;
}

const contextOf = requestContext;

/** A JSON object query parameter (buildargs, labels); `{}` when absent. */
function queryJsonMap(query: unknown, key: string): Record<string, string | null> {
  const text = queryString(query, key);
  if (text === undefined || text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`invalid ${key}: ${text}`, err);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalidArgument(`invalid ${key}: must be a JSON object`);
  for (const [name, value] of Object.entries(parsed)) {
    if (value !== null && typeof value !== 'string') throw invalidArgument(`invalid ${key}: value of ${name} must be a string`);
  }
  return parsed as Record<string, string | null>;
}

export function parseBuildQuery(query: unknown): BuildOptions {
  if (queryString(query, 'version') === '2') {
    throw notImplemented('BuildKit builds are not supported by Berth; the docker CLI uses the classic builder when buildx is absent or DOCKER_BUILDKIT=0');
  }
  if (queryString(query, 'remote')) throw notImplemented('remote build contexts (Git or URL) are not supported; send the context as a tar');
  if (queryBool(query, 'squash')) throw notImplemented('--squash is not supported');
  const labels = queryJsonMap(query, 'labels');
  const target = queryString(query, 'target');
  const platform = queryString(query, 'platform');
  return {
    dockerfile: queryString(query, 'dockerfile') ?? 'Dockerfile',
    tags: queryList(query, 't').filter((t) => t !== ''),
    noCache: queryBool(query, 'nocache'),
    pull: queryBool(query, 'pull'),
    quiet: queryBool(query, 'q'),
    buildArgs: queryJsonMap(query, 'buildargs'),
    labels: Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, v ?? ''])),
    ...(target ? { target } : {}),
    ...(platform ? { platform } : {}),
  };
}

/**
 * Docker's build operations: ImageBuild (the classic builder's JSON message stream),
 * BuildPrune and ImageCommit.
 */
export async function buildRoutes(app: FastifyInstance, opts: { services: BuildRouteServices }): Promise<void> {
  const { builds, quotas } = opts.services;
  const guardImageAdd = <T>(request: FastifyRequest, operation: string, add: () => Promise<T>): Promise<T> =>
    quotas ? quotas.guardImageAdd(contextOf(request), operation, undefined, add) : add();

  // ImageBuild: the body is the context tar. Errors before the first message are ordinary
  // error responses; later ones end the stream as Docker's {"errorDetail", "error"} message.
  app.post('/build', async (request, reply) => {
    const options = parseBuildQuery(request.query);
    const abort = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) abort.abort(new Error('the client went away'));
    };
    reply.raw.on('close', onClose);
    const stream = new MessageStream(reply);
    try {
      await guardImageAdd(request, 'build', () =>
        builds.build(contextOf(request), request.raw, options, { stream: (text) => stream.write({ stream: text }), aux: (id) => stream.write({ aux: { ID: id } }) }, abort.signal),
      );
      stream.end();
    } catch (err) {
      if (!stream.started) throw err;
      const message = err instanceof BerthError && err.kind !== 'Internal' ? err.message : `internal error (request ${request.id})`;
      if (!(err instanceof BerthError) || err.kind === 'Internal') request.log.error({ err }, 'build failed');
      const code = err instanceof StepFailed ? err.code : undefined;
      request.streamError = message;
      stream.write({ errorDetail: { ...(code !== undefined ? { code } : {}), message }, error: message });
      stream.end();
    } finally {
      reply.raw.off('close', onClose);
    }
    return reply;
  });

  // BuildPrune
  app.post('/build/prune', async (request) => {
    const filters = parseFilterJson(queryString(request.query, 'filters'));
    const result = await builds.prune(contextOf(request), filters);
    return { CachesDeleted: result.CachesDeleted.length > 0 ? result.CachesDeleted : null, SpaceReclaimed: result.SpaceReclaimed };
  });

  // ImageCommit
  app.post('/commit', async (request, reply) => {
    const container = queryString(request.query, 'container');
    if (!container) throw invalidArgument('a container is required (container=<id or name>)');
    const repo = queryString(request.query, 'repo');
    const tag = queryString(request.query, 'tag');
    const comment = queryString(request.query, 'comment');
    const author = queryString(request.query, 'author');
    const id = await guardImageAdd(request, 'commit', () => builds.commit(contextOf(request), {
      container,
      ...(repo ? { repo } : {}),
      ...(tag ? { tag } : {}),
      ...(comment ? { comment } : {}),
      ...(author ? { author } : {}),
      pause: queryBool(request.query, 'pause', true),
      changes: queryList(request.query, 'changes'),
    }));
    return reply.code(201).type('application/json').send(Buffer.from(`${JSON.stringify({ Id: id })}\n`));
  });
}

/** Newline-delimited JSON messages; the response starts with the first one. */
class MessageStream {
  started = false;

  constructor(private readonly reply: FastifyReply) {}

  write(message: unknown): void {
    const res = this.reply.raw;
    if (!this.started) {
      this.started = true;
      this.reply.hijack();
      for (const [name, value] of Object.entries(this.reply.getHeaders())) {
        if (value !== undefined) res.setHeader(name, typeof value === 'number' ? String(value) : value);
      }
      // Exactly "application/json": the CLI reads a JSON message stream only then.
      res.setHeader('Content-Type', 'application/json');
      res.writeHead(200);
    }
    if (!res.destroyed) res.write(`${JSON.stringify(message)}\n`);
  }

  end(): void {
    if (this.started && !this.reply.raw.destroyed) this.reply.raw.end();
  }
}
