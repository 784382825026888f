import type { Duplex, Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { invalidArgument, notImplemented } from '../../common/errors.js';
import type { Services } from '../services.js';
import { requestContext } from './containers.js';
import { hijackConnection, MULTIPLEXED_STREAM, RAW_STREAM } from './hijack.js';
import { queryBool, queryString } from './query.js';

type IdParams = { Params: { id: string } };

/**
 * Container I/O routes: attach, logs, resize, top, stats, archive (docker cp), export, changes.
 * Handlers parse, call ContainerIoService and format (moby operationIds in comments).
 */
export async function containerIoRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const io = opts.services.containerIo;

  // ContainerAttach: hijacked; raw stream for a TTY, multiplexed otherwise.
  app.post<IdParams>('/containers/:id/attach', async (request, reply) => {
    const q = request.query;
    const plan = await io.prepareAttach(requestContext(request), request.params.id, {
      stream: queryBool(q, 'stream'),
      logs: queryBool(q, 'logs'),
      stdin: queryBool(q, 'stdin'),
      stdout: queryBool(q, 'stdout'),
      stderr: queryBool(q, 'stderr'),
      detachKeys: queryString(q, 'detachKeys') ?? '',
    });
    let client;
    try {
      client = hijackHalfOpen(request, reply, plan.tty ? RAW_STREAM : MULTIPLEXED_STREAM);
    } catch (err) {
      plan.cancel();
      throw err;
    }
    // A session that fails must still free the client; it would otherwise wait forever.
    void plan.run(client).catch((err: unknown) => {
      request.log.error({ err }, 'stream session failed');
      client.destroy();
    });
  });

  // ContainerAttachWebsocket
  app.get('/containers/:id/attach/ws', async () => {
    throw notImplemented('attach over websocket is not supported by Berth; use POST /containers/{id}/attach');
  });

  // ContainerLogs
  app.get<IdParams>('/containers/:id/logs', async (request, reply) => {
    const q = request.query;
    const abort = abortOnClose(reply);
    const tail = queryString(q, 'tail');
    const { tty, stream } = await io.logs(requestContext(request), request.params.id, {
      follow: queryBool(q, 'follow'),
      stdout: queryBool(q, 'stdout'),
      stderr: queryBool(q, 'stderr'),
      timestamps: queryBool(q, 'timestamps'),
      ...optionalTime('since', queryString(q, 'since')),
      ...optionalTime('until', queryString(q, 'until')),
      tail: parseTail(tail),
      signal: abort,
    });
    reply.header('Content-Type', tty ? RAW_STREAM : MULTIPLEXED_STREAM);
    return reply.send(stream);
  });

  // ContainerResize
  app.post<IdParams>('/containers/:id/resize', async (request, reply) => {
    const size = terminalSize(request.query);
    await io.resize(requestContext(request), request.params.id, size);
    return reply.code(200).send();
  });

  // ContainerTop
  app.get<IdParams>('/containers/:id/top', async (request) =>
    io.top(requestContext(request), request.params.id, queryString(request.query, 'ps_args')),
  );

  // ContainerStats
  app.get<IdParams>('/containers/:id/stats', async (request, reply) => {
    const q = request.query;
    const ctx = requestContext(request);
    const stream = queryBool(q, 'stream', true);
    const oneShot = queryBool(q, 'one-shot');
    if (oneShot && stream) throw invalidArgument('cannot have stream=true and one-shot=true');
    const abort = abortOnClose(reply);
    if (!stream) return reply.type('application/json').send(await io.statsOnce(ctx, request.params.id, { oneShot, signal: abort }));
    const samples = await io.statsStream(ctx, request.params.id, abort);
    reply.type('application/json');
    return reply.send(jsonLines(samples));
  });

  // ContainerArchiveInfo
  app.head<IdParams>('/containers/:id/archive', async (request, reply) => {
    const stat = await io.statPath(requestContext(request), request.params.id, requiredPath(request.query));
    return reply.header('X-Docker-Container-Path-Stat', encodeStat(stat)).code(200).send();
  });

  // ContainerArchive
  app.get<IdParams>('/containers/:id/archive', { exposeHeadRoute: false }, async (request, reply) => {
    const { stat, tar } = await io.archivePath(requestContext(request), request.params.id, requiredPath(request.query));
    reply.header('X-Docker-Container-Path-Stat', encodeStat(stat));
    reply.type('application/x-tar');
    return reply.send(tar);
  });

  // PutContainerArchive
  app.put<IdParams>('/containers/:id/archive', async (request, reply) => {
    const body = request.body as Readable | undefined;
    if (!body || typeof (body as Readable).pipe !== 'function') throw invalidArgument('a tar archive is required as the request body');
    await io.extractToDir(requestContext(request), request.params.id, requiredPath(request.query), body, {
      noOverwriteDirNonDir: queryBool(request.query, 'noOverwriteDirNonDir'),
      copyUIDGID: queryBool(request.query, 'copyUIDGID'),
    });
    return reply.code(200).send();
  });

  // ContainerExport
  app.get<IdParams>('/containers/:id/export', async (request, reply) => {
    const tar = await io.export(requestContext(request), request.params.id);
    reply.type('application/x-tar');
    return reply.send(tar);
  });

  // ContainerChanges
  app.get<IdParams>('/containers/:id/changes', async (request) => io.changes(requestContext(request), request.params.id));
}

