import type { IdRange } from '../../agent/userns/id-range.js';
import { adoptFreshDirectory } from '../../agent/userns/ownership.js';
import { mkdir, stat } from 'node:fs/promises';
import type { RequestContext } from '../../common/context.js';
import { invalidArgument, isKind } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { dataDir } from '../../agent/volumes/local-volumes.js';
import { copyUpImageContent } from '../../agent/mounts/copy-up.js';
import type { PreparedMount } from '../../agent/mounts/oci-mounts.js';
import type { EventPublisher } from '../events/types.js';
import type { VolumeService } from '../volumes/volume-service.js';
import type { MountPoint } from './model.js';
import { parseBind, parseMountObject, parseVolumesFrom, type ParsedMount } from './mount-spec.js';

/** What a container asks for, as create received it. */
export interface MountRequest {
  binds: string[];
  mounts: unknown[];
  volumesFrom: string[];
  /** Config.Volumes: the user's `-v /path` and the image's VOLUME paths (anonymous volumes). */
  configVolumes: string[];
  /** HostConfig.Tmpfs destinations, which a -v must not collide with. */
  tmpfs: string[];
}

/** A stored container, as far as mounts need it (for --volumes-from). */
export interface MountSourceContainer {
  id: string;
  mounts: MountPoint[];
}

export interface PlannedMounts {
  points: MountPoint[];
  /** Volumes plan made (anonymous, and named ones that did not exist): release removes them. */
  created: string[];
}

export interface MountPlannerOptions {
  volumes: VolumeService;
  events: EventPublisher;
  logger: Logger;
}

/**
 * Plans and prepares a container's mounts (dockerd's registerMountPoints, then setupMounts).
 *
 * plan (at create): parses and validates every request first, so bad input changes nothing;
 * then makes the volumes it names (named ones when missing, anonymous ones always). If making
 * one fails, the ones made so far are removed. The result is stored on the container record.
 *
 * prepare (at every start): turns mount points into spec mounts — volume directories ready
 * (option volumes mounted, image content copied into empty volumes), missing -v host
 * directories made, tmpfs data collected.
 *
 * release: undoes plan for a container whose create failed; removeVolumes is `rm -v`.
 */
export class MountPlanner {
  constructor(private readonly opts: MountPlannerOptions) {}

  async plan(ctx: RequestContext, request: MountRequest, lookup: (ref: string) => Promise<MountSourceContainer>): Promise<PlannedMounts> {
    const planned = new Map<string, ParsedMount>();
    // Binds, mounts and tmpfs claim destinations; volumes-from and image volumes fill the rest.
    const claimed = new Set<string>(request.tmpfs.map((d) => parseBind(d).point.Destination));
    const duplicate = (dest: string): Error => invalidArgument(`Duplicate mount point: ${dest}`);

    const parsedBinds = request.binds.map(parseBind);
    const parsedMounts = request.mounts.map(parseMountObject);
    const parsedConfigVolumes = request.configVolumes.map(parseBind);
    const from = request.volumesFrom.map(parseVolumesFrom);

    for (const { container, mode } of from) {
      // dockerd answers 400 here: a 404 would make the docker CLI try to pull the image.
      const source = await lookup(container).catch((err: unknown) => {
        throw isKind(err, 'NotFound') ? invalidArgument(err.message) : err;
      });
      for (const m of source.mounts) {
        planned.set(m.Destination, { point: { ...m, RW: m.RW && mode === 'rw', CopyData: false } });
      }
    }
    for (const bind of parsedBinds) {
      if (claimed.has(bind.point.Destination)) throw duplicate(bind.point.Destination);
      claimed.add(bind.point.Destination);
      planned.set(bind.point.Destination, bind);
    }
    for (const mount of parsedMounts) {
      if (claimed.has(mount.point.Destination)) throw duplicate(mount.point.Destination);
      claimed.add(mount.point.Destination);
      planned.set(mount.point.Destination, mount);
    }
    for (const anonymous of parsedConfigVolumes) {
      if (!planned.has(anonymous.point.Destination) && !claimed.has(anonymous.point.Destination)) {
        planned.set(anonymous.point.Destination, { point: { ...anonymous.point, Mode: '' }, volume: {} });
      }
    }

    const made: string[] = [];
    try {
      const points: MountPoint[] = [];
      for (const { point, volume } of planned.values()) {
        if (point.Type !== 'volume' || !volume) {
          points.push(point);
          continue;
        }
        const request = { ...(volume.options ? { options: volume.options } : {}), ...(volume.labels ? { labels: volume.labels } : {}) };
        let record;
        if (volume.name === undefined) {
          record = await this.opts.volumes.createAnonymous(ctx, request);
          made.push(record.name);
        } else {
          const ensured = await this.opts.volumes.ensure(ctx, volume.name, { ...request, ...(volume.driver ? { driver: volume.driver } : {}) });
          record = ensured.record;
          if (ensured.created) made.push(record.name);
        }
        points.push({ ...point, Name: record.name, Source: dataDir(record.base), Driver: record.driver });
      }
      return { points, created: made };
    } catch (err) {
      for (const name of made) await this.opts.volumes.removeCreated(ctx, name).catch(() => undefined);
      throw err;
    }
  }

