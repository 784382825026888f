import type { ComplianceCheck } from './check.js';
import { configLines } from './check.js';

/** Accounts in the image's own /etc/passwd and /etc/shadow. Password hashes are never echoed. */

export const uidZeroAccounts: ComplianceCheck = {
  id: 'BERTH-UID0-NON-ROOT',
  title: 'An account other than root has UID 0',
  severity: 'high',
  appliesTo: ['image', 'container'],
  remediation: 'Give the account its own non-zero UID (usermod -u) or remove it (userdel).',
  async run(ctx) {
    const passwd = await ctx.file('/etc/passwd');
    if (passwd === undefined) return [];
    return configLines(passwd)
      .map((l) => ({ line: l.line, fields: l.text.split(':') }))
      .filter(({ fields }) => fields[2]?.trim() === '0' && fields[0] !== 'root')
      .map(({ line, fields }) => ({ detail: `/etc/passwd:${line}: account ${fields[0]} has UID 0` }));
  },
};

/**
 * An account whose password field is empty logs in with no password at all. /etc/shadow is
 * authoritative where the passwd entry says `x`; a passwd entry with an empty field (no
 * shadow) counts too. Locked (`!`, `*`) and hashed fields are fine.
 */
export const emptyPasswords: ComplianceCheck = {
  id: 'BERTH-EMPTY-PASSWORD',
  title: 'An account has an empty password',
  severity: 'critical',
  appliesTo: ['image', 'container'],
  remediation: 'Lock the account (passwd -l <name>) or set a password; never ship an image with a passwordless account.',
  async run(ctx) {
    const violations = [];
    const shadow = await ctx.file('/etc/shadow');
    for (const { line, text } of shadow === undefined ? [] : configLines(shadow)) {
      const [name, hash] = text.split(':');
      if (name && hash === '') violations.push({ detail: `/etc/shadow:${line}: account ${name} has an empty password field` });
    }
    const passwd = await ctx.file('/etc/passwd');
    for (const { line, text } of passwd === undefined ? [] : configLines(passwd)) {
      const [name, field] = text.split(':');
      if (name && field === '') violations.push({ detail: `/etc/passwd:${line}: account ${name} has an empty password field` });
    }
    return violations;
  },
};

/**
 * The user the image (or container) runs its process as: empty, `root`, `0`, or a name whose
 * /etc/passwd entry has UID 0.
 */
export const imageUserRoot: ComplianceCheck = {
  id: 'BERTH-IMAGE-USER-ROOT',
  title: 'The process runs as root',
  severity: 'medium',
  appliesTo: ['image', 'container'],
  remediation: 'Add a non-root user and a `USER <name>` instruction to the Dockerfile (or run with `--user`).',
  async run(ctx) {
    const user = (ctx.subject.config.User ?? '').trim();
    const name = user.split(':')[0] ?? '';
    if (name === '' || name === '0' || name === 'root') {
      return [{ detail: user === '' ? 'no USER is set, so the process runs as root' : `USER is ${JSON.stringify(user)}` }];
    }
    if (/^\d+$/.test(name)) return [];
    const passwd = await ctx.file('/etc/passwd');
    const entry = passwd === undefined ? undefined : configLines(passwd).find((l) => l.text.split(':')[0] === name);
    if (entry?.text.split(':')[2]?.trim() !== '0') return [];
    return [{ detail: `USER is ${JSON.stringify(user)}, which has UID 0 (/etc/passwd:${entry.line})` }];
  },
};

/** Docker's "no healthcheck" is an absent Healthcheck or Test ["NONE"]. */
export const healthcheckMissing: ComplianceCheck = {
  id: 'BERTH-HEALTHCHECK-MISSING',
  title: 'No healthcheck is defined',
  severity: 'low',
  appliesTo: ['image', 'container'],
  remediation: 'Add a HEALTHCHECK instruction to the Dockerfile (or --health-cmd to docker run) so a hung service is noticed.',
  async run(ctx) {
    const test = ctx.subject.config.Healthcheck?.Test ?? [];
    if (test.length > 0 && test[0] !== 'NONE') return [];
    return [{ detail: test[0] === 'NONE' ? 'the healthcheck is disabled (NONE)' : 'no HEALTHCHECK is set' }];
  },
};