/**
 * hijackConnection, keeping the connection half-open: the docker CLI closes its write side as
 * soon as it has no more stdin (at once without -i) and still reads the output to the end. A
 * socket accepted without allowHalfOpen would end our side with it.
 */
export function hijackHalfOpen(request: FastifyRequest, reply: FastifyReply, contentType: string): Duplex {
  const client = hijackConnection(request, reply, contentType);
  (client as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true;
  return client;
}

/** An AbortSignal that fires when the client goes away (or the response finished). */
export function abortOnClose(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => controller.abort());
  return controller.signal;
}

/** h and w as Docker parses them (Go's strconv.Atoi); both are required. */
export function terminalSize(query: unknown): { height: number; width: number } {
  const parse = (key: string): number => {
    const value = queryString(query, key) ?? '';
    if (!/^[+-]?\d+$/.test(value)) throw invalidArgument(`strconv.Atoi: parsing "${value}": invalid syntax`);
    const n = Number(value);
    if (n < 0 || n > 65535) throw invalidArgument(`invalid terminal size ${key}=${value}`);
    return n;
  };
  return { height: parse('h'), width: parse('w') };
}

/** since/until: Unix seconds with an optional fraction, as the CLI sends them; 0 means unset. */
function optionalTime(key: 'since' | 'until', value: string | undefined): { since?: number; until?: number } {
  if (value === undefined || value === '') return {};
  if (!/^-?\d+(\.\d{1,9})?$/.test(value)) throw invalidArgument(`failed to parse value ${value} as a timestamp for ${key}`);
  const seconds = Number(value);
  return seconds === 0 ? {} : { [key]: seconds };
}

/** Docker reads any tail that is not a non-negative integer as "all". */
function parseTail(value: string | undefined): number | 'all' {
  if (value === undefined || !/^\d+$/.test(value)) return 'all';
  return Number(value);
}

function requiredPath(query: unknown): string {
  const path = queryString(query, 'path');
  if (path === undefined || path === '') throw invalidArgument('path is required');
  if (path.includes('\0')) throw invalidArgument('invalid path: it contains a NUL byte');
  return path;
}

function encodeStat(stat: object): string {
  return Buffer.from(JSON.stringify(stat)).toString('base64');
}

/** Object-mode values to newline-delimited JSON, as dockerd streams them. */
function jsonLines(source: Readable): Readable {
  const out = source.map((value: unknown) => `${JSON.stringify(value)}\n`);
  out.on('close', () => source.destroy());
  return out;
}
