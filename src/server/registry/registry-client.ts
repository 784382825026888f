import type { Readable } from 'node:stream';
import { forbidden, isKind, notFound, unauthenticated, unavailable } from '../../common/errors.js';
import { sha256Digest } from '../../agent/images/digest.js';
import { RegistryAuthorizer, type RegistryCredentials } from './auth.js';
import type { Endpoint } from './endpoint.js';
import { describeRequest, drain, readBody, registryErrorText, send, type HttpResponse } from './http.js';

/** Largest manifest Berth reads (Docker's limit is 4 MiB too). */
const MANIFEST_LIMIT = 4 * 1024 * 1024;

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  /** sha256 of the exact bytes, computed here (never taken from a header). */
  digest: string;
}

type Body = Buffer | (() => Readable);

/**
 * A client of one registry (Registry HTTP API v2) on behalf of one set of credentials.
 *
 * Lifecycle: create per pull, push or login; `ping()` first (learns how the registry wants to
 * be authenticated, and for an insecure registry whether it speaks TLS at all); then the
 * manifest, blob and upload calls. Every call states the scopes it needs, so a bearer token
 * is fetched for exactly those ("repository:app:pull").
 */
export class RegistryClient {
  private baseUrl: string;
  private readonly auth: RegistryAuthorizer;
  private pinged = false;

  constructor(
    private readonly endpoint: Endpoint,
    credentials: RegistryCredentials,
  ) {
    this.baseUrl = endpoint.baseUrl;
    this.auth = new RegistryAuthorizer(credentials, endpoint.skipTlsVerify);
  }

  get apiUrl(): string {
    return `${this.baseUrl}/v2/`;
  }

  async ping(): Promise<void> {
    if (this.pinged) return;
    let response: HttpResponse;
    try {
      response = await send(this.apiUrl, { method: 'GET', skipTlsVerify: this.endpoint.skipTlsVerify });
    } catch (err) {
      if (this.endpoint.fallbackUrl === undefined || !isKind(err, 'Unavailable')) throw err;
      // An insecure registry that does not speak TLS: plain HTTP, as dockerd falls back.
      this.baseUrl = this.endpoint.fallbackUrl;
      response = await send(this.apiUrl, { method: 'GET' });
    }
    await drain(response);
    if (response.status === 401) {
      if (!this.auth.learn(response.headers['www-authenticate'])) {
        throw unavailable(`${describeRequest('GET', this.apiUrl)}: unsupported authentication challenge`);
      }
    } else if (response.status !== 200) {
      throw unavailable(`${describeRequest('GET', this.apiUrl)}: registry answered ${response.status}`);
    }
    this.pinged = true;
  }

  /**
   * `docker login`: checks the credentials the way dockerd does. Returns a refresh token when
   * the token server hands one out (the CLI keeps it as the identity token).
   */
  async login(): Promise<{ identityToken?: string }> {
    await this.ping();
    const url = this.apiUrl;
    if (this.auth.scheme === undefined) return {};
    if (this.auth.scheme === 'basic') {
      let header: string | undefined;
      try {
        header = await this.auth.header([], { method: 'GET', url });
      } catch (err) {
        if (isKind(err, 'Forbidden')) throw unauthenticated(err.message);
        throw err;
      }
      const response = await send(url, { method: 'GET', headers: header ? { authorization: header } : {}, skipTlsVerify: this.endpoint.skipTlsVerify });
      await drain(response);
      if (response.status !== 200) {
        throw unauthenticated(`login attempt to ${url} failed with status: ${response.status} ${statusText(response.status)}`);
      }
      return {};
    }
    try {
      const grant = await this.auth.token([], true, { method: 'GET', url });
      return grant.refreshToken ? { identityToken: grant.refreshToken } : {};
    } catch (err) {
      if (isKind(err, 'Forbidden')) throw unauthenticated(err.message);
      throw err;
    }
  }

