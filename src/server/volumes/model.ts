/**
 * The volume record the control plane keeps in the Store (kind "volume", id = name, tenant-scoped).
 *
 * Field contracts (all immutable after create):
 * - name: [a-zA-Z0-9][a-zA-Z0-9_.-]+, unique per tenant; a random 64-hex id for anonymous ones.
 * - base: the host directory that holds the volume (`<data-root>/volumes/<name>` for the
 *   operator tenant); its `_data` is what containers mount. Stored so a layout change never
 *   strands old volumes.
 * - options: the local driver's options (type/device/o/size), validated at create.
 * - anonymous: made for one container (image VOLUME, `-v /path`, `--mount` without source);
 *   `docker rm -v` and `run --rm` remove it with the container. Reported as Docker 23+ does,
 *   with the label com.docker.volume.anonymous.
 */
export interface VolumeRecord {
  name: string;
  driver: string;
  createdAt: string; // RFC 3339, seconds precision with zone, as dockerd prints it
  labels: Record<string, string>;
  options: Record<string, string>;
  anonymous: boolean;
  base: string;
}

export const VOLUME_KIND = 'volume';
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';
export const VALID_VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Docker's Volume object (GET /volumes/{name}). */
export interface VolumeView {
  CreatedAt: string;
  Driver: string;
  Labels: Record<string, string> | null;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: 'local';
  UsageData?: { Size: number; RefCount: number };
}

/** Who uses a volume: the containers whose mount points name it. */
export interface VolumeUsage {
  containersUsing(ctx: import('../../common/context.js').RequestContext, name: string): Promise<{ id: string; running: boolean }[]>;
}
