import { forbidden, unavailable } from '../../common/errors.js';
import { describeRequest, drain, readBody, send } from './http.js';

/**
 * Registry authentication: the `WWW-Authenticate` challenge flow of the Registry HTTP API v2
 * and Docker's token protocol.
 *
 * Flow: the client pings `GET /v2/`. 200 means anonymous access; 401 carries a challenge.
 * - `Basic realm=…`: every request carries the user's credentials.
 * - `Bearer realm=…,service=…[,scope=…]`: the client asks the realm for a token for the
 *   scopes it needs ("repository:app:pull,push"), sending the user's credentials (if any)
 *   with Basic auth, and carries `Authorization: Bearer <token>`. A later 401 names the scope
 *   it wants in its own challenge; the client fetches a token for that scope and retries.
 * Tokens are cached per scope set until shortly before they expire.
 */
export interface RegistryCredentials {
  username?: string;
  password?: string;
  /** A refresh token from an earlier login (`IdentityToken`), traded at the realm via OAuth2. */
  identityToken?: string;
  /** A bearer token to use as is. */
  registryToken?: string;
}

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** Parses `WWW-Authenticate` values: `Bearer realm="…",service="…",scope="…"`, `Basic realm="…"`. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    const match = /^\s*(\w+)\s*(.*)$/s.exec(value);
    if (!match) continue;
    const scheme = match[1]!.toLowerCase();
    if (scheme !== 'basic' && scheme !== 'bearer') continue;
    const params: Record<string, string> = {};
    const paramPattern = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/g;
    for (const p of match[2]!.matchAll(paramPattern)) {
      params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
    }
    out.push({ scheme, params });
  }
  return out;
}

export const hasUserCredentials = (creds: RegistryCredentials): boolean =>
  (creds.username !== undefined && creds.username !== '') || creds.identityToken !== undefined || creds.registryToken !== undefined;

/** What the token endpoint answered: the token, and a refresh token when asked for offline access. */
interface TokenGrant {
  token: string;
  refreshToken?: string;
  expiresAt: number;
}

/**
 * Holds one client's authentication state: the challenge learnt from the ping, and tokens by
 * scope set. One instance per (registry, credentials), short-lived (one pull or push).
 */
export class RegistryAuthorizer {
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, TokenGrant>();

  constructor(
    private readonly credentials: RegistryCredentials,
    private readonly skipTlsVerify: boolean,
  ) {}

  /** Records the challenge of a 401; returns false when it is of no scheme Berth speaks. */
  learn(header: string | string[] | undefined): boolean {
    const challenges = parseChallenges(header);
    const chosen = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (chosen === undefined) return false;
    this.challenge = chosen;
    return true;
  }

  get scheme(): 'basic' | 'bearer' | undefined {
    return this.challenge?.scheme;
  }

  /** The challenge's scope, when a 401 named one. */
  challengeScope(header: string | string[] | undefined): string[] {
    const bearer = parseChallenges(header).find((c) => c.scheme === 'bearer');
    return bearer?.params.scope ? bearer.params.scope.split(' ') : [];
  }

  /**
   * The Authorization header for a request needing `scopes`, or undefined when anonymous.
   * `failedRequest` names the registry request for error messages (dockerd's wording).
   */
  async header(scopes: string[], failedRequest: { method: string; url: string }): Promise<string | undefined> {
    const challenge = this.challenge;
    if (challenge === undefined) return undefined;
    if (challenge.scheme === 'basic') {
      if (this.credentials.username === undefined || this.credentials.username === '') {
        throw forbidden(`${describeRequest(failedRequest.method, failedRequest.url)}: no basic auth credentials`);
      }
      return `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password ?? ''}`).toString('base64')}`;
    }
    if (this.credentials.registryToken !== undefined) return `Bearer ${this.credentials.registryToken}`;
    const grant = await this.token(scopes, false, failedRequest);
    return `Bearer ${grant.token}`;
  }

  /**
   * Fetches a token from the bearer realm. `offline` asks for a refresh token too (login).
   * A refusal is Forbidden with dockerd's message (`Head "<url>": unauthorized`).
   */
  async token(scopes: string[], offline: boolean, failedRequest: { method: string; url: string }): Promise<TokenGrant> {
    const key = [...new Set(scopes)].sort().join(' ');
    const cached = this.tokens.get(key);
    if (cached !== undefined && cached.expiresAt > Date.now() + 5000 && !offline) return cached;
    const params = this.challenge?.params ?? {};
    const realm = params.realm;
    if (realm === undefined || realm === '') throw unavailable('registry sent a bearer challenge without a realm');
    const creds = this.credentials;
    let response;
    if (creds.identityToken !== undefined) {
      // OAuth2 refresh-token grant, as dockerd uses with an identity token.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, service: params.service ?? '', client_id: 'docker' });
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      response = await send(realm, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: Buffer.from(form.toString()),
        skipTlsVerify: this.skipTlsVerify,
      });
    } else {
      const url = new URL(realm);
      if (params.service !== undefined) url.searchParams.set('service', params.service);
      for (const scope of scopes) url.searchParams.append('scope', scope);
      const headers: Record<string, string> = {};
      if (creds.username !== undefined && creds.username !== '') {
        url.searchParams.set('account', creds.username);
        headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`;
      }
      if (offline) {
        url.searchParams.set('offline_token', 'true');
        url.searchParams.set('client_id', 'docker');
      }
      response = await send(url.toString(), { method: 'GET', headers, skipTlsVerify: this.skipTlsVerify });
    }
    if (response.status === 401 || response.status === 403) {
      await drain(response);
      throw forbidden(`${describeRequest(failedRequest.method, failedRequest.url)}: unauthorized`);
    }
    if (response.status !== 200) {
      await drain(response);
      throw unavailable(`${describeRequest(failedRequest.method, failedRequest.url)}: token server answered ${response.status}`);
    }
    let body: { token?: string; access_token?: string; refresh_token?: string; expires_in?: number };
    try {
      body = JSON.parse((await readBody(response, 1024 * 1024)).toString('utf8')) as typeof body;
    } catch (err) {
      throw unavailable('token server sent a malformed answer', err);
    }
    const token = body.token ?? body.access_token;
    if (typeof token !== 'string' || token === '') throw unavailable('token server sent no token');
    const lifetime = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    const grant: TokenGrant = { token, expiresAt: Date.now() + lifetime * 1000, ...(body.refresh_token ? { refreshToken: body.refresh_token } : {}) };
    this.tokens.set(key, grant);
    return grant;
  }
}
