/**
 * Runs the real docker CLI (/usr/local/bin/docker) against a daemon under test. The caller
 * passes the environment from its harness (DOCKER_HOST, a private DOCKER_CONFIG), so no user
 * configuration or context leaks into a test.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';

export const DOCKER_CLI = '/usr/local/bin/docker';

export interface DockerResult {
  /** Exit code; -1 when the CLI was killed by the timeout. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface DockerOptions {
  /** Written to the CLI's stdin, then stdin is closed. Without it stdin is closed at once. */
  input?: string | Buffer | Readable;
  /** Kills the CLI after this long (default 60 s) and resolves with code -1. */
  timeoutMs?: number;
}

export function docker(env: NodeJS.ProcessEnv, args: string[], options: DockerOptions = {}): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(DOCKER_CLI, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 60_000);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // The CLI may exit before reading all its input (e.g. on an error); that is not our failure.
    child.stdin.on('error', () => undefined);
    const { input } = options;
    if (input === undefined) child.stdin.end();
    else if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input);
    else input.pipe(child.stdin);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: timedOut ? -1 : (code ?? (signal ? 128 : -1)),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8') + (timedOut ? `\n[docker-cli: killed after timeout]` : ''),
      });
    });
  });
}

/** Like `docker`, but throws with the CLI's output when it exits non-zero. Returns stdout. */
export async function dockerOk(env: NodeJS.ProcessEnv, args: string[], options: DockerOptions = {}): Promise<string> {
  const result = await docker(env, args, options);
  if (result.code !== 0) {
    throw new Error(`docker ${args.join(' ')} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
  return result.stdout;
}

/** Environment for the docker CLI talking to `dockerHost`, with `configDir` as its private config. */
export function dockerEnv(dockerHost: string, configDir: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: configDir,
    DOCKER_HOST: dockerHost,
    DOCKER_CONFIG: configDir,
    DOCKER_CLI_HINTS: 'false',
    NO_COLOR: '1',
  };
}
