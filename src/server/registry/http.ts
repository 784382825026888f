import { request as httpRequest, Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import { unavailable } from '../../common/errors.js';

/**
 * The one place Berth speaks HTTP to registries and token issuers: node's http/https with
 * keep-alive agents, streaming request and response bodies. Redirects (registries send blob
 * GETs to storage) are followed here, without the Authorization header when the host changes.
 */
export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  /** The URL that finally answered (after redirects). */
  url: string;
}

export interface HttpRequestInit {
  method: string;
  headers?: Record<string, string>;
  /** A Buffer, or a stream (sent chunked unless Content-Length is set). */
  body?: Buffer | Readable;
  skipTlsVerify?: boolean;
  /** Follow 301/302/303/307/308 up to this many times (GET/HEAD only); default 5. */
  maxRedirects?: number;
}

const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 16 });
const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 16 });
const insecureHttpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false });
const USER_AGENT = 'berth/0.1 (docker-compatible)';

export async function send(url: string, init: HttpRequestInit): Promise<HttpResponse> {
  let current = url;
  let headers: Record<string, string> = { 'user-agent': USER_AGENT, ...(init.headers ?? {}) };
  for (let hops = 0; ; hops++) {
    const response = await sendOnce(current, { ...init, headers });
    const location = response.headers.location;
    const redirect = [301, 302, 303, 307, 308].includes(response.status) && location !== undefined;
    if (!redirect || (init.method !== 'GET' && init.method !== 'HEAD') || hops >= (init.maxRedirects ?? 5)) return response;
    response.body.resume();
    const next = new URL(location, current);
    if (next.host !== new URL(current).host) {
      headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
    }
    current = next.toString();
  }
}

function sendOnce(url: string, init: HttpRequestInit): Promise<HttpResponse> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const requestFn = secure ? httpsRequest : httpRequest;
  const agent = secure ? (init.skipTlsVerify ? insecureHttpsAgent : httpsAgent) : httpAgent;
  return new Promise((resolve, reject) => {
    const req = requestFn(target, { method: init.method, headers: init.headers, agent, timeout: 60_000 }, (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => reject(transportError(init.method, url, err)));
    const body = init.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    }
  });
}

/** Go's url.Error shape, which dockerd's messages carry: `Get "http://h/v2/": <cause>`. */
export function describeRequest(method: string, url: string): string {
  return `${method.charAt(0)}${method.slice(1).toLowerCase()} "${url}"`;
}

function transportError(method: string, url: string, err: Error): Error {
  const code = (err as { code?: string }).code;
  // Go's wording, which dockerd's messages carry and scripts match on.
  const target = new URL(url);
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  const reason =
    code === 'ECONNREFUSED'
      ? `dial tcp ${target.hostname}:${port}: connect: connection refused`
      : code === 'ENOTFOUND'
        ? `dial tcp: lookup ${target.hostname}: no such host`
        : err.message;
  return unavailable(`${describeRequest(method, url)}: ${reason}`, err);
}

/** Reads a (small) response body whole; larger bodies fail rather than fill memory. */
export async function readBody(response: HttpResponse, limit = 8 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      response.body.destroy();
      throw unavailable(`response from ${response.url} is larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Discards a body so the connection can be reused. */
export async function drain(response: HttpResponse): Promise<void> {
  response.body.resume();
  await new Promise<void>((resolve) => {
    if (response.body.readableEnded) return resolve();
    response.body.once('end', resolve);
    response.body.once('error', () => resolve());
    response.body.once('close', resolve);
  });
}

/**
 * A registry's error body ({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})
 * as distribution's errcode prints it: "manifest unknown: manifest unknown".
 */
export async function registryErrorText(response: HttpResponse): Promise<string> {
  let text = '';
  try {
    text = (await readBody(response, 64 * 1024)).toString('utf8');
  } catch {
    return `status ${response.status}`;
  }
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    if (Array.isArray(parsed.errors) && parsed.errors.length > 0) {
      return parsed.errors
        .map((e) => {
          const code = (e.code ?? 'unknown').toLowerCase().replace(/_/g, ' ');
          return e.message ? `${code}: ${e.message}` : code;
        })
        .join(', ');
    }
  } catch {
    // not JSON
  }
  return text.trim() !== '' && text.length < 200 ? text.trim() : `unexpected status ${response.status}`;
}
