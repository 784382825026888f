import path from 'node:path';
import type { Mount } from '../runtime/oci-types.js';

/**
 * A volume or bind mount ready for the OCI spec: its source is a host path that exists.
 * (tmpfs mounts go through the spec's tmpfs map, which applies Docker's tmpfs defaults.)
 */
export interface PreparedMount {
  source: string;
  destination: string;
  readonly: boolean;
  /** rprivate unless the user asked for another (shared, slave, ...). */
  propagation: string;
  /** bind instead of rbind: submounts of the source are not carried along. */
  nonRecursive?: boolean;
}

export const PROPAGATION_MODES = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']);

/**
 * The OCI mount of a volume or bind. `nosuid` and `nodev` always: a tenant's volume or a host
 * directory must not become a way to run set-id programs or open device nodes (Docker leaves
 * them off; see docs/divergences.md). A read-only mount is made read-only recursively (`rro`)
 * when recursive, so a submount of the source cannot be written through it either.
 */
export function ociBindMount(m: PreparedMount, recursiveReadonly: boolean): Mount {
  const options = [m.nonRecursive ? 'bind' : 'rbind'];
  if (m.readonly) options.push(recursiveReadonly && !m.nonRecursive ? 'rro' : 'ro');
  else options.push('rw');
  options.push('nosuid', 'nodev', PROPAGATION_MODES.has(m.propagation) ? m.propagation : 'rprivate');
  return { destination: path.posix.normalize(m.destination), type: 'bind', source: m.source, options };
}
