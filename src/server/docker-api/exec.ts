import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalidArgument } from '../../common/errors.js';
import type { ExecCreateBody, ExecStartBody } from '../containers/exec-service.js';
import type { Services } from '../services.js';
import { hijackHalfOpen, terminalSize } from './container-io.js';
import { requestContext } from './containers.js';
import { admitExec } from './admission.js';
import { MULTIPLEXED_STREAM, RAW_STREAM } from './hijack.js';

type IdParams = { Params: { id: string } };

/** Exec routes (moby operationIds in comments). Handlers translate only. */
export async function execRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const exec = opts.services.exec;

  // ContainerExec
  app.post<IdParams>('/containers/:id/exec', async (request, reply) => {
    const body = request.body ?? {};
    if (typeof body !== 'object' || Array.isArray(body)) throw invalidArgument('invalid request body: a JSON object is required');
    admitExec(opts.services, request, body);
    const created = await exec.create(requestContext(request), request.params.id, body as ExecCreateBody);
    return reply.code(201).send(created);
  });

  // ExecStart: hijacked unless detached.
  app.post<IdParams>('/exec/:id/start', async (request, reply) => {
    const body = (await startBody(request)) as ExecStartBody;
    const plan = await exec.prepareStart(requestContext(request), request.params.id, body);
    if (plan.detach) {
      await plan.runDetached();
      return reply.code(200).send();
    }
    const client = hijackHalfOpen(request, reply, plan.tty ? RAW_STREAM : MULTIPLEXED_STREAM);
    // A session that fails must still free the client; it would otherwise wait forever.
    void plan.run(client).catch((err: unknown) => {
      request.log.error({ err }, 'stream session failed');
      client.destroy();
    });
    return reply;
  });

  // ExecResize
  app.post<IdParams>('/exec/:id/resize', async (request, reply) => {
    await exec.resize(requestContext(request), request.params.id, terminalSize(request.query));
    return reply.code(200).send();
  });

  // ExecInspect
  app.get<IdParams>('/exec/:id/json', async (request) => exec.inspect(requestContext(request), request.params.id));
}

/**
 * The JSON body of ExecStart. On a plain request fastify has parsed it. On an upgrade request
 * Node hands the socket over right after the headers, so the body is still on the socket: read
 * exactly Content-Length bytes from it and leave the rest (the client's stdin) in place.
 */
async function startBody(request: FastifyRequest): Promise<unknown> {
  if (request.body !== undefined) return request.body;
  const length = Number(request.headers['content-length'] ?? 0);
  if (!(request.raw as { upgrade?: boolean }).upgrade || !Number.isSafeInteger(length) || length <= 0) return {};
  if (length > 1024 * 1024) throw invalidArgument('exec start body too large');
  const bytes = await readExactly(request.raw.socket, length);
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    throw invalidArgument('invalid JSON in exec start body');
  }
}

function readExactly(socket: Duplex, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let have = 0;
    const onData = (chunk: Buffer): void => {
      parts.push(chunk);
      have += chunk.length;
      if (have < length) return;
      cleanup();
      socket.pause();
      const all = Buffer.concat(parts);
      if (all.length > length) socket.unshift(all.subarray(length));
      resolve(all.subarray(0, length));
    };
    const onEnd = (): void => {
      cleanup();
      reject(invalidArgument('connection closed before the exec start body arrived'));
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.resume();
  });
}
