import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requestContext } from './request-context.js';
import { notImplemented } from '../../common/errors.js';
import { parseFilterJson } from '../events/filters.js';
import type { ImageRecord } from '../images/image-record.js';
import type { ImageService } from '../images/image-service.js';
import type { RegistryService } from '../registry/registry-service.js';
import { streamProgress } from './progress-stream.js';
import { admitRegistry } from './admission.js';
import type { Services } from '../services.js';
import { compareApiVersions } from './version.js';
import { queryBool, queryList, queryString } from './query.js';

/** The services image routes call (a subset of Services, so tests can pass just this). */
export interface ImageRouteServices {
  images: ImageService;
  /** Absent in tests of the image routes alone: pull and push then answer 501. */
  registry?: RegistryService;
  /** Tenant policies for registry admission (absent in tests of the image routes alone). */
  tenants?: Pick<Services['tenants'], 'policyOf'>;
  /** Tenant quotas on images and disk (absent in tests of the image routes alone). */
  quotas?: Pick<Services['quotas'], 'guardImageAdd'>;
}

const registryAuthOf = (request: FastifyRequest): string | undefined => {
  const value = request.headers['x-registry-auth'];
  return Array.isArray(value) ? value[0] : value;
};

const contextOf = requestContext;

/** VirtualSize left the API in 1.44; older clients still read it. */
const wantsVirtualSize = (request: FastifyRequest): boolean => compareApiVersions(request.apiVersion, '1.44') < 0;

function summary(request: FastifyRequest, image: ImageRecord & { size: number }): Record<string, unknown> {
  const labels = image.config.config?.Labels;
  return {
    Containers: -1,
    Created: Math.floor(Date.parse(image.created) / 1000),
    Id: image.id,
    Labels: labels && Object.keys(labels).length > 0 ? labels : null,
    ParentId: '',
    RepoDigests: image.repoDigests,
    RepoTags: image.repoTags,
    SharedSize: -1,
    Size: image.size,
    ...(wantsVirtualSize(request) ? { VirtualSize: image.size } : {}),
  };
}

/** The container config as dockerd shows it in an image: every field, defaults filled in. */
function fullConfig(config: Record<string, unknown> | null | undefined): Record<string, unknown> | null {
  if (config === null || config === undefined) return null;
  return {
    Hostname: '',
    Domainname: '',
    User: '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: null,
    Cmd: null,
    Image: '',
    Volumes: null,
    WorkingDir: '',
    Entrypoint: null,
    OnBuild: null,
    Labels: null,
    ...config,
  };
}

/**
 * Docker's image operations. Names may contain slashes (`berth-test/busybox`), so the routes
 * that take a name are wildcards and the operation is read from the path's last segment.
 */
