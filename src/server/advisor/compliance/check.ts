import { canonicalRoot, readTextInRoot } from '../../../agent/inventory/rootfs-files.js';
import type { ComplianceSubject, Severity } from '../model.js';

/**
 * One compliance check: a stable id (documented in docs/advisor-checks.md, never reused for
 * another meaning), what it applies to, and a function that reports every violation it sees
 * as a concrete detail (file and line, the offending value, never a secret's value).
 *
 * A check that has nothing to look at (no /etc/login.defs, no sshd_config) passes: there is no
 * policy to get wrong. A check never throws for a strange rootfs; a file it cannot read safely
 * is a file that is not there.
 */
export type SubjectKind = 'image' | 'container';

export interface Violation {
  detail: string;
  /** When one check covers cases of different weight (a docker.sock mount vs /srv/data). */
  severity?: Severity;
}

export interface ComplianceCheck {
  id: string;
  title: string;
  severity: Severity;
  appliesTo: SubjectKind[];
  remediation: string;
  run(context: CheckContext): Promise<Violation[]>;
}

/** What checks read, with files read once and safely (see agent/inventory/rootfs-files.ts). */
export class CheckContext {
  private readonly files = new Map<string, Promise<string | undefined>>();
  private rootPromise: Promise<string> | undefined;

  constructor(readonly subject: ComplianceSubject) {}

  /** The canonical rootfs path. */
  root(): Promise<string> {
    this.rootPromise ??= canonicalRoot(this.subject.rootfs);
    return this.rootPromise;
  }

  /** A text file inside the rootfs, undefined when absent or unsafe. */
  file(path: string): Promise<string | undefined> {
    let pending = this.files.get(path);
    if (pending === undefined) {
      pending = this.root().then((root) => readTextInRoot(root, path, 16 * 1024 * 1024));
      this.files.set(path, pending);
    }
    return pending;
  }
}

/** Lines of a config file without comments, with their 1-based line numbers. */
export function configLines(text: string, comment = '#'): { line: number; text: string }[] {
  return text
    .split('\n')
    .map((raw, i) => ({ line: i + 1, text: raw.trim() }))
    .filter((l) => l.text !== '' && !l.text.startsWith(comment));
}
