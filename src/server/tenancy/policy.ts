import { forbidden, invalidArgument } from '../../common/errors.js';
import { DEFAULT_CAPABILITIES, normalizeCapability } from '../../agent/runtime/capabilities.js';
import type { Strategy } from '../scheduler/types.js';

/**
 * What a tenant may ask of the Docker API beyond an ordinary container, and the limits a
 * container gets when the tenant names none.
 *
 * Every escape hatch Docker offers is refused for tenants, with Docker's error shape (403) and
 * a message that names the option and says why. The operator loosens this per tenant by
 * allowing rules by id (`berth tenant policy NAME --allow bind-mounts`); the operator's own
 * scope (the local socket) is not restricted here.
 *
 * The checks read the request as the client sent it (Docker's HostConfig field names), so
 * they hold whatever the engine later supports.
 */

export const POLICY_RULES = {
  privileged: 'it gives the container every capability and the host\'s devices',
  'host-namespaces': 'it shares a namespace of the host with the container',
  'bind-mounts': 'it exposes the host\'s files to the container; use named volumes',
  devices: 'it gives the container raw access to host devices',
  'security-options': 'it weakens the seccomp, AppArmor or no-new-privileges confinement every container gets',
  sysctls: 'it changes a kernel setting that is not confined to the container\'s namespaces',
  'cgroup-parent': 'it places the container outside the cgroups Berth manages for the tenant',
  'oom-score': 'a negative OOM score makes the kernel kill other tenants\' processes first',
  runtime: 'only Berth\'s hardened runc runtime is offered',
  'host-registries': 'it makes Berth send requests to addresses on the host or its private networks (loopback, link-local, private ranges)',
} as const;

export type PolicyRule = keyof typeof POLICY_RULES;

export interface TenantPolicy {
  /** Rule ids the operator loosened, and extra capabilities as "cap:NET_ADMIN". */
  allow: string[];
  /** Memory limit (bytes) for a container that names none. */
  defaultMemory: number;
  /** Pids limit for a container that names none. */
  defaultPidsLimit: number;
  /**
   * How the cluster's scheduler chooses hosts for this tenant's containers (`berth server`
   * only); absent: the server's `--placement-strategy`.
   */
  placementStrategy?: Strategy;
}

export const DEFAULT_POLICY: TenantPolicy = {
  allow: [],
  defaultMemory: 1024 * 1024 * 1024,
  defaultPidsLimit: 1024,
};

/**
 * Sysctls Docker calls namespaced and safe, plus net.*: inside a network namespace the kernel
 * shows only the per-namespace ones.
 */
const SAFE_SYSCTLS = new Set(['kernel.shm_rmid_forced', 'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni']);

function safeSysctl(key: string): boolean {
  return SAFE_SYSCTLS.has(key) || key.startsWith('fs.mqueue.') || key.startsWith('net.');
}

export function validatePolicyAllow(entries: string[]): void {
  for (const entry of entries) {
    if (entry.startsWith('cap:')) {
      normalizeCapability(entry.slice(4));
      continue;
    }
    if (!(entry in POLICY_RULES)) {
      throw invalidArgument(`unknown policy rule "${entry}": use one of ${Object.keys(POLICY_RULES).join(', ')} or cap:NAME`);
    }
  }
}

type Json = Record<string, unknown>;

const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const asString = (v: unknown): string => (typeof v === 'string' ? v : '');

class Checker {
  constructor(private readonly policy: TenantPolicy) {}

  refuse(rule: PolicyRule, option: string): never {
    throw forbidden(`${option} is not allowed for tenants: ${POLICY_RULES[rule]} (the operator can allow "${rule}" for this tenant)`);
  }

  allows(rule: string): boolean {
    return this.policy.allow.includes(rule);
  }

  check(rule: PolicyRule, violated: boolean, option: string): void {
    if (violated && !this.allows(rule)) this.refuse(rule, option);
  }
}

/**
 * Refuses what the tenant's policy does not allow in a container create request, then fills
 * in the tenant's default memory and pids limits. Returns the HostConfig to create with.
 */
