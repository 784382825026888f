import { invalidArgument } from '../../common/errors.js';

/**
 * Image references as Docker reads them (distribution/reference, "normalized named").
 *
 * Terms: a reference is `[domain/]path[:tag][@digest]`. Docker Hub names are shown in their
 * *familiar* form: `docker.io/library/busybox:latest` is `busybox:latest`, and
 * `docker.io/berth-test/busybox` is `berth-test/busybox`. Berth stores and shows familiar
 * forms; a name without tag or digest means `:latest`.
 */
export interface ImageReference {
  /** Familiar repository name: "busybox", "berth-test/busybox", "localhost:5000/app". */
  name: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/;
const NAME_TOTAL_MAX = 255;

/** InvalidArgument "invalid reference format" (Docker's words) for anything else. */
export function parseReference(input: string): ImageReference {
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalidArgument('invalid reference format');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalidArgument('invalid reference format');
  }
  if (rest === '' || rest.length > NAME_TOTAL_MAX) throw invalidArgument('invalid reference format');
  const parts = rest.split('/');
  const first = parts[0]!;
  const hasDomain = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first));
  if (hasDomain && !DOMAIN.test(first)) throw invalidArgument('invalid reference format');
  const path = hasDomain ? parts.slice(1) : parts;
  for (const component of path) {
    if (!COMPONENT.test(component)) {
      if (/[A-Z]/.test(component)) throw invalidArgument('invalid reference format: repository name must be lowercase');
      throw invalidArgument('invalid reference format');
    }
  }
  return { name: familiarName(hasDomain ? first : undefined, path), ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

function familiarName(domain: string | undefined, path: string[]): string {
  if (domain === undefined || domain === 'docker.io' || domain === 'index.docker.io') {
    if (path.length === 2 && path[0] === 'library') return path[1]!;
    return path.join('/');
  }
  return [domain, ...path].join('/');
}

/** `name:tag`, defaulting the tag to latest (Docker's TagNameOnly + FamiliarString). */
export function familiarTagged(ref: ImageReference): string {
  if (ref.digest !== undefined && ref.tag === undefined) return `${ref.name}@${ref.digest}`;
  return `${ref.name}:${ref.tag ?? 'latest'}`;
}

/** The familiar string of what the user typed, as Docker echoes it in messages. */
export function familiarString(ref: ImageReference): string {
  return `${ref.name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** Repository of a familiar `name:tag`. */
export function repositoryOf(tagged: string): string {
  const colon = tagged.lastIndexOf(':');
  return colon > tagged.lastIndexOf('/') ? tagged.slice(0, colon) : tagged;
}

/** Tag of a familiar `name:tag`. */
export function tagOf(tagged: string): string {
  const colon = tagged.lastIndexOf(':');
  return colon > tagged.lastIndexOf('/') ? tagged.slice(colon + 1) : 'latest';
}