  /** Removes the volumes plan made for a container whose create then failed. */
  async release(ctx: RequestContext, planned: PlannedMounts): Promise<void> {
    for (const name of planned.created) await this.opts.volumes.removeCreated(ctx, name).catch(() => undefined);
  }

  /** `docker rm -v` and `run --rm`: the container's anonymous volumes go; named ones stay. */
  async removeVolumes(ctx: RequestContext, points: MountPoint[]): Promise<void> {
    await this.opts.volumes.removeAnonymous(ctx, volumeNames(points));
  }

  /** Unmounts option volumes no running container needs any more (after an exit). */
  async afterExit(ctx: RequestContext, points: MountPoint[]): Promise<void> {
    for (const name of volumeNames(points)) await this.opts.volumes.releaseIfUnused(ctx, name);
  }

  async prepare(
    ctx: RequestContext,
    container: { id: string; mounts: MountPoint[] },
    rootfs: string,
    /** A tenant's ID range: fresh volumes become its root's. */
    idRange?: IdRange,
  ): Promise<{ binds: PreparedMount[]; tmpfs: Record<string, string> }> {
    const binds: PreparedMount[] = [];
    const tmpfs: Record<string, string> = {};
    for (const m of container.mounts) {
      if (m.Type === 'tmpfs') {
        tmpfs[m.Destination] = m.TmpfsData ?? '';
        continue;
      }
      let source = m.Source;
      if (m.Type === 'volume') {
        source = await this.opts.volumes.mountpoint(ctx, m.Name!);
        if (m.CopyData) await copyUpImageContent(rootfs, m.Destination, source);
        if (idRange) await adoptFreshDirectory(idRange, source);
        this.opts.events.publish(ctx, {
          Type: 'volume',
          Action: 'mount',
          Actor: {
            ID: m.Name!,
            Attributes: { container: container.id, destination: m.Destination, driver: m.Driver ?? 'local', propagation: m.Propagation, 'read/write': String(m.RW) },
          },
        });
      } else if (m.CreateSource) {
        await mkdir(source, { recursive: true, mode: 0o755 });
      } else if (!(await stat(source).catch(() => undefined))) {
        throw invalidArgument(`invalid mount config for type "bind": bind source path does not exist: ${source}`);
      }
      binds.push({
        source,
        destination: m.Destination,
        readonly: !m.RW,
        propagation: m.Propagation || 'rprivate',
        ...(m.NonRecursive ? { nonRecursive: true } : {}),
      });
    }
    return { binds, tmpfs };
  }
}

function volumeNames(points: MountPoint[]): string[] {
  return points.filter((p) => p.Type === 'volume' && p.Name).map((p) => p.Name!);
}
