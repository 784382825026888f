import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RequestContext } from '../../common/context.js';
import { OPERATOR_TENANT } from '../../common/context.js';
import { conflict, invalidArgument, isKind, notFound } from '../../common/errors.js';
import { newId } from '../../common/ids.js';
import { KeyedMutex } from '../../common/keyed-mutex.js';
import type { Logger } from '../../common/logging.js';
import {
  createVolumeDir,
  dataDir,
  directorySize,
  LOCAL_DRIVER,
  mountVolume,
  planLocalMount,
  removeVolumeDir,
  unmountVolume,
} from '../../agent/volumes/local-volumes.js';
import type { EventPublisher } from '../events/types.js';
import type { Store } from '../store/store.js';
import { ANONYMOUS_LABEL, VALID_VOLUME_NAME, VOLUME_KIND, type VolumeRecord, type VolumeUsage, type VolumeView } from './model.js';
import { parseVolumeFilters, volumeMatches } from './volume-filters.js';
import { labelMatches } from '../list-filters.js';

export interface VolumeServiceOptions {
  store: Store;
  events: EventPublisher;
  dataRoot: string;
  logger: Logger;
  usage: VolumeUsage;
}

/** The body of POST /volumes/create. */
export interface VolumeCreateBody {
  Name?: unknown;
  Driver?: unknown;
  DriverOpts?: unknown;
  Labels?: unknown;
}

/**
 * Local named and anonymous volumes for one host, as dockerd's `local` driver keeps them:
 * a record per volume in the Store (tenant-scoped, id = name) and the data under
 * `<data-root>/volumes/<name>/_data`.
 *
 * Lifecycle: create (directory, then record) → used by containers (mountpoint() mounts option
 * volumes on first use; releaseIfUnused() unmounts when no running container needs them) →
 * remove (refused while any container, running or not, refers to the volume; record first,
 * then the directory). Operations on one volume are serialised. Start-up reconcile removes
 * directories without a record and makes option mounts match the running containers.
 */
export class VolumeService {
  private readonly locks = new KeyedMutex();
  constructor(private readonly opts: VolumeServiceOptions) {}

  // ---------------------------------------------------------------- Docker API

  async create(ctx: RequestContext, body: VolumeCreateBody): Promise<VolumeView> {
    if (typeof body !== 'object' || body === null) throw invalidArgument('invalid request body: a JSON object is required');
    const name = body.Name === undefined || body.Name === null || body.Name === '' ? newId() : body.Name;
    if (typeof name !== 'string') throw invalidArgument('invalid Name: must be a string');
    const driver = body.Driver === undefined || body.Driver === null || body.Driver === '' ? LOCAL_DRIVER : body.Driver;
    if (typeof driver !== 'string') throw invalidArgument('invalid Driver: must be a string');
    const options = stringMap(body.DriverOpts, 'DriverOpts');
    const labels = stringMap(body.Labels, 'Labels');
    const record = await this.createRecord(ctx, { name, driver, options, labels, anonymous: false });
    return this.view(record);
  }

  async inspect(ctx: RequestContext, name: string): Promise<VolumeView> {
    return this.view(await this.get(ctx, name));
  }

  async list(ctx: RequestContext, rawFilters: string | undefined): Promise<{ Volumes: VolumeView[]; Warnings: string[] | null }> {
    const filters = parseVolumeFilters(rawFilters);
    const volumes: VolumeView[] = [];
    for (const record of await this.records(ctx)) {
      const inUse = filters.dangling ? (await this.opts.usage.containersUsing(ctx, record.name)).length > 0 : false;
      if (volumeMatches(record, inUse, filters)) volumes.push(this.view(record));
    }
    volumes.sort((a, b) => a.Name.localeCompare(b.Name));
    return { Volumes: volumes, Warnings: null };
  }

