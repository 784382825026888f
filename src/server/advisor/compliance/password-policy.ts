import type { ComplianceCheck, CheckContext } from './check.js';
import { configLines } from './check.js';

/**
 * Password ageing and length, from /etc/login.defs (shadow's defaults for new accounts) and
 * the PAM password stack (/etc/pam.d/common-password on Debian, system-auth elsewhere).
 * Thresholds follow common hardening guides: passwords expire within 90 days, may not be
 * changed back at once (min 1 day), and are at least 8 characters long.
 */

const LOGIN_DEFS = '/etc/login.defs';
const PAM_FILES = ['/etc/pam.d/common-password', '/etc/pam.d/system-auth', '/etc/pam.d/password-auth'];
const MIN_LENGTH = 8;
const MAX_DAYS = 90;

/** `KEY value` settings of login.defs, first occurrence wins, with their line numbers. */
function loginDefs(text: string): Map<string, { value: string; line: number }> {
  const out = new Map<string, { value: string; line: number }>();
  for (const { line, text: l } of configLines(text)) {
    const [key, value = ''] = l.split(/\s+/, 2);
    if (key !== undefined && !out.has(key)) out.set(key, { value, line });
  }
  return out;
}

export const passwordMaxDays: ComplianceCheck = {
  id: 'BERTH-PASSWORD-MAX-DAYS',
  title: 'Passwords do not expire within 90 days',
  severity: 'low',
  appliesTo: ['image', 'container'],
  remediation: `Set PASS_MAX_DAYS ${MAX_DAYS} (or less) in ${LOGIN_DEFS}.`,
  async run(ctx) {
    const text = await ctx.file(LOGIN_DEFS);
    if (text === undefined) return [];
    const setting = loginDefs(text).get('PASS_MAX_DAYS');
    // shadow's default when the key is missing is -1: never expire.
    const days = setting === undefined ? -1 : Number(setting.value);
    if (Number.isFinite(days) && days >= 0 && days <= MAX_DAYS) return [];
    return [{ detail: setting === undefined ? `${LOGIN_DEFS}: PASS_MAX_DAYS is not set (passwords never expire)` : `${LOGIN_DEFS}:${setting.line}: PASS_MAX_DAYS ${setting.value}` }];
  },
};

export const passwordMinDays: ComplianceCheck = {
  id: 'BERTH-PASSWORD-MIN-DAYS',
  title: 'Passwords may be changed again at once',
  severity: 'low',
  appliesTo: ['image', 'container'],
  remediation: `Set PASS_MIN_DAYS 1 (or more) in ${LOGIN_DEFS}.`,
  async run(ctx) {
    const text = await ctx.file(LOGIN_DEFS);
    if (text === undefined) return [];
    const setting = loginDefs(text).get('PASS_MIN_DAYS');
    const days = setting === undefined ? 0 : Number(setting.value);
    if (Number.isFinite(days) && days >= 1) return [];
    return [{ detail: setting === undefined ? `${LOGIN_DEFS}: PASS_MIN_DAYS is not set (0 days)` : `${LOGIN_DEFS}:${setting.line}: PASS_MIN_DAYS ${setting.value}` }];
  },
};

/**
 * The minimum length new passwords get. PAM decides when a password module is configured:
 * pam_pwquality's minlen (option, else /etc/security/pwquality.conf, else 8), pam_cracklib's
 * (default 9), else pam_unix's (option, default 6). Without PAM, shadow's PASS_MIN_LEN
 * (default 5) applies.
 */
export const passwordMinLength: ComplianceCheck = {
  id: 'BERTH-PASSWORD-MIN-LENGTH',
  title: 'Passwords may be shorter than 8 characters',
  severity: 'medium',
  appliesTo: ['image', 'container'],
  remediation: `Require at least ${MIN_LENGTH} characters: add "minlen=${MIN_LENGTH}" to the pam_pwquality (or pam_unix) line of /etc/pam.d/common-password, and PASS_MIN_LEN ${MIN_LENGTH} to ${LOGIN_DEFS}.`,
  async run(ctx) {
    const found = await effectiveMinLength(ctx);
    if (found === undefined || found.length >= MIN_LENGTH) return [];
    return [{ detail: `${found.where}: minimum password length ${found.length}` }];
  },
};

async function effectiveMinLength(ctx: CheckContext): Promise<{ length: number; where: string } | undefined> {
  for (const file of PAM_FILES) {
    const text = await ctx.file(file);
    if (text === undefined) continue;
    const lines = configLines(text).filter((l) => /^password\s/.test(l.text));
    const moduleLine = (name: string) => lines.find((l) => l.text.split(/\s+/).some((w) => w === name || w.endsWith(`/${name}`)));
    const minlen = (l: { text: string }) => {
      const m = /(?:^|\s)minlen=(\d+)/.exec(l.text);
      return m ? Number(m[1]) : undefined;
    };
    const pwquality = moduleLine('pam_pwquality.so');
    if (pwquality) {
      const option = minlen(pwquality);
      if (option !== undefined) return { length: option, where: `${file}:${pwquality.line}` };
      const conf = await ctx.file('/etc/security/pwquality.conf');
      const confLine = conf === undefined ? undefined : configLines(conf).find((l) => /^minlen\s*=/.test(l.text));
      if (confLine) return { length: Number(confLine.text.split('=')[1]?.trim()), where: `/etc/security/pwquality.conf:${confLine.line}` };
      return { length: 8, where: `${file}:${pwquality.line} (pam_pwquality default)` };
    }
    const cracklib = moduleLine('pam_cracklib.so');
    if (cracklib) return { length: minlen(cracklib) ?? 9, where: `${file}:${cracklib.line}` };
    const unix = moduleLine('pam_unix.so');
    if (unix) {
      const option = minlen(unix);
      return { length: option ?? 6, where: `${file}:${unix.line}${option === undefined ? ' (pam_unix default)' : ''}` };
    }
  }
  const defs = await ctx.file(LOGIN_DEFS);
  if (defs === undefined) return undefined;
  const setting = loginDefs(defs).get('PASS_MIN_LEN');
  if (setting === undefined) return { length: 5, where: `${LOGIN_DEFS}: PASS_MIN_LEN not set (default)` };
  return { length: Number(setting.value) || 0, where: `${LOGIN_DEFS}:${setting.line}` };
}

