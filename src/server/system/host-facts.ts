import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { arch, availableParallelism, hostname, machine, release, totalmem } from 'node:os';
import { promisify } from 'node:util';
import type { HostFacts } from './types.js';

const run = promisify(execFile);

/**
 * Reads the facts `docker info` and `docker version` report about this machine. Versions of
 * runc and tini are read once (they change only with a package upgrade, which restarts Berth
 * anyway); the rest is read on every call because it is cheap and may change (hostname).
 */
export function hostFactsProbe(options: { runc?: string; init?: string } = {}): () => Promise<HostFacts> {
  let tools: Promise<Pick<HostFacts, 'runc' | 'init'>> | undefined;
  return async () => {
    tools ??= probeTools(options.runc ?? 'runc', options.init ?? 'tini');
    const os = readOsRelease();
    const cgroupVersion = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1';
    return {
      hostname: hostname(),
      kernelVersion: release(),
      operatingSystem: os.PRETTY_NAME ?? os.NAME ?? 'Linux',
      osVersion: os.VERSION_ID ?? '',
      machine: machine(),
      goArch: GO_ARCH[arch()] ?? arch(),
      ncpu: availableParallelism(),
      memTotal: totalmem(),
      cgroupVersion,
      // v1 needs the memsw files (swapaccount); v2 always has memory.swap.max when swap is compiled in.
      swapLimit: cgroupVersion === '2' || existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes'),
      ipv4Forwarding: readTrimmed('/proc/sys/net/ipv4/ip_forward') === '1',
      ...(await tools),
    };
  };
}

const GO_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

async function probeTools(runcPath: string, initPath: string): Promise<Pick<HostFacts, 'runc' | 'init'>> {
  const [runcOut, initOut] = await Promise.all([versionOutput(runcPath), versionOutput(initPath)]);
  return {
    runc: runcOut === undefined ? undefined : parseRuncVersion(runcOut),
    init: initOut === undefined ? undefined : { binary: initPath, version: parseTiniVersion(initOut) },
  };
}

async function versionOutput(binary: string): Promise<string | undefined> {
  try {
    const { stdout } = await run(binary, ['--version'], { timeout: 5000 });
    return stdout;
  } catch {
    return undefined;
  }
}

/** `runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\n...` → version and commit. */
export function parseRuncVersion(output: string): { version: string; commit: string } {
  const version = /^runc version (\S+)/m.exec(output)?.[1] ?? 'unknown';
  const commit = /^commit: (\S+)/m.exec(output)?.[1] ?? version;
  return { version, commit };
}

/** `tini version 0.19.0 - git.de40ad0` → `0.19.0 - git.de40ad0`. */
export function parseTiniVersion(output: string): string {
  return /version (.+)$/m.exec(output.trim())?.[1]?.trim() ?? 'unknown';
}

function readOsRelease(): Record<string, string> {
  const text = readTrimmed('/etc/os-release') ?? readTrimmed('/usr/lib/os-release') ?? '';
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  }
  return out;
}

function readTrimmed(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}
