/** The command that installs the fixed version, per ecosystem; null when there is no fix. */
import type { Ecosystem } from '../model.js';

/** Quotes a word for a POSIX shell when it needs it. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9@%+=:,./_-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function remediationCommand(ecosystem: Ecosystem, opts: { name: string; fixedVersion: string | null; binaries?: string[] }): string | null {
  if (opts.fixedVersion === null) return null;
  switch (ecosystem) {
    case 'deb':
      // Every installed binary of the source: they usually depend on each other's exact version.
      return `apt-get install --only-upgrade ${(opts.binaries ?? [opts.name]).map(shellWord).join(' ')}`;
    case 'npm':
      return `npm install ${shellWord(`${opts.name}@${opts.fixedVersion}`)}`;
    case 'PyPI':
      return `pip install '${`${opts.name}>=${opts.fixedVersion}`.replace(/'/g, `'\\''`)}'`;
    case 'apk':
      return `apk add --upgrade ${shellWord(opts.name)}`;
    case 'rpm':
      return `dnf upgrade ${shellWord(opts.name)}`;
  }
}
