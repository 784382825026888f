import { invalidArgument } from '../../common/errors.js';
import type { ImageRuntimeConfig } from './types.js';

/**
 * `docker import --change` / `docker commit --change`: Dockerfile instructions applied to an
 * image config. Supported as in dockerd: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD,
 * STOPSIGNAL, USER, VOLUME, WORKDIR. Anything else is InvalidArgument with Docker's message.
 */
export function applyChanges(base: ImageRuntimeConfig, changes: readonly string[]): ImageRuntimeConfig {
  const config: ImageRuntimeConfig = structuredClone(base);
  for (const line of changes) {
    const trimmed = line.trim();
    if (trimmed === '') continue;
    const match = /^(\S+)\s*(.*)$/s.exec(trimmed)!;
    const instruction = match[1]!.toUpperCase();
    const args = match[2]!.trim();
    switch (instruction) {
      case 'CMD':
        config.Cmd = commandForm(args);
        break;
      case 'ENTRYPOINT':
        config.Entrypoint = commandForm(args);
        break;
      case 'ENV':
        for (const [key, value] of keyValues(args, 'ENV')) {
          config.Env = [...(config.Env ?? []).filter((e) => e.split('=')[0] !== key), `${key}=${value}`];
        }
        break;
      case 'LABEL':
        for (const [key, value] of keyValues(args, 'LABEL')) config.Labels = { ...(config.Labels ?? {}), [key]: value };
        break;
      case 'EXPOSE':
        for (const port of words(args)) {
          if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(port)) throw invalidArgument(`invalid containerPort: ${port}`);
          config.ExposedPorts = { ...(config.ExposedPorts ?? {}), [port.includes('/') ? port.toLowerCase() : `${port}/tcp`]: {} };
        }
        break;
      case 'VOLUME':
        for (const volume of args.startsWith('[') ? jsonArray(args) : words(args)) {
          config.Volumes = { ...(config.Volumes ?? {}), [volume]: {} };
        }
        break;
      case 'WORKDIR':
        config.WorkingDir = args.startsWith('/') ? args : `${config.WorkingDir ?? '/'}/${args}`.replace(/\/+/g, '/');
        break;
      case 'USER':
        config.User = args;
        break;
      case 'STOPSIGNAL':
        config.StopSignal = args;
        break;
      case 'ONBUILD':
        config.OnBuild = [...(config.OnBuild ?? []), args];
        break;
      default:
        throw invalidArgument(`${instruction.toLowerCase()} is not a valid change command`);
    }
  }
  return config;
}

/** JSON form `["a","b"]`, or shell form run by `/bin/sh -c`. */
function commandForm(args: string): string[] {
  if (args.startsWith('[')) {
    try {
      return jsonArray(args);
    } catch {
      // Not valid JSON: Docker falls back to the shell form.
    }
  }
  return ['/bin/sh', '-c', args];
}

function jsonArray(args: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(args);
  } catch (err) {
    throw invalidArgument(`invalid JSON array: ${args}`, err);
  }
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) throw invalidArgument(`invalid JSON array: ${args}`);
  return parsed;
}

/** Splits on whitespace, honouring double and single quotes and backslash escapes. */
function words(args: string): string[] {
  const out: string[] = [];
  let current = '';
  let quote: string | undefined;
  let inWord = false;
  for (let i = 0; i < args.length; i++) {
    const c = args[i]!;
    if (c === '\\' && i + 1 < args.length && quote !== "'") {
      current += args[++i];
      inWord = true;
    } else if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(current);
      current = '';
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (quote !== undefined) throw invalidArgument(`unmatched quote in: ${args}`);
  if (inWord) out.push(current);
  return out;
}

/** `k=v k2="v 2"`, or the legacy single pair `k v with spaces`. */
function keyValues(args: string, instruction: string): [string, string][] {
  const parts = words(args);
  if (parts.length === 0) throw invalidArgument(`${instruction} requires at least one argument`);
  if (!parts[0]!.includes('=')) {
    const space = args.search(/\s/);
    if (space === -1) throw invalidArgument(`${instruction} names can not be blank`);
    return [[parts[0]!, args.slice(space).trim()]];
  }
  return parts.map((part) => {
    const eq = part.indexOf('=');
    if (eq <= 0) throw invalidArgument(`${instruction} names can not be blank`);
    return [part.slice(0, eq), part.slice(eq + 1)];
  });
}