  /**
   * One authorized request. A 401 whose challenge names other scopes (a cross-repository
   * mount wants pull on the source) gets one retry with a token for them too.
   */
  async request(method: string, pathOrUrl: string, options: { scopes: string[]; headers?: Record<string, string>; body?: Body }): Promise<HttpResponse> {
    await this.ping();
    const url = pathOrUrl.startsWith('http://') || pathOrUrl.startsWith('https://') ? pathOrUrl : `${this.baseUrl}${pathOrUrl}`;
    let scopes = options.scopes;
    for (let attempt = 0; ; attempt++) {
      const authorization = await this.auth.header(scopes, { method, url });
      const body = typeof options.body === 'function' ? options.body() : options.body;
      const response = await send(url, {
        method,
        headers: { ...(options.headers ?? {}), ...(authorization ? { authorization } : {}) },
        body,
        skipTlsVerify: this.endpoint.skipTlsVerify,
      });
      if (response.status !== 401 || attempt > 0 || this.auth.scheme !== 'bearer') {
        if (response.status === 401) {
          await drain(response);
          throw forbidden(`${describeRequest(method, url)}: unauthorized`);
        }
        return response;
      }
      const wanted = this.auth.challengeScope(response.headers['www-authenticate']);
      await drain(response);
      if (wanted.every((s) => scopes.includes(s))) throw forbidden(`${describeRequest(method, url)}: unauthorized`);
      scopes = [...new Set([...scopes, ...wanted])];
    }
  }

  /** GET a manifest by tag or digest; NotFound in dockerd's words (`manifest for … not found: …`). */
  async getManifest(repoPath: string, reference: string, accept: readonly string[], familiar: string): Promise<FetchedManifest> {
    let target = reference;
    if (!reference.includes(':')) {
      // A tag: HEAD it for its digest and GET by digest, as dockerd does (same requests, same
      // error messages); a registry that sends no digest header is read by tag.
      const head = await this.request('HEAD', `/v2/${repoPath}/manifests/${reference}`, {
        scopes: [`repository:${repoPath}:pull`],
        headers: { accept: accept.join(', ') },
      });
      await drain(head);
      if (head.status === 404) throw notFound(`manifest for ${familiar} not found: manifest unknown: manifest unknown`);
      const digest = head.headers['docker-content-digest'];
      if (head.status === 200 && typeof digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(digest)) target = digest;
    }
    const response = await this.request('GET', `/v2/${repoPath}/manifests/${target}`, {
      scopes: [`repository:${repoPath}:pull`],
      headers: { accept: accept.join(', ') },
    });
    if (response.status === 404) throw notFound(`manifest for ${familiar} not found: ${await registryErrorText(response)}`);
    if (response.status !== 200) throw unavailable(`fetching manifest for ${familiar}: ${await registryErrorText(response)}`);
    const bytes = await readBody(response, MANIFEST_LIMIT);
    const mediaType = (response.headers['content-type'] ?? '').split(';')[0]!.trim();
    const digest = sha256Digest(bytes);
    if (target !== reference && digest !== target) throw unavailable(`manifest verification failed for digest ${target}`);
    return { bytes, mediaType, digest };
  }

  /** A blob's body stream (status checked). */
  async openBlob(repoPath: string, digest: string): Promise<HttpResponse> {
    const response = await this.request('GET', `/v2/${repoPath}/blobs/${digest}`, { scopes: [`repository:${repoPath}:pull`] });
    if (response.status !== 200) throw unavailable(`fetching blob ${digest}: ${await registryErrorText(response)}`);
    return response;
  }

  /** The blob's size when the repository has it, else undefined. */
  async statBlob(repoPath: string, digest: string, scopes: string[]): Promise<number | undefined> {
    const response = await this.request('HEAD', `/v2/${repoPath}/blobs/${digest}`, { scopes });
    await drain(response);
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw unavailable(`checking blob ${digest}: registry answered ${response.status}`);
    return Number(response.headers['content-length'] ?? 0);
  }

