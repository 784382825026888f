/**
 * Real etcd (Debian's etcd-server 3.4, /usr/bin/etcd) for tests: one member or a cluster, on
 * random loopback ports, with data in a fresh temp dir. Members are killed by the pid this
 * harness started, never by name, and the temp dir is removed by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, closeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollFor } from './cleanup.js';

const ETCD = '/usr/bin/etcd';

/** Members still running; killed by pid if the test process exits without stopping them. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  logFile: string;
  process?: ChildProcess;
}

export class EtcdCluster {
  private constructor(
    private readonly root: string,
    private readonly members: Member[],
    private readonly token: string,
  ) {}

  /** Starts `size` members and waits until the cluster has a leader and answers. */
  static async start(size = 1): Promise<EtcdCluster> {
    const root = await mkdtemp(join(tmpdir(), 'berth-etcd-'));
    const members: Member[] = [];
    const ports = await freePorts(2 * size);
    for (let i = 0; i < size; i++) {
      members.push({
        name: `m${i}`,
        clientPort: ports[2 * i]!,
        peerPort: ports[2 * i + 1]!,
        dataDir: join(root, `m${i}`),
        logFile: join(root, `m${i}.log`),
      });
    }
    const cluster = new EtcdCluster(root, members, `berth-test-${randomBytes(6).toString('hex')}`);
    try {
      for (let i = 0; i < size; i++) cluster.launch(i);
      await cluster.waitHealthy();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** host:port of every member's client URL, as the Store and `etcd://` take them. */
  endpoints(): string[] {
    return this.members.map((m) => `127.0.0.1:${m.clientPort}`);
  }

  /** `etcd://host:port,host:port`, the form `berth up --store` and `berth store migrate` take. */
  url(): string {
    return `etcd://${this.endpoints().join(',')}`;
  }

  /** SIGKILLs member `index` (by the pid this harness started) and waits for it to be gone. */
  async kill(index: number): Promise<void> {
    const member = this.members[index]!;
    const child = member.process;
    member.process = undefined;
    if (child) running.delete(child);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts a killed member again on its own data dir and waits for the cluster to be healthy. */
  async restart(index: number): Promise<void> {
    this.launch(index);
    await this.waitHealthy([index]);
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.members.length; i++) await this.kill(i);
    await rm(this.root, { recursive: true, force: true });
  }

  private launch(index: number): void {
    const member = this.members[index]!;
    const peers = this.members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    const log = openSync(member.logFile, 'a');
    try {
      member.process = spawn(
        ETCD,
        [
          '--name', member.name,
          '--data-dir', member.dataDir,
          '--listen-client-urls', `http://127.0.0.1:${member.clientPort}`,
          '--advertise-client-urls', `http://127.0.0.1:${member.clientPort}`,
          '--listen-peer-urls', `http://127.0.0.1:${member.peerPort}`,
          '--initial-advertise-peer-urls', `http://127.0.0.1:${member.peerPort}`,
          '--initial-cluster', peers,
          '--initial-cluster-token', this.token,
          '--initial-cluster-state', 'new',
        ],
        { stdio: ['ignore', log, log] },
      );
      running.add(member.process);
    } finally {
      closeSync(log);
    }
  }

  /** Waits until each of `indexes` (default: every member) reports itself healthy, i.e. the cluster has a leader. */
  private async waitHealthy(indexes = this.members.map((_, i) => i)): Promise<void> {
    for (const i of indexes) {
      const member = this.members[i]!;
      await pollFor(
        `etcd member ${member.name} to be healthy (log: ${member.logFile})`,
        async () => {
          if (member.process?.exitCode !== null && member.process?.exitCode !== undefined) {
            throw new Error(`etcd member ${member.name} exited with ${member.process.exitCode}; see ${member.logFile}`);
          }
          try {
            const response = await fetch(`http://127.0.0.1:${member.clientPort}/health`);
            const body = (await response.json()) as { health?: string };
            return body.health === 'true' ? true : undefined;
          } catch {
            return undefined;
          }
        },
        30_000,
      );
    }
  }
}

/** `count` distinct loopback ports the kernel just handed out (all held open until every one is chosen). */
async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(async (server) => {
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const address = server.address();
        if (address === null || typeof address === 'string') throw new Error('no port');
        return address.port;
      }),
    );
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}
