import { readFile } from 'node:fs/promises';
import type { Spec } from './oci-types.js';

const RLIMIT_NAMES: Record<string, string> = {
  RLIMIT_NOFILE: 'Max open files',
  RLIMIT_NPROC: 'Max processes',
  RLIMIT_CORE: 'Max core file size',
  RLIMIT_MEMLOCK: 'Max locked memory',
  RLIMIT_STACK: 'Max stack size',
};
const CAP_SYS_RESOURCE = 24n;

/**
 * Without CAP_SYS_RESOURCE (an agent inside a restricted sandbox) runc cannot raise a hard
 * limit above the agent's own, and create fails with "error setting rlimit type 7". Such
 * limits are lowered to the agent's hard limit; with the capability the spec is left alone.
 */
export async function clampRlimits(spec: Spec): Promise<Spec> {
  const rlimits = spec.process.rlimits;
  if (!rlimits || rlimits.length === 0) return spec;
  const status = await readFile('/proc/self/status', 'utf8');
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (capEff !== undefined && (BigInt(`0x${capEff}`) >> CAP_SYS_RESOURCE) & 1n) return spec;
  const limits = await readFile('/proc/self/limits', 'utf8');
  const hardOf = (type: string): number | undefined => {
    const label = RLIMIT_NAMES[type];
    if (label === undefined) return undefined;
    const line = limits.split('\n').find((l) => l.startsWith(label));
    const hard = line?.slice(label.length).trim().split(/\s+/)[1];
    return hard === undefined || hard === 'unlimited' ? undefined : Number(hard);
  };
  spec.process.rlimits = rlimits.map((r) => {
    const ceiling = hardOf(r.type);
    if (ceiling === undefined || r.hard <= ceiling) return r;
    return { type: r.type, hard: ceiling, soft: Math.min(r.soft, ceiling) };
  });
  return spec;
}
