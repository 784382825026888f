import { randomUUID } from 'node:crypto';
import type { InstalledPackage, Inventory, OsRelease } from './model.js';

/**
 * SBOM export of an inventory: CycloneDX 1.5 JSON and SPDX 2.3 JSON. Every package carries a
 * package URL (purl-spec): `pkg:deb/debian/<name>@<version>?arch=<arch>&distro=debian-12`,
 * `pkg:npm/%40scope/name@1.0.0`, `pkg:pypi/name@1.0`. Both documents name the image as the
 * thing described, so a scanner downstream can tie them back to it.
 */
export type SbomFormat = 'cyclonedx' | 'spdx';

export interface SbomSubject {
  /** What the user named (a tag), or the id. */
  name: string;
  /** "sha256:<hex>" of the image. */
  imageId: string;
}

const enc = (s: string): string => encodeURIComponent(s);

function distroQualifier(os: OsRelease | null): string | undefined {
  if (!os) return undefined;
  if (os.versionId) return `${os.id}-${os.versionId}`;
  return os.codename ? `${os.id}-${os.codename}` : undefined;
}

export function purlOf(pkg: InstalledPackage, os: OsRelease | null): string {
  const qualifiers = (entries: [string, string | undefined][]): string => {
    const set = entries.filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '').sort((a, b) => a[0].localeCompare(b[0]));
    return set.length === 0 ? '' : `?${set.map(([k, v]) => `${k}=${enc(v)}`).join('&')}`;
  };
  switch (pkg.ecosystem) {
    case 'deb':
    case 'apk':
    case 'rpm': {
      const namespace = os?.id ?? (pkg.ecosystem === 'deb' ? 'debian' : pkg.ecosystem === 'apk' ? 'alpine' : 'redhat');
      return `pkg:${pkg.ecosystem}/${enc(namespace)}/${enc(pkg.name)}@${enc(pkg.version)}${qualifiers([
        ['arch', pkg.architecture],
        ['distro', distroQualifier(os)],
      ])}`;
    }
    case 'npm': {
      const [scope, name] = pkg.name.startsWith('@') && pkg.name.includes('/') ? pkg.name.split('/', 2) : [undefined, pkg.name];
      return `pkg:npm/${scope ? `${enc(scope)}/` : ''}${enc(name!)}@${enc(pkg.version)}`;
    }
    case 'PyPI':
      return `pkg:pypi/${enc(pkg.name.toLowerCase().replace(/[-_.]+/g, '-'))}@${enc(pkg.version)}`;
  }
}

export function buildSbom(format: SbomFormat, subject: SbomSubject, inventory: Inventory): Record<string, unknown> {
  return format === 'cyclonedx' ? cycloneDx(subject, inventory) : spdx(subject, inventory);
}

function cycloneDx(subject: SbomSubject, inventory: Inventory): Record<string, unknown> {
  const seen = new Set<string>();
  const components: Record<string, unknown>[] = [];
  for (const pkg of inventory.packages) {
    const purl = purlOf(pkg, inventory.os);
    // bom-refs must be unique; the same package found twice (two node_modules copies) is one component.
    if (seen.has(purl)) continue;
    seen.add(purl);
    components.push({
      type: 'library',
      'bom-ref': purl,
      name: pkg.name,
      version: pkg.version,
      purl,
      ...(pkg.license ? { licenses: [{ license: { name: pkg.license } }] } : {}),
      properties: [
        { name: 'berth:ecosystem', value: pkg.ecosystem },
        { name: 'berth:location', value: pkg.location },
        ...(pkg.sourceName ? [{ name: 'berth:source-package', value: `${pkg.sourceName} ${pkg.sourceVersion ?? pkg.version}` }] : []),
      ],
    });
  }
  if (inventory.os) {
    components.unshift({
      type: 'operating-system',
      'bom-ref': `os:${inventory.os.id}`,
      name: inventory.os.id,
      ...(inventory.os.versionId ? { version: inventory.os.versionId } : {}),
      ...(inventory.os.prettyName ? { description: inventory.os.prettyName } : {}),
    });
  }
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: new Date().toISOString(),
      tools: { components: [{ type: 'application', name: 'berth-advisor' }] },
      component: { type: 'container', 'bom-ref': subject.imageId, name: subject.name, version: subject.imageId },
    },
    components,
  };
}

function spdx(subject: SbomSubject, inventory: Inventory): Record<string, unknown> {
  const imageSpdxId = 'SPDXRef-Image';
  const packages: Record<string, unknown>[] = [
    {
      name: subject.name,
      SPDXID: imageSpdxId,
      versionInfo: subject.imageId,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      primaryPackagePurpose: 'CONTAINER',
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
    },
  ];
  const relationships: Record<string, unknown>[] = [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageSpdxId }];
  const seen = new Set<string>();
  inventory.packages.forEach((pkg) => {
    const purl = purlOf(pkg, inventory.os);
    if (seen.has(purl)) return;
    seen.add(purl);
    const id = `SPDXRef-Package-${pkg.ecosystem}-${seen.size}`;
    packages.push({
      name: pkg.name,
      SPDXID: id,
      versionInfo: pkg.version,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      ...(pkg.sourceName ? { sourceInfo: `built from source package ${pkg.sourceName} ${pkg.sourceVersion ?? pkg.version}` } : {}),
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl }],
    });
    relationships.push({ spdxElementId: imageSpdxId, relationshipType: 'CONTAINS', relatedSpdxElement: id });
  });
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: subject.name,
    // A unique URI per document, as SPDX asks; .invalid never resolves.
    documentNamespace: `https://berth.invalid/spdx/${enc(subject.name)}-${randomUUID()}`,
    creationInfo: { created: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), creators: ['Tool: berth-advisor'] },
    documentDescribes: [imageSpdxId],
    packages,
    relationships,
  };
}
