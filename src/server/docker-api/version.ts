/** The Engine API versions Berth speaks; the docker CLI negotiates down to MAX from /_ping. */
export const API_VERSION_MAX = '1.47';
export const API_VERSION_MIN = '1.24';

export function compareApiVersions(a: string, b: string): number {
  const [aMajor = 0, aMinor = 0] = a.split('.').map(Number);
  const [bMajor = 0, bMinor = 0] = b.split('.').map(Number);
  return aMajor === bMajor ? aMinor - bMinor : aMajor - bMajor;
}

const VERSION_PREFIX = /^\/v(\d+\.\d+)(\/.*)$/;

/** Splits "/v1.47/containers/json" into the version and the path Berth routes on. */
export function splitVersionPrefix(url: string): { version: string | undefined; path: string } {
  const match = VERSION_PREFIX.exec(url);
  if (!match) return { version: undefined, path: url };
  return { version: match[1], path: match[2]! };
}
