import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RequestContext } from '../../common/context.js';
import { invalidArgument } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { ContentIngester, ContentProvider } from '../../agent/images/content-store.js';
import { parseReference, type ImageReference } from '../images/reference.js';
import type { Store } from '../store/store.js';
import type { RegistryCredentials } from './auth.js';
import { BlobLocations } from './blob-locations.js';
import { CredentialStore, credentialsOf, decodeRegistryAuth, type AuthConfig } from './credentials.js';
import { registryKey, RegistryEndpoints, splitRepository } from './endpoint.js';
import { LayerDownloads } from './layer-downloads.js';
import type { ProgressSink } from './progress.js';
import { ImagePuller, type PulledImageStore } from './pull.js';
import { ImagePusher, type PushSource } from './push.js';
import { RegistryClient } from './registry-client.js';

export interface RegistryServiceOptions {
  store: Store;
  images: PulledImageStore & PushSource & { readonly content: ContentProvider & ContentIngester & { abortIngests(): Promise<void> } };
  dataRoot: string;
  /** dockerd's `--insecure-registry` values. */
  insecureRegistries: readonly string[];
  logger: Logger;
}

export interface PullOptions {
  fromImage: string;
  /** A tag, or a digest ("sha256:…"); empty means latest. */
  tag?: string;
  platform?: string;
  /** The X-Registry-Auth header as sent. */
  registryAuth?: string;
}

export interface PushOptions {
  name: string;
  tag?: string;
  registryAuth?: string;
}

/**
 * Images to and from registries, for the Docker API: login (POST /auth), pull (POST
 * /images/create?fromImage=) and push (POST /images/{name}/push).
 *
 * Credentials: the X-Registry-Auth header of the request when present (what the docker CLI
 * sends, from its own config.json; an empty one means anonymous), otherwise what the tenant
 * gave Berth with `docker login`.
 */
export class RegistryService {
  private readonly endpoints: RegistryEndpoints;
  private readonly credentials: CredentialStore;
  private readonly puller: ImagePuller;
  private readonly pusher: ImagePusher;
  private readonly tmpDir: string;

  constructor(private readonly opts: RegistryServiceOptions) {
    this.endpoints = new RegistryEndpoints(opts.insecureRegistries);
    this.credentials = new CredentialStore(opts.store);
    const locations = new BlobLocations(opts.store);
    const tmpDir = join(opts.dataRoot, 'images', 'tmp');
    const downloads = new LayerDownloads(opts.images.content, tmpDir);
    this.puller = new ImagePuller({ images: opts.images, downloads, locations, endpoints: this.endpoints, store: opts.store, logger: opts.logger });
    this.tmpDir = tmpDir;
    this.pusher = new ImagePusher({ images: opts.images, locations, endpoints: this.endpoints, tmpDir, logger: opts.logger });
  }

  /**
   * Start-up repair after a crash: temp files of downloads and pushes that were cut off,
   * partial content-store writes, and layers of pulls that never finished (see PullNote).
   * Runs before the API serves, so nothing is in flight.
   */
  async reconcile(): Promise<void> {
    await this.opts.images.content.abortIngests();
    const names = await readdir(this.tmpDir).catch(() => [] as string[]);
    for (const name of names.filter((n) => /^(blob|push)-[0-9a-f]+$/.test(n))) await rm(join(this.tmpDir, name), { force: true });
    await this.puller.reconcile();
  }

  /** `docker login`: validates against the registry, then keeps the credentials for the tenant. */
  async login(ctx: RequestContext, config: AuthConfig): Promise<{ Status: string; IdentityToken?: string }> {
    const registry = registryKey(config.serveraddress ?? '');
    const creds = credentialsOf(config);
    const client = new RegistryClient(this.endpoints.resolve(registry), creds);
    const { identityToken } = await client.login();
    await this.credentials.put(ctx, registry, config.serveraddress ?? registry, identityToken ? { ...creds, identityToken } : creds);
    return { Status: 'Login Succeeded', ...(identityToken ? { IdentityToken: identityToken } : {}) };
  }

  async pull(ctx: RequestContext, options: PullOptions, sink: ProgressSink): Promise<void> {
    const reference = pullReference(options.fromImage, options.tag);
    const credentials = await this.credentialsFor(ctx, reference.name, options.registryAuth);
    await this.puller.pull(ctx, { reference, platform: options.platform, credentials }, sink);
  }

  async push(ctx: RequestContext, options: PushOptions, sink: ProgressSink): Promise<void> {
    const parsed = parseReference(options.name);
    if (parsed.digest !== undefined) throw invalidArgument('cannot push a digest reference');
    const tag = options.tag || parsed.tag;
    const credentials = await this.credentialsFor(ctx, parsed.name, options.registryAuth);
    await this.pusher.push(ctx, { name: parsed.name, ...(tag ? { tag } : {}), credentials }, sink);
  }

  private async credentialsFor(ctx: RequestContext, name: string, header: string | undefined): Promise<RegistryCredentials> {
    const sent = decodeRegistryAuth(header);
    if (sent !== undefined) return sent;
    return (await this.credentials.get(ctx, splitRepository(name).domain)) ?? {};
  }
}

/** fromImage plus tag as the API sends them: the tag may be a digest; none means latest. */
function pullReference(fromImage: string, tag: string | undefined): ImageReference {
  const base = parseReference(fromImage);
  if (tag === undefined || tag === '') return base.tag === undefined && base.digest === undefined ? { ...base, tag: 'latest' } : base;
  if (base.tag !== undefined || base.digest !== undefined) throw invalidArgument('invalid reference format: both a tag in the image name and a tag parameter');
  return /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/.test(tag) ? { name: base.name, digest: tag } : parseReference(`${base.name}:${tag}`);
}
