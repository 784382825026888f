/**
 * "The outside world" for network tests: a network namespace the test creates, joined to the
 * host by a veth pair on a random link-local /30 (169.254.x.0/30, never .169), with a TCP
 * server inside that answers every connection with a fixed line. Containers that have a way
 * out reach it through the host's routing (and Berth's masquerade); nothing leaves the
 * machine. close() kills the server (by pid) and removes the veth and the namespace.
 */
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sleep } from './cleanup.js';

const run = promisify(execFile);

export interface OutsideWorld {
  /** Address of the server inside the namespace. */
  ip: string;
  port: number;
  /** What the server writes to every connection. */
  greeting: string;
  close(): Promise<void>;
}

export async function startOutsideWorld(): Promise<OutsideWorld> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-outside-'));
  const nsFile = join(dir, 'ns');
  await writeFile(nsFile, '');
  await run('unshare', [`--net=${nsFile}`, 'ip', 'link', 'set', 'lo', 'up']);
  let octet = 100 + Math.floor(Math.random() * 100);
  if (octet === 169) octet = 170;
  const block = Math.floor(Math.random() * 64) * 4;
  const hostIp = `169.254.${octet}.${block + 1}`;
  const nsIp = `169.254.${octet}.${block + 2}`;
  const hostVeth = `vt${randomBytes(5).toString('hex')}`;
  const nsVeth = `vu${randomBytes(5).toString('hex')}`;
  const greeting = `outside-${randomBytes(4).toString('hex')}`;
  const port = 20000 + Math.floor(Math.random() * 20000);
  let server: ReturnType<typeof spawn> | undefined;
  const close = async (): Promise<void> => {
    if (server?.pid) {
      try {
        process.kill(server.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await run('ip', ['link', 'del', hostVeth]).catch(() => undefined);
    await run('umount', ['-l', nsFile]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await run('ip', ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', nsVeth]);
    await run('ip', ['addr', 'add', `${hostIp}/30`, 'dev', hostVeth]);
    await run('ip', ['link', 'set', hostVeth, 'up']);
    await run('nsenter', [`--net=${nsFile}`, 'true']);
    // `ip link set … netns` takes a pid: the peer moves in through a process living in the namespace.
    const holder = spawn('nsenter', [`--net=${nsFile}`, 'sleep', '30'], { stdio: 'ignore' });
    await sleep(100);
    await run('ip', ['link', 'set', nsVeth, 'netns', String(holder.pid)]);
    holder.kill('SIGKILL');
    await run('nsenter', [`--net=${nsFile}`, 'sh', '-c', `ip addr add ${nsIp}/30 dev ${nsVeth} && ip link set ${nsVeth} up`]);
    const script = `require('net').createServer((s)=>{s.end(${JSON.stringify(`${greeting}\n`)})}).listen(${port}, ${JSON.stringify(nsIp)}, ()=>console.log('ready'))`;
    server = spawn('nsenter', [`--net=${nsFile}`, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('outside server did not start')), 10_000);
      server!.stdout!.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  } catch (err) {
    await close();
    throw err;
  }
  return { ip: nsIp, port, greeting, close };
}
