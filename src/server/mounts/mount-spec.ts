import { posix } from 'node:path';
import { lstatSync } from 'node:fs';
import { invalidArgument } from '../../common/errors.js';
import { PROPAGATION_MODES } from '../../agent/mounts/oci-mounts.js';
import type { MountPoint } from './model.js';

/**
 * Parsing and validation of the three ways a user asks for mounts, with dockerd's rules and
 * messages (moby's linux mount parser): `-v` strings (HostConfig.Binds and Config.Volumes),
 * `--mount` objects (HostConfig.Mounts) and `--volumes-from` references. Pure apart from the
 * existence check of --mount bind sources; volumes are created later by the planner.
 */

/** One mount as parsed, before its volume exists: a MountPoint without Source for volumes. */
export interface ParsedMount {
  point: MountPoint;
  /** For volume mounts: create this volume (name absent = anonymous) with these driver settings. */
  volume?: { name?: string; driver?: string; options?: Record<string, string>; labels?: Record<string, string> };
}

const RW_MODES = new Set(['rw', 'ro']);
const LABEL_MODES = new Set(['z', 'Z']);
const COPY_MODES = new Set(['nocopy']);
const CONSISTENCY_MODES = new Set(['consistent', 'cached', 'delegated']);

const invalidSpec = (raw: string): string => `invalid volume specification: '${raw}'`;
const mountConfigError = (type: string, message: string): Error =>
  invalidArgument(`invalid mount config for type "${type}": ${message}`);

/** dockerd's linuxValidMountMode: each kind of mode at most once; '' is valid. */
export function validMountMode(mode: string): boolean {
  if (mode === '') return true;
  const seen = { rw: 0, label: 0, propagation: 0, copy: 0, consistency: 0 };
  for (const part of mode.split(',')) {
    if (RW_MODES.has(part)) seen.rw++;
    else if (LABEL_MODES.has(part)) seen.label++;
    else if (PROPAGATION_MODES.has(part)) seen.propagation++;
    else if (COPY_MODES.has(part)) seen.copy++;
    else if (CONSISTENCY_MODES.has(part)) seen.consistency++;
    else return false;
  }
  return Object.values(seen).every((n) => n <= 1);
}

function checkTarget(type: string, target: string): void {
  if (target === '') throw mountConfigError(type, 'field Target must not be empty');
  if (posix.normalize(target) === '/' ) throw mountConfigError(type, "invalid specification: destination can't be '/'");
  if (!posix.isAbsolute(target)) throw mountConfigError(type, `invalid mount path: '${target}' mount path must be absolute`);
}

const clean = (p: string): string => {
  const normal = posix.normalize(p);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
};

/** A `-v` string: `dest`, `src:dest` or `src:dest:mode`; src is a host path (bind) or a volume name. */
export function parseBind(raw: string): ParsedMount {
  const parts = raw.split(':');
  if (parts[0] === '') throw invalidArgument(invalidSpec(raw));
  let source = '';
  let target: string;
  let mode = '';
  if (parts.length === 1) target = parts[0]!;
  else if (parts.length === 2) {
    if (validMountMode(parts[1]!)) throw invalidArgument(invalidSpec(raw));
    [source, target] = parts as [string, string];
  } else if (parts.length === 3) [source, target, mode] = parts as [string, string, string];
  else throw invalidArgument(invalidSpec(raw));
  if (!validMountMode(mode)) throw invalidArgument(`invalid mode: ${mode}`);
  const modes = mode.split(',');
  const type = posix.isAbsolute(source) ? 'bind' : 'volume';
  const readonly = modes.includes('ro');
  const propagation = modes.find((m) => PROPAGATION_MODES.has(m));
  try {
    checkTarget(type, target);
    if (type === 'volume' && propagation) throw mountConfigError(type, 'field BindOptions must not be specified');
  } catch (err) {
    throw invalidArgument(`${invalidSpec(raw)}: ${(err as Error).message}`);
  }
  if (type === 'bind') {
    return {
      point: {
        Type: 'bind', Source: clean(source), Destination: clean(target), Mode: mode, RW: !readonly,
        Propagation: propagation ?? 'rprivate', CreateSource: true,
      },
    };
  }
  return {
    point: {
      Type: 'volume', Source: '', Destination: clean(target), Driver: 'local', Mode: mode === '' && source !== '' ? 'z' : mode,
      RW: !readonly, Propagation: '', CopyData: !modes.includes('nocopy'),
    },
    volume: source === '' ? {} : { name: source },
  };
}

/** Docker's mount.Mount object (HostConfig.Mounts), as external input. */
interface MountObject {
  Type?: unknown;
  Source?: unknown;
  Target?: unknown;
  ReadOnly?: unknown;
  BindOptions?: { Propagation?: unknown; NonRecursive?: unknown; CreateMountpoint?: unknown } | null;
  VolumeOptions?: { NoCopy?: unknown; Labels?: unknown; DriverConfig?: { Name?: unknown; Options?: unknown } | null; Subpath?: unknown } | null;
  TmpfsOptions?: { SizeBytes?: unknown; Mode?: unknown } | null;
}

