import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTool } from '../network/command.js';
import type { IdRange } from './id-range.js';

/**
 * The berth-userns helper (native/berth-userns.c, built by scripts/install.sh into
 * native/bin/): the namespace syscalls Node cannot make. Its path can be overridden with
 * BERTH_USERNS_HELPER.
 */
export function helperPath(): string {
  const fromEnv = process.env.BERTH_USERNS_HELPER;
  if (fromEnv) return fromEnv;
  // dist/src/agent/userns/helper.js → <repo>/native/bin/berth-userns
  const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
  return join(repo, 'native', 'bin', 'berth-userns');
}

export function helperAvailable(): boolean {
  return existsSync(helperPath());
}

/**
 * Mounts an overlay whose lower dirs (names relative to `layerRoot`) are seen shifted into
 * `range`; upper and work dirs are absolute paths the caller owns, stored with host ids.
 */
export async function mountShiftedOverlay(range: IdRange, layerRoot: string, target: string, options: string): Promise<void> {
  await runTool(helperPath(), ['overlay', String(range.base), String(range.count), layerRoot, target, options]);
}

/** The helper's arguments that run `command` as root of a user namespace of `range`. */
export function userRangeCommand(range: IdRange, command: string, args: string[]): string[] {
  return ['run', String(range.base), String(range.count), command, ...args];
}
