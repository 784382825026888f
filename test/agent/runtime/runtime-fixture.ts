/**
 * Shared fixture for the runtime's integration tests: a busybox rootfs, a temp exec root, spec
 * inputs, and a cleanup that removes every container, monitor, cgroup and file a test made.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { newId } from '../../../src/common/ids.js';
import type { ContainerSpecInput } from '../../../src/agent/runtime/types.js';
import {
  killPids,
  pidsWithCmdlineContaining,
  removeContainerCgroups,
  removeRuncContainers,
  removeTree,
} from '../../support/cleanup.js';

const execFileAsync = promisify(execFile);

export const quietLogger = pino({ level: 'silent' });

export interface Fixture {
  base: string;
  rootfs: string;
  execRoot: string;
  logDir: string;
  ids: Set<string>;
}

/** A rootfs holding /bin/busybox and its applets as symlinks, plus a passwd file. */
export async function makeBusyboxRootfs(dir: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  for (const d of ['etc', 'proc', 'sys', 'dev', 'tmp', 'root']) await mkdir(join(dir, d), { recursive: true });
  await copyFile('/bin/busybox', join(dir, 'bin', 'busybox'));
  const { stdout } = await execFileAsync('/bin/busybox', ['--list']);
  for (const applet of stdout.split('\n')) {
    if (applet === '' || applet === 'busybox') continue;
    await symlink('busybox', join(dir, 'bin', applet));
  }
  await writeFile(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n');
  await writeFile(join(dir, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
}

export async function makeFixture(): Promise<Fixture> {
  const base = await mkdtemp(join(tmpdir(), 'berth-rt-'));
  const rootfs = join(base, 'rootfs');
  await makeBusyboxRootfs(rootfs);
  return { base, rootfs, execRoot: join(base, 'exec'), logDir: join(base, 'logs'), ids: new Set() };
}

export function specInput(fx: Fixture, args: string[], extra: Partial<ContainerSpecInput['process']> = {}): ContainerSpecInput {
  const id = newId();
  fx.ids.add(id);
  return {
    id,
    rootfs: fx.rootfs,
    readonlyRootfs: true,
    hostname: id.slice(0, 12),
    process: { args, env: [], cwd: '/', user: '', tty: false, openStdin: false, init: false, ...extra },
    capAdd: [],
    capDrop: [],
    tmpfs: {},
    binds: [],
    resources: {},
    logPath: join(fx.logDir, id, 'container.log'),
  };
}

/** Removes everything under the fixture, even what a crashed test left behind. */
export async function destroyFixture(fx: Fixture): Promise<void> {
  const runcIds = await removeRuncContainers(join(fx.execRoot, 'runc'));
  await killPids(await pidsWithCmdlineContaining([fx.base]));
  const bundles = await readdir(join(fx.execRoot, 'containers')).catch(() => []);
  await removeContainerCgroups('berth', new Set([...fx.ids, ...runcIds, ...bundles]));
  await removeTree(fx.base);
}

export interface Collected {
  stdout: string;
  stderr: string;
}

/** Reads an object-mode `{stream, data}` stream to its end. */
export async function collect(output: Readable): Promise<Collected> {
  const out: Collected = { stdout: '', stderr: '' };
  for await (const chunk of output as AsyncIterable<{ stream: 'stdout' | 'stderr'; data: Buffer }>) {
    out[chunk.stream] += chunk.data.toString();
  }
  return out;
}

/** Resolves once `predicate` holds for the text read so far from an object-mode stdio stream. */
export function waitForOutput(output: Readable, predicate: (text: string) => boolean, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      output.off('data', onData);
      reject(new Error(`timed out waiting for output; got ${JSON.stringify(text)}`));
    }, timeoutMs);
    const onData = (chunk: { data: Buffer }): void => {
      text += chunk.data.toString();
      if (predicate(text)) {
        clearTimeout(timer);
        output.off('data', onData);
        resolve(text);
      }
    };
    output.on('data', onData);
  });
}
