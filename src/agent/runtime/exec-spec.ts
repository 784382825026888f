import { ALL_CAPABILITIES } from './capabilities.js';
import type { Process } from './oci-types.js';
import type { ExecProcessInput } from './types.js';
import type { ResolvedUser } from './user.js';

/**
 * The OCI process of an exec session, derived from the container's own process (config.json)
 * so that an exec runs with the same confinement: capabilities, rlimits, no_new_privs, labels.
 *
 * Rules (Docker's):
 * - env is the container's env with the exec's variables laid over it, key by key;
 * - cwd defaults to the container's working directory;
 * - with a user given, uid/gid/groups come from it and HOME follows its home unless set;
 *   without one, the container's user applies;
 * - privileged adds every capability and lifts no_new_privs.
 */
export function buildExecProcess(base: Process, input: ExecProcessInput, user: ResolvedUser | undefined): Process {
  const env = mergeEnv(base.env, input.env);
  if (user && !input.env.some((e) => e.startsWith('HOME='))) setEnv(env, 'HOME', user.home);
  const process: Process = {
    terminal: input.tty,
    user: user ? { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids } : base.user,
    args: input.args,
    env,
    cwd: input.cwd && input.cwd !== '' ? input.cwd : base.cwd,
    capabilities: base.capabilities,
    rlimits: base.rlimits,
    noNewPrivileges: base.noNewPrivileges,
    apparmorProfile: base.apparmorProfile,
    selinuxLabel: base.selinuxLabel,
    oomScoreAdj: base.oomScoreAdj,
  };
  if (input.tty && input.consoleSize && input.consoleSize.height > 0 && input.consoleSize.width > 0) {
    process.consoleSize = { height: input.consoleSize.height, width: input.consoleSize.width };
  }
  if (input.privileged) {
    const all = [...ALL_CAPABILITIES];
    process.capabilities = { bounding: all, effective: all, permitted: all };
    process.noNewPrivileges = false;
  }
  return stripUndefined(process);
}

/** Overlays KEY=VALUE pairs; a later key replaces an earlier one in place. */
export function mergeEnv(base: string[], extra: string[]): string[] {
  const out = [...base];
  for (const entry of extra) {
    const eq = entry.indexOf('=');
    setEnv(out, eq < 0 ? entry : entry.slice(0, eq), eq < 0 ? undefined : entry.slice(eq + 1));
  }
  return out;
}

function setEnv(env: string[], key: string, value: string | undefined): void {
  const i = env.findIndex((e) => e === key || e.startsWith(`${key}=`));
  const entry = value === undefined ? key : `${key}=${value}`;
  if (i >= 0) env[i] = entry;
  else env.push(entry);
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