  /**
   * Asks the registry to mount `digest` from `fromPath` into `repoPath` (same registry).
   * True when mounted; false when the registry refused (the upload it opened instead is
   * cancelled).
   */
  async mountBlob(repoPath: string, digest: string, fromPath: string): Promise<boolean> {
    const query = new URLSearchParams({ mount: digest, from: fromPath });
    const response = await this.request('POST', `/v2/${repoPath}/blobs/uploads/?${query.toString()}`, {
      scopes: [`repository:${repoPath}:pull,push`, `repository:${fromPath}:pull`],
      headers: { 'content-length': '0' },
    });
    await drain(response);
    if (response.status === 201) return true;
    if (response.status === 202 && response.headers.location) {
      const cancel = await this.request('DELETE', this.resolve(response.headers.location), { scopes: [`repository:${repoPath}:pull,push`] }).catch(() => undefined);
      if (cancel) await drain(cancel);
    }
    return false;
  }

  /** Uploads a blob in one request (POST to open the session, PUT with the whole body). */
  async uploadMonolithic(repoPath: string, digest: string, size: number, open: () => Readable): Promise<void> {
    const scopes = [`repository:${repoPath}:pull,push`];
    const location = await this.startUpload(repoPath);
    const response = await this.request('PUT', withQuery(location, { digest }), {
      scopes,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: open,
    });
    await this.expectStatus(response, 201, `uploading blob ${digest}`);
  }

  /**
   * Uploads a blob in chunks: PATCH each range (Content-Range) to the session's latest
   * Location, then PUT ?digest= with no body. For layers too large for one request.
   */
  async uploadChunked(
    repoPath: string,
    digest: string,
    size: number,
    chunkSize: number,
    openRange: (start: number, end: number) => Readable,
    onProgress: (sent: number) => void,
  ): Promise<void> {
    const scopes = [`repository:${repoPath}:pull,push`];
    let location = await this.startUpload(repoPath);
    for (let start = 0; start < size; start += chunkSize) {
      const end = Math.min(size, start + chunkSize) - 1;
      const response = await this.request('PATCH', location, {
        scopes,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - start + 1), 'content-range': `${start}-${end}` },
        body: () => openRange(start, end),
      });
      await this.expectStatus(response, 202, `uploading blob ${digest}`);
      location = this.resolve(response.headers.location ?? location);
      onProgress(end + 1);
    }
    const response = await this.request('PUT', withQuery(location, { digest }), { scopes, headers: { 'content-length': '0' } });
    await this.expectStatus(response, 201, `uploading blob ${digest}`);
  }

  /** PUT a manifest under a tag; returns the digest the registry reports (checked against ours). */
  async putManifest(repoPath: string, tag: string, mediaType: string, bytes: Buffer): Promise<string> {
    const response = await this.request('PUT', `/v2/${repoPath}/manifests/${tag}`, {
      scopes: [`repository:${repoPath}:pull,push`],
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: bytes,
    });
    await this.expectStatus(response, 201, `uploading manifest ${tag}`);
    const digest = sha256Digest(bytes);
    const reported = response.headers['docker-content-digest'];
    if (typeof reported === 'string' && reported !== '' && reported !== digest) {
      throw unavailable(`registry reported manifest digest ${reported}, expected ${digest}`);
    }
    return digest;
  }

  private async startUpload(repoPath: string): Promise<string> {
    const response = await this.request('POST', `/v2/${repoPath}/blobs/uploads/`, {
      scopes: [`repository:${repoPath}:pull,push`],
      headers: { 'content-length': '0' },
    });
    await this.expectStatus(response, 202, 'starting a blob upload');
    const location = response.headers.location;
    if (location === undefined) throw unavailable('registry opened an upload without a Location');
    return this.resolve(location);
  }

  private async expectStatus(response: HttpResponse, status: number, what: string): Promise<void> {
    if (response.status === status) {
      await drain(response);
      return;
    }
    throw unavailable(`${what}: ${await registryErrorText(response)}`);
  }

  private resolve(location: string): string {
    return new URL(location, this.baseUrl).toString();
  }
}

function withQuery(url: string, params: Record<string, string>): string {
  const parsed = new URL(url);
  for (const [k, v] of Object.entries(params)) parsed.searchParams.set(k, v);
  return parsed.toString();
}

function statusText(status: number): string {
  return ({ 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' } as Record<number, string>)[status] ?? 'Error';
}
