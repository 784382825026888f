/**
 * A Berth with a TLS listener, and its tenants as the docker CLI sees them: the operator
 * creates each with the real berth CLI, and the tenant's environment points the docker CLI
 * at tcp://127.0.0.1:PORT with the cert folder the berth CLI wrote.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth, type BerthInstance, type BerthOptions } from './berth-harness.js';
import type { DockerResult } from './docker-cli.js';
import { berthCliFor } from './berth-cli.js';

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface TenantBerth {
  berth: BerthInstance;
  /** A scratch directory for cert folders and docker configs, removed by stop(). */
  work: string;
  port: number;
  /** The berth CLI against this Berth's local socket; never throws. */
  berthCli(args: string[]): Promise<DockerResult>;
  /** The berth CLI, asserting success; its stdout. */
  berthOk(args: string[]): Promise<string>;
  /** One raw Docker API request over mutual TLS with a tenant's cert folder (what the CLI would refuse to send). */
  request(certDir: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }>;
  /** `berth tenant create NAME` (+ extra args) and the docker CLI environment for it. */
  createTenant(name: string, extraArgs?: string[]): Promise<NodeJS.ProcessEnv>;
  /** The docker CLI environment for a cert folder, with optional HttpHeaders in its config.json. */
  tenantEnv(certDir: string, headers?: Record<string, string>): Promise<NodeJS.ProcessEnv>;
  stop(): Promise<void>;
}

export async function startTenantBerth(options: BerthOptions = {}): Promise<TenantBerth> {
  const work = await mkdtemp(join(tmpdir(), 'berth-tenancy-'));
  const port = await freePort();
  const berth = await startBerth({ ...options, extraArgs: [...(options.extraArgs ?? []), '-H', `tcp://127.0.0.1:${port}`] });

  const { berthCli, berthOk } = berthCliFor(() => berth.dockerHost, work);
  const tenantEnv = async (certDir: string, headers?: Record<string, string>): Promise<NodeJS.ProcessEnv> => {
    const configDir = await mkdtemp(join(work, 'docker-config-'));
    if (headers) await writeFile(join(configDir, 'config.json'), JSON.stringify({ HttpHeaders: headers }));
    return {
      PATH: process.env.PATH,
      HOME: work,
      DOCKER_HOST: `tcp://127.0.0.1:${port}`,
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certDir,
      DOCKER_CONFIG: configDir,
    };
  };
  const request = async (certDir: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> => {
    const [ca, cert, key] = await Promise.all(['ca.pem', 'cert.pem', 'key.pem'].map((f) => readFile(join(certDir, f), 'utf8')));
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port,
          servername: 'localhost',
          method,
          path,
          ca,
          cert,
          key,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  };
  return {
    berth,
    work,
    port,
    request,
    berthCli,
    berthOk,
    tenantEnv,
    createTenant: async (name, extraArgs = []) => {
      const certDir = join(work, `${name}-certs`);
      await berthOk(['tenant', 'create', name, '--cert-dir', certDir, ...extraArgs]);
      return tenantEnv(certDir);
    },
    stop: async () => {
      await berth.stop();
      await rm(work, { recursive: true, force: true });
    },
  };
}
