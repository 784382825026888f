/**
 * The Vulnerability Advisor's shared vocabulary (issue 8).
 *
 * Three parts meet here and nowhere else:
 * - agent/inventory/ and compliance/ read a filesystem (an image's layers or a live container's
 *   root) and produce an Inventory and ComplianceFindings;
 * - feeds/, versions/ and matching/ turn advisory sources into a Feed and match an
 *   Inventory against it, producing VulnerabilityFindings;
 * - service/ stores inventories, feeds, findings, exemptions and alerts, and serves them.
 *
 * Everything here is plain JSON-serialisable data, so inventories can be stored once and
 * re-matched against every new feed without reading a filesystem again.
 */

/** Ordered from least to most severe; `unknown` sorts lowest. */
export const SEVERITIES = ['unknown', 'negligible', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

/**
 * Package ecosystems, named as OSV names them where OSV has a name. OS packages carry their
 * distribution separately (Inventory.os), because `deb` data for Debian never matches an
 * Ubuntu image: matching is by (ecosystem, distribution release, source package).
 */
export type Ecosystem = 'deb' | 'apk' | 'rpm' | 'npm' | 'PyPI';

/** From /etc/os-release (or /usr/lib/os-release). */
export interface OsRelease {
  /** `ID=`: debian, ubuntu, alpine, ... */
  id: string;
  /** `VERSION_ID=`: "12", "3.19.1"; absent on testing/sid. */
  versionId?: string;
  /** `VERSION_CODENAME=`: bookworm. For Debian the release name is what feeds key on. */
  codename?: string;
  prettyName?: string;
}

export interface InstalledPackage {
  ecosystem: Ecosystem;
  name: string;
  version: string;
  /**
   * The source package and its version (dpkg's `Source:` field; the binary's own name and
   * version when the field is absent). Debian advisories are by source package.
   */
  sourceName?: string;
  sourceVersion?: string;
  architecture?: string;
  /** Where it was found: the status file, apk db, package.json or METADATA path in the rootfs. */
  location: string;
  /** SPDX-ish licence text where the metadata names one (npm, PyPI). */
  license?: string;
}

export interface Inventory {
  /** Schema version of this structure, bumped when it changes incompatibly. */
  schema: 1;
  os: OsRelease | null;
  packages: InstalledPackage[];
  /** When it was taken (RFC 3339). */
  takenAt: string;
}

/** What a running container adds to its inventory: only a live container has these. */
export interface RuntimeState {
  processes: { pid: number; user: string; command: string }[];
  listening: { protocol: 'tcp' | 'tcp6' | 'udp' | 'udp6'; address: string; port: number }[];
  /** Drift from the image: paths added, changed or deleted in the container's writable layer. */
  drift: { added: string[]; changed: string[]; deleted: string[] };
}

/**
 * A Debian security tracker state, kept as the tracker spells it. OSV advisories are always
 * `fixed` (with ranges) or `unfixed` (no fixed event).
 */
export type AdvisoryStatus = 'fixed' | 'unfixed' | 'not-affected' | 'postponed' | 'ignored' | 'undetermined';

/** One advisory about one package in one ecosystem (and, for OS packages, one release). */
export interface Advisory {
  /** CVE-2024-1234, DSA-5555-1, GHSA-xxxx, PYSEC-... */
  id: string;
  /** Other ids of the same flaw (OSV aliases, the DSA naming a CVE). */
  aliases?: string[];
  ecosystem: Ecosystem;
  /** For OS ecosystems the release it applies to: `debian:bookworm`; absent for npm/PyPI. */
  release?: string;
  /** Source package for deb; the package name for npm and PyPI (PyPI names normalised per PEP 503). */
  package: string;
  status: AdvisoryStatus;
  /** For deb: the first fixed version. */
  fixedVersion?: string;
  /** For npm/PyPI: OSV `ECOSYSTEM`/`SEMVER` ranges of affected versions. */
  ranges?: AffectedRange[];
  /** Explicitly listed affected versions (OSV `versions`). */
  versions?: string[];
  severity: Severity;
  /** Who said so: `debian` (urgency/tracker), `osv`, `nvd`... The distribution wins. */
  severitySource: string;
  summary?: string;
  /** Where the fact came from, for audit: `debian-tracker`, `osv`, `debian-archive-changelog`. */
  source: string;
}

export interface AffectedRange {
  type: 'ECOSYSTEM' | 'SEMVER';
  /** OSV events in order: introduced / fixed / last_affected. */
  events: ({ introduced: string } | { fixed: string } | { last_affected: string })[];
}

/** A versioned, immutable set of advisories. */
export interface FeedSnapshot {
  /** Monotonic, assigned when stored: 1, 2, 3... */
  version: number;
  createdAt: string;
  /** What it was built from (importer names, file digests, archive Release dates). */
  sources: string[];
  advisories: Advisory[];
}

export interface VulnerabilityFinding {
  advisoryId: string;
  aliases?: string[];
  ecosystem: Ecosystem;
  /** The installed binary package (what the user sees in `dpkg -l`). */
  package: string;
  /** The package the advisory names (source package for deb). */
  advisoryPackage: string;
  installedVersion: string;
  /** null while unfixed. */
  fixedVersion: string | null;
  status: AdvisoryStatus;
  severity: Severity;
  severitySource: string;
  summary?: string;
  /** The command that fixes it, e.g. `apt-get install --only-upgrade libssl3`. */
  remediation: string | null;
}

/** A compliance check result. Ids are stable and documented in docs/advisor.md. */
export interface ComplianceFinding {
  /** e.g. `BERTH-PASSWORD-MAX-DAYS`, `BERTH-SSH-ROOT-LOGIN`. */
  checkId: string;
  title: string;
  severity: Severity;
  /** What was seen, concretely (file and line, the offending value). */
  detail: string;
  remediation: string;
}

/** What a compliance check may read. Images give files + config; live containers add runtime. */
export interface ComplianceSubject {
  /** Absolute path of the root filesystem to read (read-only use). */
  rootfs: string;
  /** The image config (User, Env, Healthcheck...) in Docker's inspect shape. */
  config: {
    User?: string;
    Env?: string[];
    Healthcheck?: { Test?: string[] } | null;
  };
  /** Present for live containers: HostConfig in Docker's inspect shape, and runtime state. */
  hostConfig?: Record<string, unknown>;
  runtime?: RuntimeState;
  /** The image's package inventory (to tell whether an SSH server is installed). */
  inventory: Inventory;
}
