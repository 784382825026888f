import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '../../common/logging.js';
import type { LevelWithSilent } from 'pino';
import { dockerErrorHandler } from './errors.js';
import { API_VERSION_MAX, API_VERSION_MIN, compareApiVersions, splitVersionPrefix } from './version.js';
import type { Services } from '../services.js';
import { systemRoutes } from './system.js';
import { containerRoutes } from './containers.js';
import { imageRoutes } from './images.js';
import { execRoutes } from './exec.js';
import { containerIoRoutes } from './container-io.js';
import { buildRoutes } from './build.js';
import { volumeRoutes } from './volumes.js';
import { networkRoutes } from './networks.js';
import { installAuthentication } from './auth.js';
import { tenantAdminRoutes } from '../admin-api/tenants.js';
import { imageAdminRoutes } from '../admin-api/images.js';
import { registryLoginRoutes } from './registry-login.js';
import { advisorRoutes } from '../admin-api/advisor.js';
import { installAudit } from './audit-hooks.js';
import { quotaAdminRoutes } from '../admin-api/quotas.js';
import { auditAdminRoutes } from '../admin-api/audit.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The API version the client asked for in its path, or the maximum when it named none. */
    apiVersion: string;
  }
}

/** Request lines ("incoming request") are info; failures are logged by the error handler at error. */
export const ROUTE_LOG_LEVEL = (process.env.BERTH_REQUEST_LOG_LEVEL ?? 'warn') as LevelWithSilent;

const UPGRADE_BODY = Symbol('berth.upgradeBody');
type UpgradeRequest = IncomingMessage & { [UPGRADE_BODY]?: unknown };
const MAX_UPGRADE_BODY = 1024 * 1024;

/**
 * Node stops parsing HTTP once a request asks to upgrade, so the request's own body (the
 * JSON options of exec start and attach) is left on the socket: read exactly Content-Length
 * bytes, keep what follows (the client's stdin) on the socket, and let fastify see a
 * bodyless request whose parsed body the preValidation hook puts back.
 */
async function readUpgradeBody(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const length = Number(req.headers['content-length'] ?? 0);
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_UPGRADE_BODY) throw new Error('bad content length');
  let buffered = head;
  while (buffered.length < length) {
    const chunk = await new Promise<Buffer>((resolve, reject) => {
      const onData = (data: Buffer): void => {
        cleanup();
        socket.pause();
        resolve(data);
      };
      const onEnd = (): void => {
        cleanup();
        reject(new Error('connection closed before the request body'));
      };
      const cleanup = (): void => {
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('error', onEnd);
      };
      socket.on('data', onData);
      socket.once('end', onEnd);
      socket.once('error', onEnd);
      socket.resume();
    });
    buffered = Buffer.concat([buffered, chunk]);
  }
  const rest = buffered.subarray(length);
  if (rest.length > 0) socket.unshift(rest);
  if (length > 0) {
    const text = buffered.subarray(0, length).toString('utf8');
    try {
      (req as UpgradeRequest)[UPGRADE_BODY] = text.trim() === '' ? undefined : (JSON.parse(text) as unknown);
    } catch {
      (req as UpgradeRequest)[UPGRADE_BODY] = undefined;
    }
  }
  req.headers['content-length'] = '0';
  delete req.headers['transfer-encoding'];
}

/**
 * Builds the Docker Engine API as a fastify app. Each Docker resource is one plugin module;
 * handlers translate and call services, nothing else.
 */
