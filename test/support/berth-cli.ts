import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BERTH_ENTRY } from './berth-harness.js';
import type { DockerResult } from './docker-cli.js';

const execFileAsync = promisify(execFile);

export interface BerthCli {
  /** Runs `berth <args> -H <address>`; a non-zero exit is a result to look at, not a throw. */
  berthCli(args: string[]): Promise<DockerResult>;
  /** The same, asserting success; resolves to stdout. */
  berthOk(args: string[]): Promise<string>;
}

/** The operator's berth CLI against the admin socket `address()` names at each call. */
export function berthCliFor(address: () => string, cwd: string): BerthCli {
  const berthCli = async (args: string[]): Promise<DockerResult> => {
    try {
      const { stdout, stderr } = await execFileAsync(process.execPath, [BERTH_ENTRY, ...args, '-H', address()], { cwd });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
  const berthOk = async (args: string[]): Promise<string> => {
    const result = await berthCli(args);
    assert.equal(result.code, 0, `berth ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  return { berthCli, berthOk };
}
