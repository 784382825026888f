/**
 * Starts Debian's docker-registry (distribution 2.8) on 127.0.0.1 with a random port and a
 * private storage directory, as the peer for pull, push and login tests.
 *
 * Auth modes:
 * - 'none': anonymous pull and push.
 * - 'basic': htpasswd (bcrypt via `htpasswd -B`, apache2-utils) with the given users.
 * - 'token': the registry's `auth: token` pointing at a tiny bearer-token issuer this harness
 *   runs on loopback (Node http). It signs RS256 JWTs with a key and self-signed certificate
 *   made by openssl per instance; the registry trusts that certificate (rootcertbundle), and
 *   each token carries it in its `x5c` header. Valid users get every action they ask for;
 *   anonymous requests and bad passwords get 401, as Docker Hub's issuer answers. With
 *   `refreshTokens`, a login (`offline_token=true`) also gets a refresh token, which the
 *   issuer then accepts in OAuth2's `POST /token` (grant_type=refresh_token), as Docker Hub.
 *
 * The registry's access log is kept, so a test can count requests (blobGets()).
 *
 * Lifecycle: startRegistry() → stop(). stop() is idempotent: it kills the registry by pid,
 * closes the token issuer and removes the temp dir; it also runs on SIGTERM/SIGINT/SIGHUP.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createSign, randomUUID, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { removeTree, settlesWithin, sleep, stopOnSignal } from './cleanup.js';
import { OutputTail } from './output-tail.js';

const run = promisify(execFile);

export const REGISTRY_BINARY = '/usr/bin/docker-registry';
const SERVICE = 'berth-test-registry';
const ISSUER = 'berth-test-issuer';
const MAX_LOG_CHARS = 8 * 1024 * 1024;

export interface RegistryOptions {
  auth?: 'none' | 'basic' | 'token';
  /** user → password, for 'basic' and 'token'. */
  users?: Record<string, string>;
  /** Token mode: hand out refresh tokens on login (identity tokens in the docker CLI). */
  refreshTokens?: boolean;
}

export interface RegistryInstance {
  /** `127.0.0.1:<port>`: the registry part of image references. */
  readonly host: string;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** The registry's filesystem storage root. */
  readonly storageDir: string;
  /** The file the registry keeps a blob's bytes in (to tamper with in tests). */
  blobDataPath(digest: string): string;
  /** GET requests for blobs answered 200, from the access log; optionally of one digest. */
  blobGets(digest?: string): number;
  /** Requests the token issuer answered, by status (token mode only). */
  readonly tokenRequests: { status: number; account: string; scope: string; grant: 'basic' | 'refresh_token' | 'anonymous' }[];
  logs(): string;
  stop(): Promise<void>;
}

/** Registries still running, SIGKILLed if the test process exits without stopping them. */
const liveRegistries = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveRegistries) child.kill('SIGKILL');
});

/** A free loopback port (the kernel's pick; a tiny race with other processes remains). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startRegistry(options: RegistryOptions = {}): Promise<RegistryInstance> {
  const auth = options.auth ?? 'none';
  const users = options.users ?? {};
  const baseDir = await mkdtemp(join(tmpdir(), 'registry-'));
  const storageDir = join(baseDir, 'storage');
  await mkdir(storageDir);
  const tokenRequests: RegistryInstance['tokenRequests'] = [];
  let tokenServer: Server | undefined;
  let child: ChildProcess | undefined;
  const log = new OutputTail(MAX_LOG_CHARS);
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    unregister();
    const proc = child;
    if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGTERM');
      if (!(await settlesWithin(exited, 5000))) {
        proc.kill('SIGKILL');
        await exited;
      }
    }
    if (tokenServer !== undefined) {
      tokenServer.closeAllConnections();
      await new Promise<void>((resolve) => tokenServer!.close(() => resolve()));
    }
    await removeTree(baseDir);
  };
  const unregister = stopOnSignal(stop);

  try {
    let authYaml = '';
    if (auth === 'basic') {
      const lines: string[] = [];
      for (const [user, password] of Object.entries(users)) {
        const { stdout } = await run('htpasswd', ['-Bbn', user, password]);
        lines.push(stdout.trim());
      }
      await writeFile(join(baseDir, 'htpasswd'), `${lines.join('\n')}\n`);
      authYaml = `auth:\n  htpasswd:\n    realm: berth-test-realm\n    path: ${join(baseDir, 'htpasswd')}\n`;
    } else if (auth === 'token') {
      const keyFile = join(baseDir, 'token-key.pem');
      const certFile = join(baseDir, 'token-cert.pem');
      await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=berth-test-token-issuer']);
      const issuer = await startTokenIssuer(await readFile(keyFile, 'utf8'), await readFile(certFile, 'utf8'), users, tokenRequests, options.refreshTokens ?? false);
      tokenServer = issuer.server;
      authYaml = `auth:\n  token:\n    realm: ${issuer.url}/token\n    service: ${SERVICE}\n    issuer: ${ISSUER}\n    rootcertbundle: ${certFile}\n`;
    }

    // The port is picked before the registry binds it; retry when someone else took it first.
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const config = [
        'version: 0.1',
        'log:',
        '  level: warn',
        '  accesslog:',
        '    disabled: false',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${storageDir}`,
        '  delete:',
        '    enabled: true',
        'http:',
        `  addr: 127.0.0.1:${port}`,
        authYaml,
      ].join('\n');
      const configFile = join(baseDir, 'config.yml');
      await writeFile(configFile, config);
      const proc = spawn(REGISTRY_BINARY, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      liveRegistries.add(proc);
      proc.once('exit', () => liveRegistries.delete(proc));
      log.follow(proc);
      if (await waitForRegistry(port, proc)) {
        return {
          host: `127.0.0.1:${port}`,
          url: `http://127.0.0.1:${port}`,
          storageDir,
          blobDataPath: (digest) => {
            const hex = digest.replace(/^sha256:/, '');
            return join(storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
          },
          blobGets: (digest) => countBlobGets(log.text(), digest),
          tokenRequests,
          logs: () => log.text(),
          stop,
        };
      }
      if (attempt >= 4) throw new Error(`docker-registry did not start\n${log.text(4000)}`);
      proc.kill('SIGKILL');
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

/** True once GET /v2/ answers (200 or 401); false when the process exits first. */
async function waitForRegistry(port: number, proc: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) return false;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return true;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  return false;
}

