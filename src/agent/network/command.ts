import { spawn } from 'node:child_process';

/**
 * Runs one host networking tool (ip, nft, nsenter, unshare) and returns its stdout. A failure
 * carries the tool's stderr, which names the object it choked on; callers wrap it as the
 * cause of a BerthError so it is logged, never shown to tenants.
 */
export function runTool(command: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${command} ${args.join(' ')} failed (exit ${code}): ${stderr.trim()}`));
    });
    if (child.stdin) {
      // A tool that exits before reading its input reports through its exit code, not EPIPE.
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    }
  });
}
