/**
 * A binary Packages index, reduced to what the feed builder needs: which source package each
 * binary comes from, at which source version, and where its .deb is (with size and SHA256).
 */
import { parseDeb822 } from './deb822.js';

export interface BinaryPackage {
  package: string;
  version: string;
  architecture: string;
  source: string;
  /** `Source: name (version)` when given, else the binary's own version. */
  sourceVersion: string;
  /** Pool path relative to the mirror root. */
  filename: string;
  size: number;
  sha256: string;
}

/** `Source: openssl` or `Source: openssl (3.0.15-1~deb12u1)`. */
export function parseSourceField(field: string | undefined, binary: string, version: string): { source: string; sourceVersion: string } {
  if (field === undefined || field.trim() === '') return { source: binary, sourceVersion: version };
  const match = /^(\S+)(?:\s*\(([^)]+)\))?/.exec(field.trim());
  if (match === null) return { source: binary, sourceVersion: version };
  return { source: match[1]!, sourceVersion: match[2]?.trim() ?? version };
}

export function parsePackagesIndex(text: string): BinaryPackage[] {
  const packages: BinaryPackage[] = [];
  for (const p of parseDeb822(text)) {
    const name = p.get('package');
    const version = p.get('version');
    if (name === undefined || version === undefined) continue;
    packages.push({
      package: name,
      version,
      architecture: p.get('architecture') ?? '',
      ...parseSourceField(p.get('source'), name, version),
      filename: p.get('filename') ?? '',
      size: Number(p.get('size') ?? 0),
      sha256: p.get('sha256') ?? '',
    });
  }
  return packages;
}
