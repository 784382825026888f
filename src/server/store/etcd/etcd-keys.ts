/**
 * The etcd key layout of the Store (docs/store.md). Every key starts with the store's prefix
 * (default "/berth/"), so one etcd cluster can hold several Berth installations or test runs:
 *
 *   <prefix>r/<kind>/<tenant>/<id>    the record: JSON {name, revision, value, write}
 *   <prefix>n/<kind>/<tenant>/<name>  the name index: the id of the record holding that name
 *
 * Kind comes before tenant so that one range read lists a kind for every tenant (start-up
 * reconcile) and a narrower one lists it for one tenant. Each segment is URI-encoded, so a "/"
 * inside a tenant, kind, id or name cannot reach into another segment; hex ids encode to
 * themselves, which keeps an id prefix a key prefix.
 */
export class EtcdKeys {
  constructor(readonly prefix: string) {}

  record(kind: string, tenant: string, id: string): string {
    return `${this.recordsOfTenant(kind, tenant)}${encode(id)}`;
  }

  name(kind: string, tenant: string, name: string): string {
    return `${this.prefix}n/${encode(kind)}/${encode(tenant)}/${encode(name)}`;
  }

  recordsOfTenant(kind: string, tenant: string): string {
    return `${this.recordsOfKind(kind)}${encode(tenant)}/`;
  }

  recordsOfKind(kind: string): string {
    return `${this.prefix}r/${encode(kind)}/`;
  }

  /** Every record of every kind, for migration and its verification. */
  allRecords(): string {
    return `${this.prefix}r/`;
  }

  /** Reads kind, tenant and id back out of a record key; undefined for any other key. */
  parseRecord(key: string): { kind: string; tenant: string; id: string } | undefined {
    if (!key.startsWith(`${this.prefix}r/`)) return undefined;
    const parts = key.slice(this.prefix.length + 2).split('/');
    if (parts.length !== 3) return undefined;
    const [kind, tenant, id] = parts.map(decodeURIComponent) as [string, string, string];
    return { kind, tenant, id };
  }
}

/** The exclusive end of the key range holding every key that starts with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // every key: etcd's "no upper bound"
}

function encode(segment: string): string {
  return encodeURIComponent(segment);
}