function countBlobGets(log: string, digest?: string): number {
  const pattern = /"GET \/v2\/\S+\/blobs\/(sha256:[0-9a-f]{64}) HTTP\/1\.1" 200 /g;
  let count = 0;
  for (const match of log.matchAll(pattern)) if (digest === undefined || match[1] === digest) count++;
  return count;
}

const base64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/**
 * The bearer-token issuer: GET /token?service=…&scope=repository:name:pull,push (Docker's
 * token protocol). Basic credentials must match `users`; the token grants what was asked.
 */
async function startTokenIssuer(
  keyPem: string,
  certPem: string,
  users: Record<string, string>,
  requests: RegistryInstance['tokenRequests'],
  refreshTokens: boolean,
): Promise<{ server: Server; url: string }> {
  const certDer = new X509Certificate(certPem).raw;
  const refreshTokenUsers = new Map<string, string>();
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => issue(req.method ?? 'GET', new URL(req.url ?? '/', 'http://issuer'), req.headers.authorization ?? '', Buffer.concat(chunks).toString('utf8'), res));
  });
  const issue = (method: string, url: URL, authorization: string, body: string, res: import('node:http').ServerResponse): void => {
    // GET carries the request in the query (Basic credentials in the header); POST is OAuth2's form.
    const params = method === 'POST' ? new URLSearchParams(body) : url.searchParams;
    const scopes = method === 'POST' ? (params.get('scope') ?? '').split(' ').filter((s) => s !== '') : params.getAll('scope');
    let grant: 'basic' | 'refresh_token' | 'anonymous' = 'anonymous';
    const answer = (status: number, answerBody: unknown, account = ''): void => {
      requests.push({ status, account, scope: scopes.join(' '), grant });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answerBody));
    };
    const refused = { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: null }] };
    if (url.pathname !== '/token') return answer(404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
    let user = '';
    if (method === 'POST') {
      grant = 'refresh_token';
      user = (params.get('grant_type') === 'refresh_token' && refreshTokenUsers.get(params.get('refresh_token') ?? '')) || '';
      if (user === '') return answer(401, refused);
    } else {
      const match = /^Basic (.+)$/i.exec(authorization);
      const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      user = colon > 0 ? decoded.slice(0, colon) : '';
      const password = colon > 0 ? decoded.slice(colon + 1) : '';
      if (user !== '') grant = 'basic';
      if (user === '' || users[user] === undefined || users[user] !== password) return answer(401, refused, user);
    }
    const access = scopes.flatMap((scope) => {
      const [type, ...rest] = scope.split(':');
      const actions = rest.pop() ?? '';
      return type === 'repository' ? [{ type, name: rest.join(':'), actions: actions.split(',').filter((a) => a !== '') }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const jwtHeader = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = { iss: ISSUER, sub: user, aud: params.get('service') ?? SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access };
    const signingInput = `${base64url(JSON.stringify(jwtHeader))}.${base64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(signingInput).sign(keyPem);
    const token = `${signingInput}.${base64url(signature)}`;
    let refresh: string | undefined;
    if (refreshTokens && method === 'GET' && params.get('offline_token') === 'true') {
      refresh = randomUUID();
      refreshTokenUsers.set(refresh, user);
    }
    answer(200, { token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString(), ...(refresh ? { refresh_token: refresh } : {}) }, user);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

export interface CountingProxy {
  /** `127.0.0.1:<port>`: use it in image references instead of the registry's host. */
  readonly host: string;
  /** Blob GETs the proxy forwarded, optionally of one digest. */
  blobGets(digest?: string): number;
  stop(): Promise<void>;
}

/**
 * A loopback HTTP proxy in front of a registry that counts blob GETs and holds each blob
 * request back for `blobDelayMs` (or a per-digest delay) before forwarding it, so a test can
 * make concurrent pulls overlap, or catch a pull halfway, for certain.
 */
export async function startCountingProxy(registry: RegistryInstance, blobDelayMs: number | ((digest: string) => number)): Promise<CountingProxy> {
  const delayOf = typeof blobDelayMs === 'number' ? () => blobDelayMs : blobDelayMs;
  const gets: string[] = [];
  const target = new URL(registry.url);
  const server = createHttpServer((req, res) => {
    const blob = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '');
    const forward = (): void => {
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host } },
        (up) => {
          // Locations name the registry; keep the client on the proxy.
          const headers = { ...up.headers };
          if (typeof headers.location === 'string') headers.location = headers.location.replace(registry.url, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
          res.writeHead(up.statusCode ?? 502, headers);
          up.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    if (blob && req.method === 'GET') {
      gets.push(blob[1]!);
      const timer = setTimeout(forward, delayOf(blob[1]!));
      res.on('close', () => clearTimeout(timer));
    } else {
      forward();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    unregister();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  const unregister = stopOnSignal(stop);
  return { host: `127.0.0.1:${port}`, blobGets: (digest) => gets.filter((d) => digest === undefined || d === digest).length, stop };
}