  /** `force` only makes a missing volume a success; a volume in use is never removed. */
  async remove(ctx: RequestContext, name: string, force: boolean): Promise<void> {
    await this.locks.run(lockKey(ctx, name), async () => {
      let record: VolumeRecord;
      try {
        record = await this.get(ctx, name);
      } catch (err) {
        if (force && isKind(err, 'NotFound')) return;
        throw err;
      }
      const users = await this.opts.usage.containersUsing(ctx, record.name);
      if (users.length > 0) throw conflict(`remove ${name}: volume is in use - [${users.map((u) => u.id).join(', ')}]`);
      await this.destroy(ctx, record);
    });
  }

  /**
   * Removes volumes no container refers to. API 1.42 and later prune only anonymous volumes
   * unless the filter all=true is given, as Docker 23+ does; older clients get every unused volume.
   */
  async prune(ctx: RequestContext, rawFilters: string | undefined, apiVersion: string): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    const filters = parseVolumeFilters(rawFilters, true);
    const all = filters.all ? ['true', '1'].includes(filters.all[0]!.toLowerCase()) : !apiAtLeast(apiVersion, '1.42');
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const record of await this.records(ctx)) {
      if (!all && !record.anonymous) continue;
      if (filters.label && !filters.label.every((l) => labelMatches(record.labels, l))) continue;
      if (filters['label!'] && filters['label!'].some((l) => labelMatches(record.labels, l))) continue;
      await this.locks.run(lockKey(ctx, record.name), async () => {
        if ((await this.opts.usage.containersUsing(ctx, record.name)).length > 0) return;
        const size = await directorySize(dataDir(record.base));
        await this.destroy(ctx, record);
        deleted.push(record.name);
        reclaimed += size;
      }).catch((err: unknown) => this.opts.logger.warn({ err, volume: record.name }, 'prune could not remove a volume'));
    }
    this.opts.events.publish(ctx, { Type: 'volume', Action: 'prune', Actor: { ID: '', Attributes: { reclaimed: String(reclaimed) } } });
    return { VolumesDeleted: deleted, SpaceReclaimed: reclaimed };
  }

  /** Volumes with UsageData, for `docker system df`. */
  async diskUsage(ctx: RequestContext): Promise<(VolumeView & { UsageData: { Size: number; RefCount: number } })[]> {
    const views: (VolumeView & { UsageData: { Size: number; RefCount: number } })[] = [];
    for (const record of await this.records(ctx)) {
      const refs = (await this.opts.usage.containersUsing(ctx, record.name)).length;
      views.push({ ...this.view(record), UsageData: { Size: await directorySize(dataDir(record.base)), RefCount: refs } });
    }
    return views;
  }

  // ---------------------------------------------------------------- for containers

  /** The named volume a mount asks for, created when missing (as `docker run -v name:/x` does). */
  async ensure(ctx: RequestContext, name: string, request: { driver?: string; options?: Record<string, string>; labels?: Record<string, string> } = {}): Promise<{ record: VolumeRecord; created: boolean }> {
    try {
      return { record: await this.get(ctx, name), created: false };
    } catch (err) {
      if (!isKind(err, 'NotFound')) throw err;
    }
    const record = await this.createRecord(ctx, {
      name,
      driver: request.driver || LOCAL_DRIVER,
      options: request.options ?? {},
      labels: request.labels ?? {},
      anonymous: false,
    });
    return { record, created: true };
  }

  async createAnonymous(ctx: RequestContext, request: { options?: Record<string, string>; labels?: Record<string, string> } = {}): Promise<VolumeRecord> {
    return this.createRecord(ctx, {
      name: newId(),
      driver: LOCAL_DRIVER,
      options: request.options ?? {},
      labels: { ...(request.labels ?? {}), [ANONYMOUS_LABEL]: '' },
      anonymous: true,
    });
  }

  /**
   * The host path a container mounts for the volume, ready to use: an option volume is mounted,
   * a volume whose record vanished (removed while a stopped container still named it) is made again.
   */
  async mountpoint(ctx: RequestContext, name: string): Promise<string> {
    const { record } = await this.ensure(ctx, name);
    await this.locks.run(lockKey(ctx, name), async () => {
      await createVolumeDir(record.base);
      await mountVolume(record.base, planLocalMount(record.options));
    });
    return dataDir(record.base);
  }

  /** Unmounts an option volume once no running container uses it. */
  async releaseIfUnused(ctx: RequestContext, name: string): Promise<void> {
    await this.locks.run(lockKey(ctx, name), async () => {
      const record = await this.get(ctx, name).catch(() => undefined);
      if (!record || Object.keys(record.options).length === 0) return;
      const users = await this.opts.usage.containersUsing(ctx, name);
      if (users.some((u) => u.running)) return;
      await unmountVolume(record.base);
    });
  }

  /** Removes the anonymous volumes among `names` that no other container uses (rm -v). */
  async removeAnonymous(ctx: RequestContext, names: string[]): Promise<void> {
    for (const name of names) {
      await this.locks.run(lockKey(ctx, name), async () => {
        const record = await this.get(ctx, name).catch(() => undefined);
        if (!record?.anonymous) return;
        if ((await this.opts.usage.containersUsing(ctx, name)).length > 0) return;
        await this.destroy(ctx, record);
      }).catch((err: unknown) => this.opts.logger.warn({ err, volume: name }, 'removing an anonymous volume failed'));
    }
  }

  /** Removes a volume made for a container whose create failed (whatever its kind). */
  async removeCreated(ctx: RequestContext, name: string): Promise<void> {
    await this.locks.run(lockKey(ctx, name), async () => {
      const record = await this.get(ctx, name).catch(() => undefined);
      if (record && (await this.opts.usage.containersUsing(ctx, name)).length === 0) await this.destroy(ctx, record);
    });
  }

  // ---------------------------------------------------------------- reconcile

  /**
   * After a restart: option volumes are mounted exactly when a running container uses them,
   * and volume directories without a record (a crash between directory and record) go.
   */
  async reconcile(): Promise<void> {
    const records = await this.opts.store.listAllTenants<VolumeRecord>(VOLUME_KIND);
    const bases = new Set(records.map((r) => r.value.base));
    for (const stored of records) {
      const ctx: RequestContext = { tenant: stored.tenant, requestId: 'reconcile' };
      const record = stored.value;
      if (Object.keys(record.options).length === 0) continue;
      try {
        const users = await this.opts.usage.containersUsing(ctx, record.name);
        if (users.some((u) => u.running)) await mountVolume(record.base, planLocalMount(record.options));
        else await unmountVolume(record.base);
      } catch (err) {
        this.opts.logger.error({ err, volume: record.name }, 'reconcile of a volume failed');
      }
    }
    const root = join(this.opts.dataRoot, 'volumes');
    const dirs: string[] = [];
    for (const entry of await readdir(root).catch(() => [] as string[])) {
      if (entry.startsWith('@')) {
        for (const inner of await readdir(join(root, entry)).catch(() => [] as string[])) dirs.push(join(root, entry, inner));
      } else dirs.push(join(root, entry));
    }
    for (const dir of dirs) {
      if (bases.has(dir)) continue;
      this.opts.logger.warn({ dir }, 'removing a volume directory without a record');
      await removeVolumeDir(dir).catch((err: unknown) => this.opts.logger.error({ err, dir }, 'removing an orphan volume directory failed'));
    }
  }

  // ---------------------------------------------------------------- helpers

  private async createRecord(
    ctx: RequestContext,
    request: { name: string; driver: string; options: Record<string, string>; labels: Record<string, string>; anonymous: boolean },
  ): Promise<VolumeRecord> {
    const { name, driver } = request;
    if (name.length === 1) throw invalidArgument(`create ${name}: volume name is too short, names should be at least two alphanumeric characters`);
    if (!VALID_VOLUME_NAME.test(name)) {
      throw invalidArgument(
        `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
      );
    }
    if (driver !== LOCAL_DRIVER) throw notFound(`create ${name}: error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    try {
      planLocalMount(request.options);
    } catch (err) {
      if (err instanceof Error) err.message = `create ${name}: ${err.message}`;
      throw err;
    }
    return this.locks.run(lockKey(ctx, name), async () => {
      const existing = await this.get(ctx, name).catch(() => undefined);
      if (existing) return existing;
      const record: VolumeRecord = {
        name,
        driver,
        createdAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        labels: request.labels,
        options: request.options,
        anonymous: request.anonymous,
        base: this.baseFor(ctx, name),
      };
      // Directory first: a record never points at nothing; a crash in between leaves an
      // orphan directory that reconcile removes.
      await createVolumeDir(record.base);
      try {
        await this.opts.store.create<VolumeRecord>(ctx, VOLUME_KIND, { id: name, name, value: record });
      } catch (err) {
        await removeVolumeDir(record.base).catch(() => undefined);
        throw err;
      }
      this.opts.events.publish(ctx, { Type: 'volume', Action: 'create', Actor: { ID: name, Attributes: { driver } } });
      return record;
    });
  }

  /** Record first, then the host: a crash in between leaves an orphan directory for reconcile. */
  private async destroy(ctx: RequestContext, record: VolumeRecord): Promise<void> {
    await this.opts.store.delete(ctx, VOLUME_KIND, record.name);
    await removeVolumeDir(record.base).catch((err: unknown) =>
      this.opts.logger.warn({ err, volume: record.name }, 'removing a volume directory failed; reconcile retries'),
    );
    this.opts.events.publish(ctx, { Type: 'volume', Action: 'destroy', Actor: { ID: record.name, Attributes: { driver: record.driver } } });
  }

  private async get(ctx: RequestContext, name: string): Promise<VolumeRecord> {
    try {
      return (await this.opts.store.get<VolumeRecord>(ctx, VOLUME_KIND, name)).value;
    } catch (err) {
      if (isKind(err, 'NotFound')) throw notFound(`get ${name}: no such volume`);
      throw err;
    }
  }

  private async records(ctx: RequestContext): Promise<VolumeRecord[]> {
    return (await this.opts.store.list<VolumeRecord>(ctx, VOLUME_KIND)).map((s) => s.value);
  }

  /** The operator's volumes live where dockerd keeps them; other tenants' under a hashed directory. */
  private baseFor(ctx: RequestContext, name: string): string {
    const root = join(this.opts.dataRoot, 'volumes');
    if (ctx.tenant === OPERATOR_TENANT) return join(root, name);
    const tenantDir = `@${createHash('sha256').update(ctx.tenant).digest('hex').slice(0, 16)}`;
    return join(root, tenantDir, name);
  }

  private view(record: VolumeRecord): VolumeView {
    return {
      CreatedAt: record.createdAt,
      Driver: record.driver,
      Labels: Object.keys(record.labels).length > 0 ? record.labels : null,
      Mountpoint: dataDir(record.base),
      Name: record.name,
      Options: Object.keys(record.options).length > 0 ? record.options : null,
      Scope: 'local',
    };
  }
}

function lockKey(ctx: RequestContext, name: string): string {
  return `${ctx.tenant}\u0000${name}`;
}

function stringMap(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(`invalid ${field}: must be an object`);
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw invalidArgument(`invalid ${field}: value of ${key} must be a string`);
  }
  return { ...(value as Record<string, string>) };
}

function apiAtLeast(version: string, min: string): boolean {
  const [a1 = 0, a2 = 0] = version.split('.').map(Number);
  const [b1 = 0, b2 = 0] = min.split('.').map(Number);
  return a1 > b1 || (a1 === b1 && a2 >= b2);
}