export async function buildDockerApi(services: Services, logger: Logger): Promise<FastifyInstance> {
  const app = createDockerApp(logger);
  // First of the per-request hooks after the version check: nothing runs for an unknown client.
  installAuthentication(app, services.tenants);
  installAudit(app, services.audit);
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ message: `page not found` });
    request.log.debug({ url: request.url }, 'no route');
  });

  await app.register(systemRoutes, { services, logLevel: ROUTE_LOG_LEVEL });
  await app.register(containerRoutes, { services, logLevel: ROUTE_LOG_LEVEL });
  await app.register(containerIoRoutes, { services, logLevel: ROUTE_LOG_LEVEL });
  await app.register(execRoutes, { services, logLevel: ROUTE_LOG_LEVEL });
  await app.register(imageRoutes, { services, logLevel: ROUTE_LOG_LEVEL });
  await app.register(buildRoutes, { services, logLevel: ROUTE_LOG_LEVEL });
  await app.register(volumeRoutes, { services, logLevel: ROUTE_LOG_LEVEL });
  await app.register(networkRoutes, { services, logLevel: ROUTE_LOG_LEVEL });
  await app.register(tenantAdminRoutes, { tenants: services.tenants, endpoints: services.tenantEndpoints, logLevel: ROUTE_LOG_LEVEL });
  await app.register(imageAdminRoutes, { images: services.images, logLevel: ROUTE_LOG_LEVEL });
  await app.register(registryLoginRoutes, { services, logLevel: ROUTE_LOG_LEVEL });
  if (services.advisor) await app.register(advisorRoutes, { advisor: services.advisor, tenants: services.tenants, logLevel: ROUTE_LOG_LEVEL });
  await app.register(quotaAdminRoutes, { tenants: services.tenants, quotas: services.quotas, logLevel: ROUTE_LOG_LEVEL });
  await app.register(auditAdminRoutes, { audit: services.audit, logLevel: ROUTE_LOG_LEVEL });
  return app;
}

/**
 * The Docker API's fastify app without routes or authentication: API-version prefixes,
 * upgrades (attach, exec) routed like other requests, Docker's JSON body and error rules.
 * Shared by `berth up`'s engine and the cluster's front.
 */
export function createDockerApp(logger: Logger): FastifyInstance {
  let httpServer: Server | undefined;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    genReqId: () => randomUUID(),
    bodyLimit: 64 * 1024 * 1024,
    // The docker CLI sends ids and names that may contain characters fastify would reject.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
    rewriteUrl: (req) => splitVersionPrefix(req.url ?? '/').path,
    serverFactory: (handler) => {
      httpServer = createServer(handler);
      // Attach and exec ask to upgrade the connection to a raw TCP stream. Node sends such
      // requests to 'upgrade' instead of 'request'; hand them to fastify like any other so
      // routing, validation and error handling stay in one place.
      httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        readUpgradeBody(req, socket, head)
          .then(() => {
            const res = new ServerResponse(req);
            res.assignSocket(socket as never);
            handler(req, res);
          })
          .catch(() => socket.destroy());
      });
      return httpServer;
    },
  });

  app.decorateRequest('apiVersion', API_VERSION_MAX);
  app.addHook('preValidation', async (request) => {
    const body = (request.raw as UpgradeRequest)[UPGRADE_BODY];
    if (body !== undefined) request.body = body;
  });
  app.addHook('onRequest', async (request, reply) => {
    const { version } = splitVersionPrefix(request.originalUrl);
    reply.header('Api-Version', API_VERSION_MAX);
    reply.header('Docker-Experimental', 'false');
    reply.header('Ostype', 'linux');
    reply.header('Server', 'Berth');
    if (version === undefined) return;
    if (compareApiVersions(version, API_VERSION_MAX) > 0) {
      reply.code(400).send({
        message: `client version ${version} is too new. Maximum supported API version is ${API_VERSION_MAX}`,
      });
      return reply;
    }
    if (compareApiVersions(version, API_VERSION_MIN) < 0) {
      reply.code(400).send({
        message: `client version ${version} is too old. Minimum supported API version is ${API_VERSION_MIN}, please upgrade your client to a newer version`,
      });
      return reply;
    }
    request.apiVersion = version;
  });

  // The docker CLI posts empty bodies with a JSON content type (start, stop, ...): treat an
  // empty body as absent rather than as malformed JSON.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      const err = new Error(`invalid JSON: ${text.length > 80 ? `${text.slice(0, 80)}…` : text}`) as Error & {
        statusCode: number;
      };
      err.statusCode = 400;
      done(err, undefined);
    }
  });
  // Tar archives (load, import, build contexts, cp) are streamed to the handler untouched.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.setErrorHandler(dockerErrorHandler);
  return app;
}
