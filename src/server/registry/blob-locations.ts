import type { RequestContext } from '../../common/context.js';
import { isKind } from '../../common/errors.js';
import { digestHex } from '../../agent/images/digest.js';
import type { Store } from '../store/store.js';

/** Store kind: per tenant, id = diff id hex. */
export const BLOB_LOCATION_KIND = 'registry-blob-location';

/** A compressed blob known to hold a layer, and the repositories ("domain/path") that have it. */
export interface KnownBlob {
  digest: string;
  size: number;
  mediaType: string;
  repositories: string[];
}

interface BlobLocationRecord {
  blobs: KnownBlob[];
}

/** Repositories remembered per blob; older ones are dropped beyond this. */
const MAX_REPOSITORIES = 20;

/**
 * Where each layer (by diff id) was seen in compressed form: the blob digest a registry holds
 * it under, and in which repositories (after dockerd's v2 metadata service). A pull or push
 * records it; a push reads it to skip a blob the target repository already has ("Layer
 * already exists") or to mount it from another repository of the same registry ("Mounted
 * from …") instead of compressing and uploading it again. Kept per tenant, so one tenant's
 * pushes never hint at another's repositories.
 */
export class BlobLocations {
  constructor(private readonly store: Store) {}

  async get(ctx: RequestContext, diffId: string): Promise<KnownBlob[]> {
    try {
      return (await this.store.get<BlobLocationRecord>(ctx, BLOB_LOCATION_KIND, digestHex(diffId))).value.blobs;
    } catch (err) {
      if (isKind(err, 'NotFound')) return [];
      throw err;
    }
  }

  async add(ctx: RequestContext, diffId: string, blob: Omit<KnownBlob, 'repositories'>, repository: string): Promise<void> {
    const id = digestHex(diffId);
    for (;;) {
      let current;
      try {
        current = await this.store.get<BlobLocationRecord>(ctx, BLOB_LOCATION_KIND, id);
      } catch (err) {
        if (!isKind(err, 'NotFound')) throw err;
      }
      const blobs = (current?.value.blobs ?? []).filter((b) => b.digest !== blob.digest);
      const previous = current?.value.blobs.find((b) => b.digest === blob.digest);
      const repositories = [...(previous?.repositories ?? []).filter((r) => r !== repository), repository].slice(-MAX_REPOSITORIES);
      const value: BlobLocationRecord = { blobs: [...blobs, { ...blob, repositories }] };
      try {
        if (current === undefined) await this.store.create(ctx, BLOB_LOCATION_KIND, { id, value });
        else await this.store.update(ctx, BLOB_LOCATION_KIND, id, { value, expectedRevision: current.revision });
        return;
      } catch (err) {
        if (!isKind(err, 'Conflict') && !isKind(err, 'AlreadyExists')) throw err;
      }
    }
  }
}
