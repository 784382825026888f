import type { FastifyReply, FastifyRequest } from 'fastify';
import { BerthError } from '../../common/errors.js';
import type { ProgressMessage, ProgressSink } from '../registry/progress.js';
import './audit-hooks.js';

/**
 * Runs a long operation that reports Docker JSON progress (pull, push) and streams it as the
 * response. The response starts with the first message: an operation that fails before it
 * says anything answers with a plain HTTP error (status and {"message"}), as dockerd does;
 * one that fails later ends the stream with Docker's error message
 * ({"errorDetail":{"message"},"error"}), which the CLI prints and exits 1 on.
 */
export async function streamProgress(request: FastifyRequest, reply: FastifyReply, run: (sink: ProgressSink) => Promise<void>): Promise<void> {
  let started = false;
  const raw = reply.raw;
  const start = (): void => {
    started = true;
    void reply.hijack();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(reply.getHeaders())) if (typeof v === 'string' || typeof v === 'number') headers[k] = String(v);
    // Exactly "application/json": the CLI renders the stream as progress only then.
    raw.writeHead(200, { ...headers, 'content-type': 'application/json' });
  };
  const sink: ProgressSink = {
    write(message: ProgressMessage): void {
      if (!started) start();
      if (!raw.destroyed) raw.write(`${JSON.stringify(message)}\n`);
    },
  };
  try {
    await run(sink);
  } catch (err) {
    if (!started) throw err;
    const message = err instanceof BerthError ? err.message : `internal error (request ${request.id})`;
    if (!(err instanceof BerthError) || err.kind === 'Internal') request.log.error({ err }, 'streamed operation failed');
    request.streamError = message;
    if (!raw.destroyed) raw.end(`${JSON.stringify({ errorDetail: { message }, error: message })}\n`);
    return;
  }
  if (!started) start();
  raw.end();
}
