/**
 * OpenPGP check of a suite's InRelease, as apt does it: gpgv against a keyring (by default
 * Debian's archive keyring, which apt itself trusts), at least one good signature and no bad
 * one. What is parsed afterwards is gpgv's output — the text the signature covers — never
 * the file as received, so nothing outside the signed part can slip in.
 */
import { spawn } from 'node:child_process';
import { invalidArgument } from '../../../../common/errors.js';

export const DEBIAN_ARCHIVE_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** The signed text of a clearsigned InRelease; throws when the signature does not hold. */
export async function verifyClearsigned(text: string, keyring: string, what: string): Promise<string> {
  const child = spawn('gpgv', ['--keyring', keyring, '--status-fd', '3', '--output', '-'], { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const status: Buffer[] = [];
  const errors: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => errors.push(c));
  (child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => status.push(c));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(text);
  let code: number;
  try {
    code = await exited;
  } catch (err) {
    throw invalidArgument(`Cannot check the signature of ${what}: gpgv is not available`, err);
  }
  const lines = Buffer.concat(status).toString('utf8').split('\n');
  const good = lines.some((l) => l.startsWith('[GNUPG:] GOODSIG '));
  const bad = lines.some((l) => l.startsWith('[GNUPG:] BADSIG '));
  if (!good || bad || (code !== 0 && code !== 2)) {
    const reason = Buffer.concat(errors).toString('utf8').split('\n').filter((l) => /BAD|no valid|Can't check|not found|invalid/i.test(l))[0]?.replace(/^gpgv:\s*/, '');
    throw invalidArgument(`${what}: the OpenPGP signature does not verify against the keyring${reason === undefined ? '' : ` (${reason.trim()})`}`);
  }
  return Buffer.concat(out).toString('utf8');
}
