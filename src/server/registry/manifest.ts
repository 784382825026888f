import { invalidArgument, notFound, notImplemented } from '../../common/errors.js';
import { isDigest } from '../../agent/images/digest.js';

/**
 * Manifests as registries serve them: Docker schema 2 and OCI image manifests (one image),
 * Docker manifest lists and OCI indexes (one image per platform). Schema 1 is refused, as
 * current Docker does.
 */
export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

export const MANIFEST_ACCEPT = [MEDIA.dockerManifest, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.ociIndex] as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export type ParsedManifest =
  | { kind: 'image'; mediaType: string; config: Descriptor; layers: Descriptor[] }
  | { kind: 'index'; mediaType: string; manifests: Descriptor[] };

/** Parses manifest bytes; the Content-Type is used only when the body names no mediaType. */
export function parseManifest(bytes: Buffer, contentType: string): ParsedManifest {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw invalidArgument('invalid manifest: not JSON', err);
  }
  if (typeof json !== 'object' || json === null) throw invalidArgument('invalid manifest');
  if (json.schemaVersion === 1) {
    throw notImplemented('Docker Image manifest version 2, schema 1 is not supported: push the image again with a current client');
  }
  const mediaType = typeof json.mediaType === 'string' && json.mediaType !== '' ? json.mediaType : contentType;
  if (Array.isArray(json.manifests) || mediaType === MEDIA.dockerList || mediaType === MEDIA.ociIndex) {
    const manifests = (Array.isArray(json.manifests) ? json.manifests : []).map((d) => descriptor(d, 'manifests'));
    return { kind: 'index', mediaType, manifests };
  }
  if (mediaType !== MEDIA.dockerManifest && mediaType !== MEDIA.ociManifest && json.config === undefined) {
    throw invalidArgument(`unsupported manifest media type: ${mediaType || 'none'}`);
  }
  const layers = Array.isArray(json.layers) ? json.layers.map((d) => descriptor(d, 'layers')) : [];
  return { kind: 'image', mediaType: mediaType || MEDIA.ociManifest, config: descriptor(json.config, 'config'), layers };
}

function descriptor(value: unknown, field: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || !isDigest(d.digest) || typeof d.size !== 'number' || d.size < 0) {
    throw invalidArgument(`invalid manifest: malformed ${field} descriptor`);
  }
  const platform = d.platform && typeof d.platform.os === 'string' && typeof d.platform.architecture === 'string' ? d.platform : undefined;
  return { mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest, size: d.size, ...(platform ? { platform } : {}) };
}

/** This host's platform as OCI names it (Node's "x64" is "amd64"). */
export function hostPlatform(): Platform {
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
  return { os: 'linux', architecture: arch, ...(arch === 'arm64' ? { variant: 'v8' } : {}) };
}

/** Parses `--platform` ("linux/arm64/v8", "linux/amd64"); empty means the host's platform. */
export function parsePlatform(value: string | undefined): Platform {
  if (value === undefined || value.trim() === '') return hostPlatform();
  const parts = value.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw invalidArgument(`"${value}": unknown operating system or architecture: invalid argument`);
  }
  const arch = normalizeArch(parts[1]!);
  const variant = parts[2];
  return { os: parts[0]!, architecture: arch, ...(variant ? { variant } : {}) };
}

function normalizeArch(arch: string): string {
  return ({ x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', i386: '386' } as Record<string, string>)[arch] ?? arch;
}

export const formatPlatform = (p: Platform): string => [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== '').join('/');

/** Whether an image's platform (from its config or an index entry) serves `wanted`. */
export function platformMatches(candidate: Platform, wanted: Platform): boolean {
  if (candidate.os !== wanted.os || normalizeArch(candidate.architecture) !== wanted.architecture) return false;
  const variant = candidate.variant ?? (wanted.architecture === 'arm64' ? 'v8' : undefined);
  return wanted.variant === undefined || variant === undefined || variant === wanted.variant;
}

/** Picks the index entry for `wanted`; NotFound in Docker's words when there is none. */
export function selectPlatform(manifests: Descriptor[], wanted: Platform): Descriptor {
  const hit = manifests.find((m) => m.platform !== undefined && platformMatches(m.platform, wanted));
  if (hit === undefined) throw notFound(`no matching manifest for ${formatPlatform(wanted)} in the manifest list entries`);
  return hit;
}