export async function imageRoutes(app: FastifyInstance, opts: { services: ImageRouteServices }): Promise<void> {
  const { images, registry, tenants, quotas } = opts.services;
  const guardImageAdd = <T>(request: FastifyRequest, operation: string, pullRef: string | undefined, add: () => Promise<T>): Promise<T> =>
    quotas ? quotas.guardImageAdd(contextOf(request), operation, pullRef, add) : add();

  const list = async (request: FastifyRequest): Promise<unknown> => {
    const filters: Record<string, readonly string[]> = { ...parseFilterJson(queryString(request.query, 'filters')) };
    const legacyFilter = queryString(request.query, 'filter');
    if (legacyFilter) filters.reference = [...(filters.reference ?? []), legacyFilter];
    return (await images.list(contextOf(request), filters, { withPublished: true })).map((image) => summary(request, image));
  };

  const inspect = async (request: FastifyRequest, name: string): Promise<unknown> => {
    const image = await images.inspect(contextOf(request), name);
    const config = image.config;
    return {
      Id: image.id,
      RepoTags: image.repoTags,
      RepoDigests: image.repoDigests,
      Parent: '',
      Comment: config.comment ?? '',
      Created: image.created,
      ...(config.container !== undefined ? { Container: config.container } : {}),
      ...(config.container_config !== undefined ? { ContainerConfig: fullConfig(config.container_config as Record<string, unknown> | null) } : {}),
      DockerVersion: config.docker_version ?? '',
      Author: config.author ?? '',
      Config: fullConfig(config.config as Record<string, unknown> | null | undefined),
      Architecture: config.architecture ?? 'amd64',
      ...(config.variant ? { Variant: config.variant } : {}),
      Os: config.os ?? 'linux',
      Size: image.size,
      ...(wantsVirtualSize(request) ? { VirtualSize: image.size } : {}),
      GraphDriver: {
        Name: 'overlayfs',
        Data:
          image.lowerDirs.length === 0
            ? null
            : {
                UpperDir: image.lowerDirs[image.lowerDirs.length - 1],
                ...(image.lowerDirs.length > 1 ? { LowerDir: image.lowerDirs.slice(0, -1).reverse().join(':') } : {}),
              },
      },
      RootFS: { Type: 'layers', Layers: image.diffIds },
      Metadata: { LastTagTime: image.lastTagTime ?? '0001-01-01T00:00:00Z' },
    };
  };

  const sendTar = async (reply: FastifyReply, request: FastifyRequest, names: string[]): Promise<FastifyReply> => {
    const archive = await images.save(contextOf(request), names);
    return reply.type('application/x-tar').send(archive);
  };

  // ImageList
  app.get('/images/json', list);

  // ImageGetAll
  app.get('/images/get', async (request, reply) => sendTar(reply, request, queryList(request.query, 'names')));

  // ImageInspect, ImageHistory, ImageGet
  app.get('/images/*', async (request, reply) => {
    const path = (request.params as { '*': string })['*'];
    const slash = path.lastIndexOf('/');
    const name = path.slice(0, slash);
    const op = path.slice(slash + 1);
    if (slash <= 0) return reply.code(404).send({ message: 'page not found' });
    if (op === 'json') return inspect(request, name);
    if (op === 'history') return images.history(contextOf(request), name);
    if (op === 'get') return sendTar(reply, request, [name]);
    return reply.code(404).send({ message: 'page not found' });
  });

  // ImageLoad
  app.post('/images/load', async (request, reply) => {
    const lines = await guardImageAdd(request, 'load', undefined, () => images.load(contextOf(request), request.raw));
    const body = lines.map((line) => `${JSON.stringify({ stream: `${line}\n` })}\n`).join('');
    // A Buffer, so fastify leaves the content type exactly "application/json": the CLI reads
    // the body as a JSON message stream only then (a charset parameter makes it print raw).
    return reply.type('application/json').send(Buffer.from(body));
  });

  // ImageCreate: `docker pull` (fromImage) and `docker import` (fromSrc=-).
  app.post('/images/create', async (request, reply) => {
    const fromSrc = queryString(request.query, 'fromSrc');
    if (fromSrc === undefined) {
      const fromImage = queryString(request.query, 'fromImage') ?? '';
      if (registry === undefined) throw notImplemented(`pulling images is not supported here (${fromImage})`);
      const options = {
        fromImage,
        tag: queryString(request.query, 'tag') || undefined,
        platform: queryString(request.query, 'platform') || undefined,
        registryAuth: registryAuthOf(request),
      };
      if (tenants !== undefined) admitRegistry(tenants, request, fromImage);
      const pullRef = options.tag ? `${fromImage}:${options.tag}` : fromImage;
      return guardImageAdd(request, 'pull', pullRef, () => streamProgress(request, reply, (sink) => registry.pull(contextOf(request), options, sink)));
    }
    if (fromSrc !== '-') throw notImplemented('importing from a URL is not supported; pipe the archive to docker import -');
    const id = await guardImageAdd(request, 'import', undefined, () =>
      images.import(contextOf(request), request.raw, {
        repo: queryString(request.query, 'repo') || undefined,
        tag: queryString(request.query, 'tag') || undefined,
        changes: queryList(request.query, 'changes'),
        message: queryString(request.query, 'message') || undefined,
      }),
    );
    return reply.type('application/json').send(Buffer.from(`${JSON.stringify({ status: id })}\n`));
  });

  // ImagePrune
  app.post('/images/prune', async (request) => {
    const result = await images.prune(contextOf(request), parseFilterJson(queryString(request.query, 'filters')));
    return { ImagesDeleted: result.ImagesDeleted.length > 0 ? result.ImagesDeleted : null, SpaceReclaimed: result.SpaceReclaimed };
  });

  // ImageTag, ImagePush
  app.post('/images/*', async (request, reply) => {
    const path = (request.params as { '*': string })['*'];
    const slash = path.lastIndexOf('/');
    const name = path.slice(0, slash);
    const op = path.slice(slash + 1);
    if (slash > 0 && op === 'tag') {
      await images.tag(contextOf(request), name, queryString(request.query, 'repo') ?? '', queryString(request.query, 'tag') || undefined);
      return reply.code(201).send();
    }
    if (slash > 0 && op === 'push') {
      if (registry === undefined) throw notImplemented('pushing images is not supported here');
      const options = { name, tag: queryString(request.query, 'tag') || undefined, registryAuth: registryAuthOf(request) };
      if (tenants !== undefined) admitRegistry(tenants, request, name);
      await images.refusePublishedPush(contextOf(request), name, options.tag);
      return streamProgress(request, reply, (sink) => registry.push(contextOf(request), options, sink));
    }
    return reply.code(404).send({ message: 'page not found' });
  });

  // ImageDelete
  app.delete('/images/*', async (request) => {
    const name = (request.params as { '*': string })['*'];
    return images.remove(contextOf(request), name, {
      force: queryBool(request.query, 'force'),
      prune: !queryBool(request.query, 'noprune'),
    });
  });
}
