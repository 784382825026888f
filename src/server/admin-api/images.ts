import type { FastifyInstance } from 'fastify';
import { invalidArgument } from '../../common/errors.js';
import type { ImageService } from '../images/image-service.js';
import { requireOperator } from '../docker-api/auth.js';
import { requestContext } from '../docker-api/request-context.js';

function imageOf(body: unknown): string {
  const value = (body as Record<string, unknown> | undefined)?.Image;
  if (typeof value !== 'string' || value === '') throw invalidArgument('Image is required: the reference or id of one of the operator\'s images');
  return value;
}

/**
 * Berth's admin API for the operator's published base images, under /berth/v1/images. Served
 * to the operator only (the local socket); `berth image` is its client.
 */
export async function imageAdminRoutes(app: FastifyInstance, opts: { images: ImageService }): Promise<void> {
  const { images } = opts;
  app.addHook('onRequest', async (request) => requireOperator(request));

  // The published images, as the operator's records have them now.
  app.get('/berth/v1/images', async () =>
    (await images.published.all()).map(({ image, publishedAt }) => ({ Id: image.id, RepoTags: image.repoTags, RepoDigests: image.repoDigests, PublishedAt: publishedAt })),
  );

  app.post('/berth/v1/images/publish', async (request) => {
    const result = await images.publish(requestContext(request), imageOf(request.body));
    return { Id: result.id, RepoTags: result.repoTags, AlreadyPublished: !result.published };
  });

  app.post('/berth/v1/images/unpublish', async (request) => ({ Id: (await images.unpublish(requestContext(request), imageOf(request.body))).id }));
}
