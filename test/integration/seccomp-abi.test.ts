/**
 * Which syscall ABIs a container may use, through the docker CLI: by default only the native
 * 64-bit one (a 32-bit binary dies of SIGSYS at its first `int 0x80`); an operator who starts
 * Berth with --allow-32bit-syscalls admits the 32-bit ABI under the same allowlist.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { docker, dockerOk } from '../support/docker-cli.js';
import { i386ExitElf } from '../support/i386-elf.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

const SIGSYS_EXIT = 128 + 31;

/** Copies the i386 program in through stdin, runs it, and prints its exit status. */
async function run32BitExit(berth: BerthInstance): Promise<string> {
  const result = await docker(
    berth.env,
    ['run', '-i', '--rm', BUSYBOX_IMAGE, 'sh', '-c', 'cat > /tmp/exit32 && chmod +x /tmp/exit32 && /tmp/exit32; echo "status=$?"'],
    { input: i386ExitElf(42), timeoutMs: 30_000 },
  );
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trim();
}

describe('seccomp syscall ABIs', () => {
  const started: BerthInstance[] = [];
  after(async () => {
    for (const berth of started) await berth.stop();
  });

  test('a 32-bit binary is killed by default and runs when the operator allows the 32-bit ABI', async () => {
    const strict = await startBerth();
    started.push(strict);
    await dockerOk(strict.env, ['load', '-i', await busyboxImageTar()]);
    assert.equal(await run32BitExit(strict), `status=${SIGSYS_EXIT}`);
    // The native ABI is untouched by the restriction.
    assert.equal((await docker(strict.env, ['run', '--rm', BUSYBOX_IMAGE, 'sh', '-c', 'exit 7'])).code, 7);

    const loose = await startBerth({ extraArgs: ['--allow-32bit-syscalls'] });
    started.push(loose);
    await dockerOk(loose.env, ['load', '-i', await busyboxImageTar()]);
    assert.equal(await run32BitExit(loose), 'status=42');
  });
});
