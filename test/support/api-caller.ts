/**
 * Raw Docker API requests as one caller: a tenant over mutual TLS (its cert folder) or the
 * operator over the local socket. Any method, body and content type, and a timeout that
 * answers instead of hanging, so a test can send every endpoint exactly as a client could,
 * streaming ones included.
 */
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface ApiAnswer {
  /** HTTP status; 0 when the request timed out (the body then says so). */
  status: number;
  body: string;
}

export interface CallOptions {
  /** A Buffer is sent as is (with contentType); anything else as JSON. */
  body?: unknown;
  contentType?: string;
  /** Gives up after this long and answers status 0 (default 5 s). */
  timeoutMs?: number;
}

export interface ApiCaller {
  readonly who: string;
  call(method: string, path: string, options?: CallOptions): Promise<ApiAnswer>;
}

/** A tenant's caller: TLS to 127.0.0.1:port with the cert folder the berth CLI wrote. */
export async function tenantCaller(who: string, port: number, certDir: string): Promise<ApiCaller> {
  const [ca, cert, key] = await Promise.all(['ca.pem', 'cert.pem', 'key.pem'].map((f) => readFile(join(certDir, f), 'utf8')));
  return {
    who,
    call: (method, path, options) =>
      send((o, cb) => httpsRequest({ ...o, host: '127.0.0.1', port, servername: 'localhost', ca, cert, key }, cb), method, path, options),
  };
}

/** The operator's caller: plain HTTP on the local unix socket. */
export function socketCaller(who: string, socketPath: string): ApiCaller {
  return { who, call: (method, path, options) => send((o, cb) => httpRequest({ ...o, socketPath }, cb), method, path, options) };
}

type Requester = (options: RequestOptions, onResponse: (res: import('node:http').IncomingMessage) => void) => import('node:http').ClientRequest;

function send(requester: Requester, method: string, path: string, options: CallOptions = {}): Promise<ApiAnswer> {
  const { body } = options;
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  const contentType = options.contentType ?? (Buffer.isBuffer(body) ? 'application/x-tar' : 'application/json');
  return new Promise((resolve, reject) => {
    let settled = false;
    const chunks: Buffer[] = [];
    let status = 0;
    const finish = (answer: ApiAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(answer);
    };
    const req = requester(
      { method, path, headers: payload ? { 'content-type': contentType, 'content-length': payload.length } : {} },
      (res) => {
        status = res.statusCode ?? 0;
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => finish({ status, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', () => finish({ status, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    const timer = setTimeout(
      () => finish({ status: 0, body: `timed out after ${options.timeoutMs ?? 5000} ms (status ${status}, ${Buffer.concat(chunks).length} bytes so far)` }),
      options.timeoutMs ?? 5000,
    );
    req.on('error', (err) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
    req.end(payload);
  });
}