/** One `--mount` object. Bind sources must exist (dockerd checks at create). */
export function parseMountObject(raw: unknown): ParsedMount {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidArgument('invalid mount config: an object is required');
  const m = raw as MountObject;
  const type = typeof m.Type === 'string' ? m.Type : '';
  const source = typeof m.Source === 'string' ? m.Source : '';
  const target = typeof m.Target === 'string' ? m.Target : '';
  const readonly = m.ReadOnly === true;
  checkTarget(type, target);
  const has = (v: unknown): boolean => v !== undefined && v !== null;
  switch (type) {
    case 'bind': {
      if (source === '') throw mountConfigError(type, 'field Source must not be empty');
      const propagation = typeof m.BindOptions?.Propagation === 'string' ? m.BindOptions.Propagation : '';
      if (propagation !== '' && !PROPAGATION_MODES.has(propagation)) throw mountConfigError(type, `invalid propagation mode: ${propagation}`);
      if (has(m.VolumeOptions)) throw mountConfigError(type, 'field VolumeOptions must not be specified');
      if (has(m.TmpfsOptions)) throw mountConfigError(type, 'field TmpfsOptions must not be specified');
      if (!posix.isAbsolute(source)) throw mountConfigError(type, `invalid mount path: '${source}' mount path must be absolute`);
      if (!exists(source)) throw mountConfigError(type, `bind source path does not exist: ${source}`);
      return {
        point: {
          Type: 'bind', Source: clean(source), Destination: clean(target), Mode: '', RW: !readonly,
          Propagation: propagation || 'rprivate', ...(m.BindOptions?.NonRecursive === true ? { NonRecursive: true } : {}),
        },
      };
    }
    case 'volume': {
      if (has(m.BindOptions)) throw mountConfigError(type, 'field BindOptions must not be specified');
      if (has(m.TmpfsOptions)) throw mountConfigError(type, 'field TmpfsOptions must not be specified');
      if (readonly && source === '') throw mountConfigError(type, 'must not set ReadOnly mode when using anonymous volumes');
      if (typeof m.VolumeOptions?.Subpath === 'string' && m.VolumeOptions.Subpath !== '') {
        throw mountConfigError(type, 'volume subpaths (volume-subpath) are not supported');
      }
      const driverConfig = m.VolumeOptions?.DriverConfig;
      const driver = typeof driverConfig?.Name === 'string' && driverConfig.Name !== '' ? driverConfig.Name : 'local';
      const options = stringMap(driverConfig?.Options);
      const labels = stringMap(m.VolumeOptions?.Labels);
      return {
        point: {
          // dockerd sets mode "z" on every local volume it mounts from --mount, as for -v name:/path.
          Type: 'volume', Source: '', Destination: clean(target), Driver: driver, Mode: driver === 'local' ? 'z' : '', RW: !readonly, Propagation: '',
          CopyData: m.VolumeOptions?.NoCopy !== true,
        },
        volume: { ...(source !== '' ? { name: source } : {}), driver, options, labels },
      };
    }
    case 'tmpfs': {
      if (source !== '') throw mountConfigError(type, 'field Source must not be specified');
      if (has(m.BindOptions)) throw mountConfigError(type, 'field BindOptions must not be specified');
      if (has(m.VolumeOptions)) throw mountConfigError(type, 'field VolumeOptions must not be specified');
      return {
        point: { Type: 'tmpfs', Source: '', Destination: clean(target), Mode: '', RW: !readonly, Propagation: '', TmpfsData: tmpfsData(m.TmpfsOptions, readonly) },
      };
    }
    case '':
    default:
      throw mountConfigError(type, 'mount type unknown');
  }
}

/** dockerd's ConvertTmpfsOptions: ro, mode in octal, size with the largest exact unit. */
function tmpfsData(options: MountObject['TmpfsOptions'], readonly: boolean): string {
  const data: string[] = [];
  if (readonly) data.push('ro');
  const mode = typeof options?.Mode === 'number' ? options.Mode : 0;
  if (mode !== 0) data.push(`mode=${mode.toString(8)}`);
  const size = typeof options?.SizeBytes === 'number' ? options.SizeBytes : 0;
  if (size < 0) throw mountConfigError('tmpfs', 'invalid tmpfs size: must not be negative');
  if (size !== 0) {
    const units: [number, string][] = [[1024 ** 3, 'g'], [1024 ** 2, 'm'], [1024, 'k']];
    const unit = units.find(([n]) => size % n === 0);
    data.push(unit ? `size=${size / unit[0]}${unit[1]}` : `size=${size}`);
  }
  return data.join(',');
}

/** `--volumes-from container[:ro|rw]`. */
export function parseVolumesFrom(spec: string): { container: string; mode: 'ro' | 'rw' } {
  if (spec === '') throw invalidArgument('volumes-from specification cannot be an empty string');
  const colon = spec.indexOf(':');
  if (colon === -1) return { container: spec, mode: 'rw' };
  const mode = spec.slice(colon + 1);
  const parts = mode.split(',');
  if (!validMountMode(mode) || parts.some((p) => PROPAGATION_MODES.has(p) || COPY_MODES.has(p))) throw invalidArgument(`invalid mode: ${mode}`);
  return { container: spec.slice(0, colon), mode: parts.includes('ro') ? 'ro' : 'rw' };
}

function stringMap(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
