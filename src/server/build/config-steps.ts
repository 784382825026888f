import { invalidArgument } from '../../common/errors.js';
import type { ImageRuntimeConfig } from '../images/types.js';
import { normaliseSignal } from '../containers/signals.js';
import type { Instruction } from './dockerfile.js';
import { expandWord, keyValuePairs, splitWords, type Lookup } from './shell-words.js';

/**
 * The instructions that only change the image config (ENV, LABEL, MAINTAINER, EXPOSE,
 * VOLUME, USER, CMD, ENTRYPOINT, HEALTHCHECK, SHELL, STOPSIGNAL, ONBUILD), as pure
 * functions of the current config: no filesystem, no containers. Each returns the new config
 * and the text dockerd records in the image history (`#(nop) <comment>`).
 */
export interface ConfigStepState {
  config: ImageRuntimeConfig;
  /** Whether this stage set CMD (ENTRYPOINT then keeps it; otherwise it clears the inherited one). */
  cmdSet: boolean;
  author?: string;
}

export interface ConfigStepResult {
  comment: string;
}

export const CONFIG_ONLY = new Set(['ENV', 'LABEL', 'MAINTAINER', 'EXPOSE', 'VOLUME', 'USER', 'CMD', 'ENTRYPOINT', 'HEALTHCHECK', 'SHELL', 'STOPSIGNAL', 'ONBUILD']);

const DEFAULT_SHELL = ['/bin/sh', '-c'];

export const shellOf = (config: ImageRuntimeConfig): string[] => (config.Shell && config.Shell.length > 0 ? config.Shell : DEFAULT_SHELL);

/** The command of RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD: exec form as is, shell form through the shell. */
export function commandOf(instruction: Pick<Instruction, 'json' | 'args'>, config: ImageRuntimeConfig): string[] {
  return instruction.json ?? [...shellOf(config), instruction.args];
}

export function applyConfigStep(instruction: Instruction, state: ConfigStepState, lookup: Lookup, escape: string): ConfigStepResult {
  const config = state.config;
  const word = (text: string): string => expandWord(text, lookup, escape);
  switch (instruction.keyword) {
    case 'ENV': {
      const pairs = keyValuePairs('ENV', instruction.args, lookup, escape);
      let env = config.Env ?? [];
      for (const [key, value] of pairs) env = [...env.filter((e) => e.split('=')[0] !== key), `${key}=${value ?? ''}`];
      config.Env = env;
      return { comment: `ENV ${pairs.map(([k, v]) => `${k}=${v ?? ''}`).join(' ')}` };
    }
    case 'LABEL': {
      const pairs = keyValuePairs('LABEL', instruction.args, lookup, escape);
      config.Labels = { ...(config.Labels ?? {}) };
      for (const [key, value] of pairs) config.Labels[key] = value ?? '';
      return { comment: `LABEL ${pairs.map(([k, v]) => `${k}=${v ?? ''}`).join(' ')}` };
    }
    case 'MAINTAINER':
      state.author = word(instruction.args);
      return { comment: `MAINTAINER ${state.author}` };
    case 'EXPOSE': {
      const ports: string[] = [];
      for (const raw of splitWords(instruction.args, escape).map(word)) {
        const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(raw);
        if (!m) throw invalidArgument(`invalid containerPort: ${raw}`);
        const first = Number(m[1]);
        const last = m[2] !== undefined ? Number(m[2]) : first;
        if (first < 1 || last > 65535 || last < first) throw invalidArgument(`invalid port range: ${raw}`);
        const proto = (m[3] ?? 'tcp').toLowerCase();
        for (let p = first; p <= last; p++) ports.push(`${p}/${proto}`);
      }
      config.ExposedPorts = { ...(config.ExposedPorts ?? {}) };
      for (const port of ports) config.ExposedPorts[port] = {};
      return { comment: `EXPOSE ${ports.join(' ')}` };
    }
    case 'VOLUME': {
      const volumes = (instruction.json ?? splitWords(instruction.args, escape)).map(word);
      if (volumes.some((v) => v.trim() === '')) throw invalidArgument('VOLUME specified can not be an empty string');
      config.Volumes = { ...(config.Volumes ?? {}) };
      for (const volume of volumes) config.Volumes[volume] = {};
      return { comment: `VOLUME [${volumes.join(' ')}]` };
    }
    case 'USER':
      config.User = word(instruction.args);
      return { comment: `USER ${config.User}` };
    case 'CMD':
      config.Cmd = commandOf(instruction, config);
      state.cmdSet = true;
      return { comment: `CMD ${JSON.stringify(config.Cmd)}` };
    case 'ENTRYPOINT': {
      const entrypoint = instruction.json ?? (instruction.args === '' ? [] : [...shellOf(config), instruction.args]);
      config.Entrypoint = entrypoint.length > 0 ? entrypoint : undefined;
      // An inherited CMD makes no sense with a new entrypoint; one set in this stage stays.
      if (!state.cmdSet) delete config.Cmd;
      return { comment: `ENTRYPOINT ${JSON.stringify(entrypoint)}` };
    }
    case 'HEALTHCHECK':
      config.Healthcheck = healthcheck(instruction);
      return { comment: `HEALTHCHECK &{${JSON.stringify(config.Healthcheck.Test)}}` };
    case 'SHELL':
      if (instruction.json === undefined || instruction.json.length === 0) throw invalidArgument('SHELL requires the arguments to be in JSON form');
      config.Shell = instruction.json;
      return { comment: `SHELL ${JSON.stringify(config.Shell)}` };
    case 'STOPSIGNAL': {
      const signal = word(instruction.args);
      normaliseSignal(signal);
      config.StopSignal = signal;
      return { comment: `STOPSIGNAL ${signal}` };
    }
    case 'ONBUILD': {
      const trigger = instruction.args.trim();
      const keyword = (/^\S+/.exec(trigger)?.[0] ?? '').toUpperCase();
      if (keyword === 'ONBUILD') throw invalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (keyword === 'FROM' || keyword === 'MAINTAINER') throw invalidArgument(`${keyword} isn't allowed as an ONBUILD trigger`);
      config.OnBuild = [...(config.OnBuild ?? []), trigger];
      return { comment: `ONBUILD ${trigger}` };
    }
    default:
      throw invalidArgument(`${instruction.keyword} does not only change the image config`);
  }
}

