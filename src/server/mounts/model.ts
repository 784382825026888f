/**
 * A container's mount point as Berth stores it on the container record (`mounts`), planned
 * once at create from -v (Binds), --mount (Mounts), --volumes-from and the anonymous volumes
 * of Config.Volumes (the user's `-v /path` and the image's VOLUME). The first eight fields
 * are Docker's MountPoint as inspect and ps show it; the rest say how to set it up at start.
 *
 * Invariants: destinations are clean absolute paths, unique within one container; a volume
 * mount names an existing volume record of the same tenant (made at create if missing).
 */
export interface MountPoint {
  Type: 'volume' | 'bind' | 'tmpfs';
  /** Volume name; absent for bind and tmpfs. */
  Name?: string;
  /** Host path: the bind source, or the volume's _data directory; '' for tmpfs. */
  Source: string;
  Destination: string;
  Driver?: string;
  /** What the user wrote after the second colon of -v ("ro", "z", "nocopy,ro"); "z" for -v volumes without one, as dockerd. */
  Mode: string;
  RW: boolean;
  Propagation: string;
  /** Copy the image's content at Destination into the volume when the volume is empty (Docker's default; `nocopy` turns it off). */
  CopyData?: boolean;
  /** tmpfs data ("size=64m,mode=1777"), for tmpfs mounts. */
  TmpfsData?: string;
  /** -v host paths that do not exist are made at start, as dockerd does; --mount binds must exist. */
  CreateSource?: boolean;
  /** Bind without recursion (bind-nonrecursive / bind-recursive=disabled). */
  NonRecursive?: boolean;
}

/** Docker's MountPoint in inspect and ps (no Berth-only fields). */
export function mountView(m: MountPoint): Record<string, unknown> {
  return {
    Type: m.Type,
    ...(m.Name !== undefined ? { Name: m.Name } : {}),
    Source: m.Source,
    Destination: m.Destination,
    ...(m.Driver !== undefined ? { Driver: m.Driver } : {}),
    Mode: m.Mode,
    RW: m.RW,
    Propagation: m.Propagation,
  };
}
