import { OPERATOR_TENANT, operatorContext, type RequestContext } from '../../common/context.js';
import { isKind } from '../../common/errors.js';
import { digestHex } from '../../agent/images/digest.js';
import type { Store, Stored } from '../store/store.js';
import { IMAGE_KIND, type ImageRecord } from './image-record.js';

/**
 * Base images the operator publishes to every tenant.
 *
 * Terms: a published image is one of the operator's own images (scope "default"), named by its
 * id in a record of a reserved store scope no tenant name can take ("@public"). What tenants see
 * is the operator's record as it is now: its current tags and digests, minus any reference the
 * tenant's own images hold (a tenant's own `base:latest` shadows the operator's for that tenant).
 *
 * Invariants: a tenant never writes the operator's record; it reads it. Layers stay shared and
 * content-addressed underneath; a tenant that tags, commits or builds from a published image
 * gets records of its own, which hold the layers for it (content-refs.ts). A container of a
 * tenant that runs a published image directly holds nothing, so the operator cannot delete an
 * image tenants' containers use (tenantContainersUsing), published or not.
 */
export const PUBLIC_SCOPE: RequestContext = { tenant: '@public', requestId: 'published-images' };
export const PUBLISHED_KIND = 'published-image';
/** The store kind of containers (container-service.ts); only imageId is read here. */
const CONTAINER_KIND = 'container';

export interface PublishedRecord {
  /** "sha256:<hex>" of the operator's image. */
  id: string;
  publishedAt: string;
}

/** A published image as a tenant sees it, in the shape of the tenant's own records. */
export interface VisibleImage {
  stored: Stored<ImageRecord>;
  /** False when the tenant's own images hold every reference it has: found by id, not listed. */
  listed: boolean;
}

export class PublishedImages {
  constructor(private readonly store: Store) {}

  async isPublished(imageId: string): Promise<boolean> {
    try {
      await this.store.get(PUBLIC_SCOPE, PUBLISHED_KIND, digestHex(imageId));
      return true;
    } catch (err) {
      if (isKind(err, 'NotFound')) return false;
      throw err;
    }
  }

  /** Publishes the operator's image; false when it was published already. */
  async add(imageId: string): Promise<boolean> {
    try {
      await this.store.create<PublishedRecord>(PUBLIC_SCOPE, PUBLISHED_KIND, { id: digestHex(imageId), value: { id: imageId, publishedAt: new Date().toISOString() } });
      return true;
    } catch (err) {
      if (isKind(err, 'AlreadyExists')) return false;
      throw err;
    }
  }

  /** Withdraws it; false when it was not published. Containers already made from it keep running. */
  async remove(imageId: string): Promise<boolean> {
    try {
      await this.store.delete(PUBLIC_SCOPE, PUBLISHED_KIND, digestHex(imageId));
      return true;
    } catch (err) {
      if (isKind(err, 'NotFound')) return false;
      throw err;
    }
  }

  /** The operator's records of every published image, with when each was published. */
  async all(): Promise<{ image: ImageRecord; publishedAt: string }[]> {
    const out: { image: ImageRecord; publishedAt: string }[] = [];
    for (const { value } of await this.store.list<PublishedRecord>(PUBLIC_SCOPE, PUBLISHED_KIND)) {
      try {
        out.push({ image: (await this.store.get<ImageRecord>(operatorContext('published-images'), IMAGE_KIND, digestHex(value.id))).value, publishedAt: value.publishedAt });
      } catch (err) {
        // The operator's image is gone (removed before publishing was refused for it): not visible.
        if (!isKind(err, 'NotFound')) throw err;
      }
    }
    return out;
  }

  /**
   * The published images a tenant sees beside `own` (its own records), each without the
   * references its own images hold; one whose every reference is shadowed is not listed (it is
   * still found by id). A tenant may hold its own record of the same id (after a tag): lookups
   * try its own records first. The operator sees only its own records.
   */
  async visibleTo(ctx: RequestContext, own: readonly Stored<ImageRecord>[]): Promise<VisibleImage[]> {
    if (ctx.tenant === OPERATOR_TENANT) return [];
    const ownRefs = new Set(own.flatMap((r) => [...r.value.repoTags, ...r.value.repoDigests]));
    const out: VisibleImage[] = [];
    for (const { image } of await this.all()) {
      const repoTags = image.repoTags.filter((t) => !ownRefs.has(t));
      const repoDigests = image.repoDigests.filter((d) => !ownRefs.has(d));
      const shadowed = image.repoTags.length + image.repoDigests.length > 0 && repoTags.length + repoDigests.length === 0;
      out.push({ stored: { id: digestHex(image.id), name: null, revision: 0, value: { ...image, repoTags, repoDigests } }, listed: !shadowed });
    }
    return out;
  }

  /**
   * Containers of tenants that use the image and hold no image record of that id of their own
   * (so only the operator's record keeps its layers). This is the operator's own delete check;
   * it reads across tenants but answers the operator alone, and only with a count and an id.
   */
  async tenantContainersUsing(imageId: string): Promise<{ tenant: string; id: string }[]> {
    const users = (await this.store.listAllTenants<{ imageId?: string }>(CONTAINER_KIND)).filter((c) => c.tenant !== OPERATOR_TENANT && c.value.imageId === imageId);
    const out: { tenant: string; id: string }[] = [];
    const holds = new Map<string, boolean>();
    for (const container of users) {
      let held = holds.get(container.tenant);
      if (held === undefined) {
        held = await this.store.get({ tenant: container.tenant, requestId: 'published-images' }, IMAGE_KIND, digestHex(imageId)).then(
          () => true,
          (err: unknown) => {
            if (isKind(err, 'NotFound')) return false;
            throw err;
          },
        );
        holds.set(container.tenant, held);
      }
      if (!held) out.push({ tenant: container.tenant, id: container.id });
    }
    return out;
  }
}