function healthcheck(instruction: Instruction): NonNullable<ImageRuntimeConfig['Healthcheck']> {
  const rest = instruction.args.trim();
  if (/^NONE$/i.test(rest)) {
    if (Object.keys(instruction.flags).length > 0) throw invalidArgument('HEALTHCHECK NONE takes no flags');
    return { Test: ['NONE'] };
  }
  const m = /^CMD(?:\s+([\s\S]*))?$/i.exec(rest);
  if (!m) throw invalidArgument(`Unknown type "${/^\S+/.exec(rest)?.[0] ?? ''}" in HEALTHCHECK (try CMD)`);
  const args = (m[1] ?? '').trim();
  if (args === '') throw invalidArgument('Missing command after HEALTHCHECK CMD');
  let test: string[];
  if (args.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(args);
      if (!Array.isArray(parsed) || !parsed.every((s) => typeof s === 'string')) throw new Error('not strings');
      test = ['CMD', ...(parsed as string[])];
    } catch {
      test = ['CMD-SHELL', args];
    }
  } else {
    test = ['CMD-SHELL', args];
  }
  const out: NonNullable<ImageRuntimeConfig['Healthcheck']> = { Test: test };
  const duration = (name: string): number | undefined => {
    const value = instruction.flags[name];
    if (value === undefined) return undefined;
    const ns = parseDuration(value);
    if (ns === undefined) throw invalidArgument(`time: invalid duration "${value}"`);
    if (ns !== 0 && ns < 1_000_000) throw invalidArgument(`Interval "${name}" cannot be less than 1ms`);
    return ns;
  };
  const interval = duration('interval');
  const timeout = duration('timeout');
  const startPeriod = duration('start-period');
  const startInterval = duration('start-interval');
  if (interval !== undefined) out.Interval = interval;
  if (timeout !== undefined) out.Timeout = timeout;
  if (startPeriod !== undefined) out.StartPeriod = startPeriod;
  if (startInterval !== undefined) (out as Record<string, unknown>).StartInterval = startInterval;
  const retries = instruction.flags.retries;
  if (retries !== undefined) {
    if (!/^\d+$/.test(retries)) throw invalidArgument(`strconv.ParseInt: parsing "${retries}": invalid syntax`);
    if (Number(retries) < 1) throw invalidArgument('--retries must be at least 1');
    out.Retries = Number(retries);
  }
  return out;
}

/** Go's time.ParseDuration, in nanoseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const units: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * units[m[2]!]!;
    consumed = re.lastIndex;
  }
  return consumed === text.length && consumed > 0 ? Math.round(total) : undefined;
}
