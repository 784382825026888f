import type { RequestContext } from '../../common/context.js';
import { invalidArgument, isKind } from '../../common/errors.js';
import type { Store } from '../store/store.js';
import type { RegistryCredentials } from './auth.js';

/** Store kind of a tenant's registry logins; id = registry key ("docker.io", "127.0.0.1:5000"). */
export const CREDENTIAL_KIND = 'registry-credential';

interface CredentialRecord {
  serverAddress: string;
  username: string;
  password?: string;
  identityToken?: string;
}

/**
 * Registry credentials each tenant gave Berth with `docker login` (POST /auth), kept in the
 * store under the tenant, so an API client that sends no X-Registry-Auth (an SDK after a
 * login) still pulls with them. Stored as given (the store is the secret's only home, like
 * dockerd's client-side config.json); see docs/registry.md.
 */
export class CredentialStore {
  constructor(private readonly store: Store) {}

  async get(ctx: RequestContext, registry: string): Promise<RegistryCredentials | undefined> {
    try {
      const { value } = await this.store.get<CredentialRecord>(ctx, CREDENTIAL_KIND, registry);
      return { username: value.username, password: value.password, ...(value.identityToken ? { identityToken: value.identityToken } : {}) };
    } catch (err) {
      if (isKind(err, 'NotFound')) return undefined;
      throw err;
    }
  }

  async put(ctx: RequestContext, registry: string, serverAddress: string, creds: RegistryCredentials): Promise<void> {
    const value: CredentialRecord = {
      serverAddress,
      username: creds.username ?? '',
      ...(creds.password !== undefined ? { password: creds.password } : {}),
      ...(creds.identityToken !== undefined ? { identityToken: creds.identityToken } : {}),
    };
    for (;;) {
      try {
        const current = await this.store.get<CredentialRecord>(ctx, CREDENTIAL_KIND, registry);
        await this.store.update(ctx, CREDENTIAL_KIND, registry, { value, expectedRevision: current.revision });
        return;
      } catch (err) {
        if (isKind(err, 'Conflict')) continue;
        if (!isKind(err, 'NotFound')) throw err;
      }
      try {
        await this.store.create(ctx, CREDENTIAL_KIND, { id: registry, value });
        return;
      } catch (err) {
        if (!isKind(err, 'AlreadyExists')) throw err;
      }
    }
  }
}

/** The auth config the docker CLI sends (X-Registry-Auth, base64url JSON) or posts to /auth. */
export interface AuthConfig {
  username?: string;
  password?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
  auth?: string;
}

export function credentialsOf(config: AuthConfig): RegistryCredentials {
  let { username, password } = config;
  // "auth" is base64("user:password"), as config.json keeps it.
  if ((username === undefined || username === '') && typeof config.auth === 'string' && config.auth !== '') {
    const decoded = Buffer.from(config.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
  }
  return {
    ...(username ? { username } : {}),
    ...(password !== undefined && username ? { password } : {}),
    ...(config.identitytoken ? { identityToken: config.identitytoken } : {}),
    ...(config.registrytoken ? { registryToken: config.registrytoken } : {}),
  };
}

/**
 * Decodes an X-Registry-Auth header. Undefined when the header is absent; an empty object
 * ("e30=", what the CLI sends without a login) means "anonymous", which Berth honours rather
 * than falling back to stored credentials — after `docker logout` the CLI pulls anonymously,
 * as it does against dockerd.
 */
export function decodeRegistryAuth(header: string | undefined): RegistryCredentials | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header.trim(), 'base64').toString('utf8'));
  } catch (err) {
    throw invalidArgument('invalid X-Registry-Auth header: not base64-encoded JSON', err);
  }
  if (parsed === null) return {};
  if (typeof parsed !== 'object') throw invalidArgument('invalid X-Registry-Auth header');
  return credentialsOf(parsed as AuthConfig);
}
