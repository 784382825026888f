import type { RequestContext } from '../../common/context.js';
import { isKind } from '../../common/errors.js';
import type { Store } from '../store/store.js';

/**
 * Who uses each piece of host-wide image content. Blobs and unpacked layers are shared by
 * every tenant, so their users are recorded outside any tenant, under a reserved store scope
 * no tenant name can take ("@host"). A user is "<tenant>/<image hex>": adding the same user
 * twice is harmless, so a retried load never over-counts.
 *
 * Kinds: "image-blob" (id = blob digest hex: configs and layer tars) and "image-layer"
 * (id = chain id hex; value also carries the layer's size).
 */
export const HOST_SCOPE: RequestContext = { tenant: '@host', requestId: 'image-content' };
export const BLOB_KIND = 'image-blob';
export const LAYER_KIND = 'image-layer';

export interface ContentRef {
  users: string[];
  size?: number;
}

export class ContentRefs {
  constructor(private readonly store: Store) {}

  async get(kind: string, hex: string): Promise<ContentRef | undefined> {
    try {
      return (await this.store.get<ContentRef>(HOST_SCOPE, kind, hex)).value;
    } catch (err) {
      if (isKind(err, 'NotFound')) return undefined;
      throw err;
    }
  }

  async addUser(kind: string, hex: string, user: string, size?: number): Promise<void> {
    for (;;) {
      try {
        const current = await this.store.get<ContentRef>(HOST_SCOPE, kind, hex);
        if (current.value.users.includes(user)) return;
        const value = { ...current.value, users: [...current.value.users, user] };
        await this.store.update(HOST_SCOPE, kind, hex, { value, expectedRevision: current.revision });
        return;
      } catch (err) {
        if (isKind(err, 'Conflict')) continue;
        if (!isKind(err, 'NotFound')) throw err;
      }
      try {
        await this.store.create<ContentRef>(HOST_SCOPE, kind, { id: hex, value: { users: [user], ...(size !== undefined ? { size } : {}) } });
        return;
      } catch (err) {
        if (!isKind(err, 'AlreadyExists')) throw err;
      }
    }
  }

  /** Drops a user; true when nobody uses the content any more (its record is then gone). */
  async dropUser(kind: string, hex: string, user: string): Promise<boolean> {
    for (;;) {
      let current;
      try {
        current = await this.store.get<ContentRef>(HOST_SCOPE, kind, hex);
      } catch (err) {
        if (isKind(err, 'NotFound')) return true;
        throw err;
      }
      const users = current.value.users.filter((u) => u !== user);
      try {
        if (users.length === 0) await this.store.delete(HOST_SCOPE, kind, hex, current.revision);
        else await this.store.update(HOST_SCOPE, kind, hex, { value: { ...current.value, users }, expectedRevision: current.revision });
        return users.length === 0;
      } catch (err) {
        if (isKind(err, 'Conflict')) continue;
        throw err;
      }
    }
  }
}
