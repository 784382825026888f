import type { ComplianceCheck, Violation } from './check.js';

/**
 * Secrets handed to a container in its environment end up in the image config (`docker
 * inspect`, every registry that stores the image) and in every child process. Flagged by
 * name (PASSWORD, PASSWD or SECRET anywhere; TOKEN, PASS, CREDENTIAL(S), APIKEY, PRIVATEKEY,
 * ACCESSKEY as a whole `_`-separated word; KEY as the last word or before ID, as in
 * API_KEY and AWS_ACCESS_KEY_ID) or by value (a PEM private key, an AWS access key id). The
 * detail names the variable and the reason, never the value.
 *
 * Not flagged: empty values; `*_FILE`, `*_PATH`, `*_DIR` variables (the official images'
 * convention for a path to a secret file); names that hold public material (GPG_KEY/GPG_KEYS
 * fingerprints in the official language images, anything with PUBLIC).
 */

/** Words specific enough to match anywhere in a name (DBPASSWORD, CLIENT_SECRET_ID). */
const SECRET_SUBSTRING = /PASSWORD|PASSWD|SECRET/;
/** Words that must be a whole `_`-separated part: TOKEN, not TOKENIZERS_PARALLELISM. */
const SECRET_PARTS = new Set(['TOKEN', 'PASS', 'CREDENTIAL', 'CREDENTIALS', 'APIKEY', 'PRIVATEKEY', 'ACCESSKEY']);
const PUBLIC_NAME = /(PUBLIC|^GPG_KEYS?$|_FILE$|_PATH$|_DIR$)/;

function nameSuggestsSecret(name: string): boolean {
  const upper = name.toUpperCase();
  if (PUBLIC_NAME.test(upper)) return false;
  if (SECRET_SUBSTRING.test(upper)) return true;
  const parts = upper.split(/[_.-]+/);
  if (parts.some((p) => SECRET_PARTS.has(p))) return true;
  // ..._KEY, API_KEY, ACCESS_KEY_ID (AWS and many others).
  const keyAt = parts.lastIndexOf('KEY');
  return keyAt > 0 && (keyAt === parts.length - 1 || parts[keyAt + 1] === 'ID');
}
const PRIVATE_KEY_VALUE = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/;
const AWS_ACCESS_KEY_VALUE = /(?:^|[^A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?:$|[^A-Z0-9])/;

export function secretEnvironment(env: readonly string[]): Violation[] {
  const violations: Violation[] = [];
  for (const entry of env) {
    const eq = entry.indexOf('=');
    const name = eq === -1 ? entry : entry.slice(0, eq);
    const value = eq === -1 ? '' : entry.slice(eq + 1);
    if (value === '') continue;
    let reason: string | undefined;
    if (PRIVATE_KEY_VALUE.test(value)) reason = 'its value is a private key';
    else if (AWS_ACCESS_KEY_VALUE.test(value)) reason = 'its value looks like an AWS access key id';
    else if (nameSuggestsSecret(name)) reason = 'its name suggests a secret';
    if (reason !== undefined) violations.push({ detail: `environment variable ${name} (${reason}; value not shown)` });
  }
  return violations;
}

export const envSecrets: ComplianceCheck = {
  id: 'BERTH-ENV-SECRET',
  title: 'A secret is set in an environment variable',
  severity: 'high',
  appliesTo: ['image', 'container'],
  remediation: 'Remove the secret from ENV / -e; mount it as a file (a secret or a read-only volume) and pass its path (e.g. POSTGRES_PASSWORD_FILE), and rotate the exposed value.',
  async run(ctx) {
    return secretEnvironment(ctx.subject.config.Env ?? []);
  },
};
