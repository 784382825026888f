import { posix } from 'node:path';
import { DEFAULT_CAPABILITIES, effectiveCapabilities } from '../../../agent/runtime/capabilities.js';
import type { ComplianceCheck, Violation } from './check.js';

/**
 * How a live container was started, from its HostConfig (Docker's inspect shape): privileges,
 * namespaces and mounts shared with the host, and resource limits. These apply to containers
 * only; an image has no HostConfig.
 */

type HostConfig = Record<string, unknown>;

function hostConfigCheck(check: Omit<ComplianceCheck, 'appliesTo' | 'run'> & { run(hostConfig: HostConfig): Violation[] }): ComplianceCheck {
  return {
    ...check,
    appliesTo: ['container'],
    async run(ctx) {
      return ctx.subject.hostConfig === undefined ? [] : check.run(ctx.subject.hostConfig);
    },
  };
}

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);

export const privileged = hostConfigCheck({
  id: 'BERTH-RUNTIME-PRIVILEGED',
  title: 'The container is privileged',
  severity: 'critical',
  remediation: 'Run without --privileged; add only the capabilities and devices the service needs (--cap-add, --device).',
  run: (hc) => (hc.Privileged === true ? [{ detail: 'HostConfig.Privileged is true: every capability, every device, no seccomp or AppArmor' }] : []),
});

export const addedCapabilities = hostConfigCheck({
  id: 'BERTH-RUNTIME-CAPABILITIES',
  title: "Capabilities beyond Docker's default set",
  severity: 'high',
  remediation: 'Drop the added capabilities (remove --cap-add), or start from --cap-drop ALL and add back only what is needed.',
  run: (hc) => {
    let effective: string[];
    try {
      effective = effectiveCapabilities(strings(hc.CapAdd), strings(hc.CapDrop));
    } catch {
      // A name Linux does not know: list what was asked for as it was written.
      return strings(hc.CapAdd).length > 0 ? [{ detail: `HostConfig.CapAdd: ${strings(hc.CapAdd).join(', ')}` }] : [];
    }
    const extra = effective.filter((c) => !DEFAULT_CAPABILITIES.includes(c));
    return extra.length === 0 ? [] : [{ detail: `capabilities added: ${extra.join(', ')}` }];
  },
});

const HOST_NAMESPACES: [field: string, what: string][] = [
  ['NetworkMode', 'network'],
  ['PidMode', 'pid'],
  ['IpcMode', 'ipc'],
  ['UTSMode', 'uts'],
];

export const hostNamespaces = hostConfigCheck({
  id: 'BERTH-RUNTIME-HOST-NAMESPACE',
  title: "The container shares a namespace with the host",
  severity: 'high',
  remediation: 'Remove --network host, --pid host, --ipc host and --uts host; publish ports (-p) instead of sharing the host network.',
  run: (hc) =>
    HOST_NAMESPACES.filter(([field]) => hc[field] === 'host').map(([field, what]) => ({ detail: `HostConfig.${field} is "host": the host's ${what} namespace` })),
});

/** Host paths whose bind mount hands the container the host (or its container engine). */
const SENSITIVE_EXACT = new Set(['/', '/var/run', '/run', '/var/lib', '/usr', '/lib', '/bin', '/sbin', '/var/lib/docker', '/var/lib/berth']);
const SENSITIVE_TREES = ['/etc', '/proc', '/sys', '/dev', '/boot', '/root'];

function isSensitive(source: string): boolean {
  const path = posix.normalize(source).replace(/\/+$/, '') || '/';
  if (SENSITIVE_EXACT.has(path) || path.endsWith('.sock')) return true;
  return SENSITIVE_TREES.some((tree) => path === tree || path.startsWith(`${tree}/`));
}

/** Host paths bound into the container, from -v (Binds) and --mount type=bind (Mounts). */
function bindSources(hc: HostConfig): { source: string; target: string }[] {
  const out: { source: string; target: string }[] = [];
  for (const bind of strings(hc.Binds)) {
    const [source = '', target = ''] = bind.split(':');
    // A named volume's "source" is a name, not a host path.
    if (source.startsWith('/')) out.push({ source, target });
  }
  for (const mount of Array.isArray(hc.Mounts) ? hc.Mounts : []) {
    if (typeof mount !== 'object' || mount === null) continue;
    const { Type, Source, Target } = mount as { Type?: unknown; Source?: unknown; Target?: unknown };
    if (Type === 'bind' && typeof Source === 'string') out.push({ source: Source, target: typeof Target === 'string' ? Target : '' });
  }
  return out;
}

export const sensitiveMounts = hostConfigCheck({
  id: 'BERTH-RUNTIME-SENSITIVE-MOUNT',
  title: 'A sensitive host path is mounted',
  severity: 'critical',
  remediation: 'Do not bind-mount the Docker/Berth socket, / or system directories (/etc, /proc, /sys, /dev, /boot, /root, /run) into a container; use a volume or a narrowly scoped path.',
  run: (hc) => bindSources(hc).filter((b) => isSensitive(b.source)).map((b) => ({ detail: `host path ${b.source} is mounted at ${b.target}` })),
});

export const hostMounts = hostConfigCheck({
  id: 'BERTH-RUNTIME-HOST-MOUNT',
  title: 'A host path is bind-mounted',
  severity: 'low',
  remediation: 'Prefer named volumes to host paths; mount host paths read-only (:ro) where the container only reads them.',
  run: (hc) => bindSources(hc).filter((b) => !isSensitive(b.source)).map((b) => ({ detail: `host path ${b.source} is mounted at ${b.target}` })),
});

export const noMemoryLimit = hostConfigCheck({
  id: 'BERTH-RUNTIME-NO-MEMORY-LIMIT',
  title: 'No memory limit',
  severity: 'medium',
  remediation: 'Set a memory limit (docker run --memory 512m).',
  run: (hc) => (typeof hc.Memory === 'number' && hc.Memory > 0 ? [] : [{ detail: 'HostConfig.Memory is 0 (unlimited)' }]),
});

export const noPidsLimit = hostConfigCheck({
  id: 'BERTH-RUNTIME-NO-PIDS-LIMIT',
  title: 'No process-count limit',
  severity: 'low',
  remediation: 'Set a pids limit (docker run --pids-limit 200) so a fork bomb stays inside the container.',
  run: (hc) => (typeof hc.PidsLimit === 'number' && hc.PidsLimit > 0 ? [] : [{ detail: `HostConfig.PidsLimit is ${JSON.stringify(hc.PidsLimit ?? null)} (unlimited)` }]),
});

export const writableRootfs = hostConfigCheck({
  id: 'BERTH-RUNTIME-WRITABLE-ROOTFS',
  title: 'The root filesystem is writable',
  severity: 'low',
  remediation: 'Run with --read-only and mount writable volumes or --tmpfs only where the service writes.',
  run: (hc) => (hc.ReadonlyRootfs === true ? [] : [{ detail: 'HostConfig.ReadonlyRootfs is false' }]),
});
