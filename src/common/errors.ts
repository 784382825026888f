/**
 * Error kinds shared by every Berth module.
 *
 * Code raises a kind where the problem is found, with a message a user can act on; only the
 * API edge (src/server/docker-api/errors.ts) turns a kind into an HTTP status. Nothing below
 * the edge knows about HTTP. The message of a BerthError is shown to the user verbatim, so it
 * must never carry internal detail (paths of the data root, driver errors): wrap those as the
 * `cause`, which is logged and not sent.
 */
export type ErrorKind =
  | 'InvalidArgument' // malformed or unsupported input (400)
  | 'NotFound' // no such object, or not visible to this tenant (404)
  | 'AlreadyExists' // a name is taken (409)
  | 'Conflict' // the object is in a state that forbids the operation (409)
  | 'NotModified' // the operation was a no-op (304), e.g. starting a running container
  | 'Unauthenticated' // no valid credential, or a revoked one (401)
  | 'Forbidden' // refused by policy (403)
  | 'NotImplemented' // a Docker feature Berth does not offer (501)
  | 'Unavailable' // a dependency is down (503)
  | 'Internal'; // a bug or an unexpected host failure (500)

export class BerthError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = `BerthError(${kind})`;
  }
}

export const invalidArgument = (message: string, cause?: unknown): BerthError =>
  new BerthError('InvalidArgument', message, { cause });
export const notFound = (message: string, cause?: unknown): BerthError =>
  new BerthError('NotFound', message, { cause });
export const alreadyExists = (message: string, cause?: unknown): BerthError =>
  new BerthError('AlreadyExists', message, { cause });
export const conflict = (message: string, cause?: unknown): BerthError =>
  new BerthError('Conflict', message, { cause });
export const notModified = (message = ''): BerthError => new BerthError('NotModified', message);
export const forbidden = (message: string): BerthError => new BerthError('Forbidden', message);
export const unauthenticated = (message: string): BerthError => new BerthError('Unauthenticated', message);
export const notImplemented = (message: string): BerthError =>
  new BerthError('NotImplemented', message);
export const unavailable = (message: string, cause?: unknown): BerthError =>
  new BerthError('Unavailable', message, { cause });
export const internal = (message: string, cause?: unknown): BerthError =>
  new BerthError('Internal', message, { cause });

export function isKind(err: unknown, kind: ErrorKind): err is BerthError {
  return err instanceof BerthError && err.kind === kind;
}

/** Node's system errors carry a code such as ENOENT; this reads it without `any`. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