export function enforceCreatePolicy(policy: TenantPolicy, rawHostConfig: unknown): Json {
  const hc: Json = rawHostConfig !== null && typeof rawHostConfig === 'object' ? { ...(rawHostConfig as Json) } : {};
  const c = new Checker(policy);

  c.check('privileged', hc.Privileged === true, '--privileged');

  for (const [field, flag] of [
    ['NetworkMode', '--network'],
    ['PidMode', '--pid'],
    ['IpcMode', '--ipc'],
    ['UTSMode', '--uts'],
    ['UsernsMode', '--userns'],
    ['CgroupnsMode', '--cgroupns'],
  ] as const) {
    c.check('host-namespaces', asString(hc[field]) === 'host', `${flag} host`);
  }

  for (const bind of asArray(hc.Binds)) {
    const source = asString(bind).split(':')[0] ?? '';
    c.check('bind-mounts', source.startsWith('/'), `the bind mount -v ${asString(bind)}`);
  }
  for (const mount of asArray(hc.Mounts)) {
    const m = (mount ?? {}) as Json;
    c.check('bind-mounts', asString(m.Type) === 'bind', `the bind mount --mount type=bind,source=${asString(m.Source)}`);
    const driverConfig = ((m.VolumeOptions ?? {}) as Json).DriverConfig;
    c.check('bind-mounts', bindsHostPath(((driverConfig ?? {}) as Json).Options), `the volume option device= of --mount source=${asString(m.Source)}`);
  }

  c.check('devices', asArray(hc.Devices).length > 0, '--device');
  c.check('devices', asArray(hc.DeviceRequests).length > 0, '--gpus');
  c.check('devices', asArray(hc.DeviceCgroupRules).length > 0, '--device-cgroup-rule');

  for (const opt of asArray(hc.SecurityOpt).map(asString)) {
    const weakens =
      /^seccomp[=:]/.test(opt) ||
      /^apparmor[=:]unconfined$/.test(opt) ||
      /^label[=:]disable$/.test(opt) ||
      /^no-new-privileges[=:]false$/.test(opt) ||
      /^systempaths[=:]unconfined$/.test(opt);
    c.check('security-options', weakens, `--security-opt ${opt}`);
  }

  // The CLI turns systempaths=unconfined into explicit (empty) path lists.
  c.check('security-options', Array.isArray(hc.MaskedPaths) || Array.isArray(hc.ReadonlyPaths), '--security-opt systempaths=unconfined');

  const sysctls = hc.Sysctls !== null && typeof hc.Sysctls === 'object' ? Object.keys(hc.Sysctls as Json) : [];
  for (const key of sysctls) c.check('sysctls', !safeSysctl(key), `--sysctl ${key}`);

  c.check('cgroup-parent', asString(hc.CgroupParent) !== '', `--cgroup-parent ${asString(hc.CgroupParent)}`);
  c.check('oom-score', typeof hc.OomScoreAdj === 'number' && hc.OomScoreAdj < 0, `--oom-score-adj ${String(hc.OomScoreAdj)}`);
  const runtime = asString(hc.Runtime);
  c.check('runtime', runtime !== '' && runtime !== 'runc', `--runtime ${runtime}`);

  const defaults = new Set(DEFAULT_CAPABILITIES);
  for (const raw of asArray(hc.CapAdd).map(asString)) {
    if (raw.toUpperCase() === 'ALL' || raw.toUpperCase() === 'CAP_ALL') {
      if (!c.allows('privileged')) c.refuse('privileged', '--cap-add ALL');
      continue;
    }
    const cap = normalizeCapability(raw);
    if (!defaults.has(cap) && !c.allows(`cap:${cap.replace(/^CAP_/, '')}`) && !c.allows(`cap:${cap}`)) {
      throw forbidden(
        `--cap-add ${raw} is not allowed for tenants: only Docker's default capabilities are offered (the operator can allow "cap:${cap.replace(/^CAP_/, '')}" for this tenant)`,
      );
    }
  }

  // Only "no limit" takes the default; a value of the wrong type is left for the engine's
  // shape check to refuse, not quietly replaced.
  const unlimited = (v: unknown): boolean => v === undefined || v === null || (typeof v === 'number' && v <= 0);
  if (unlimited(hc.Memory)) hc.Memory = policy.defaultMemory;
  if (unlimited(hc.PidsLimit)) hc.PidsLimit = policy.defaultPidsLimit;
  return hc;
}

/** Pull, push and login name a registry Berth will dial: not one on the host's own networks. */
export function enforceRegistryPolicy(policy: TenantPolicy, hostNetworkRegistry: boolean, registry: string): void {
  new Checker(policy).check('host-registries', hostNetworkRegistry, `the registry ${registry}`);
}

/**
 * A local volume with a `device` (other than a tmpfs) binds a host path into the volume
 * (`--opt o=bind --opt device=/srv`): for a tenant that is a bind mount by another name.
 */
export function enforceVolumeCreatePolicy(policy: TenantPolicy, body: unknown): void {
  const opts = body !== null && typeof body === 'object' ? (body as Json).DriverOpts : undefined;
  new Checker(policy).check('bind-mounts', bindsHostPath(opts), 'the volume option device=');
}

function bindsHostPath(options: unknown): boolean {
  if (options === null || typeof options !== 'object') return false;
  const o = options as Json;
  return o.device !== undefined && asString(o.type) !== 'tmpfs';
}

/** `docker update` may change limits but not lift them: unlimited means the tenant default. */
export function enforceUpdatePolicy(policy: TenantPolicy, body: Json): Json {
  const out = { ...body };
  if (typeof out.Memory === 'number' && out.Memory < 0) out.Memory = policy.defaultMemory;
  if (typeof out.PidsLimit === 'number' && out.PidsLimit <= 0) out.PidsLimit = policy.defaultPidsLimit;
  return out;
}

export function enforceExecPolicy(policy: TenantPolicy, body: unknown): void {
  const privileged = body !== null && typeof body === 'object' && (body as Json).Privileged === true;
  new Checker(policy).check('privileged', privileged, 'docker exec --privileged');
}
