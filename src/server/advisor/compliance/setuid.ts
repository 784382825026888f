import { lstatSync } from 'node:fs';
import { posix } from 'node:path';
import { walkRootfs } from '../../../agent/inventory/walk.js';
import type { ComplianceCheck, Violation } from './check.js';

/**
 * setuid/setgid files a distribution does not ship: each is a way to gain privileges inside
 * the container (and with user namespaces off, as root on the host's kernel).
 *
 * The allowlist is what Debian, Ubuntu and Alpine install setuid or setgid in their own
 * packages (shadow's passwd/su/chage..., util-linux's mount, sudo, openssh's ssh-keysign,
 * dbus, polkit, fuse, iputils on old releases, crontab, mail locking, utempter, postfix's
 * postdrop, busybox-suid). Paths are compared after mapping /bin, /sbin and /lib to their
 * /usr counterparts, so merged-/usr and classic layouts match alike. Anything else setuid or
 * setgid is reported with its mode and owner.
 */
export const SETUID_ALLOWLIST: ReadonlySet<string> = new Set([
  '/usr/bin/at',
  '/usr/bin/bsd-write',
  '/usr/bin/chage',
  '/usr/bin/chfn',
  '/usr/bin/chsh',
  '/usr/bin/crontab',
  '/usr/bin/dotlockfile',
  '/usr/bin/expiry',
  '/usr/bin/fusermount',
  '/usr/bin/fusermount3',
  '/usr/bin/gpasswd',
  '/usr/bin/mlocate',
  '/usr/bin/mount',
  '/usr/bin/newgidmap',
  '/usr/bin/newgrp',
  '/usr/bin/newuidmap',
  '/usr/bin/passwd',
  '/usr/bin/ping',
  '/usr/bin/ping6',
  '/usr/bin/pkexec',
  '/usr/bin/plocate',
  '/usr/bin/ssh-agent',
  '/usr/bin/su',
  '/usr/bin/sudo',
  '/usr/bin/umount',
  '/usr/bin/wall',
  '/usr/bin/write',
  '/usr/bin/bbsuid',
  '/usr/lib/dbus-1.0/dbus-daemon-launch-helper',
  '/usr/lib/eject/dmcrypt-get-device',
  '/usr/lib/openssh/ssh-keysign',
  '/usr/lib/policykit-1/polkit-agent-helper-1',
  '/usr/lib/polkit-1/polkit-agent-helper-1',
  '/usr/lib/x86_64-linux-gnu/utempter/utempter',
  '/usr/lib/aarch64-linux-gnu/utempter/utempter',
  '/usr/libexec/openssh/ssh-keysign',
  '/usr/sbin/pam_extrausers_chkpwd',
  '/usr/sbin/postdrop',
  '/usr/sbin/postqueue',
  '/usr/sbin/unix_chkpwd',
]);

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;

/** /bin/su and /usr/bin/su are the same file on merged-/usr systems and the same program elsewhere. */
function canonicalUsrPath(path: string): string {
  return /^\/(bin|sbin|lib)\//.test(path) ? `/usr${path}` : path;
}

export const unexpectedSetuid: ComplianceCheck = {
  id: 'BERTH-SETUID-UNEXPECTED',
  title: 'An unexpected setuid or setgid file',
  severity: 'medium',
  appliesTo: ['image', 'container'],
  remediation: 'Remove the setuid/setgid bit (chmod u-s,g-s <file>) in the Dockerfile, or remove the file.',
  async run(ctx) {
    const root = await ctx.root();
    const violations: Violation[] = [];
    const result = await walkRootfs(root, '/', {
      directory(_hostPath, path, entries, openPath) {
        for (const entry of entries) {
          if (!entry.isFile()) continue;
          let st;
          try {
            // Through the walk's open descriptor: no path resolution a live container could race.
            st = lstatSync(`${openPath}/${entry.name}`);
          } catch {
            continue; // gone meanwhile
          }
          if ((st.mode & (S_ISUID | S_ISGID)) === 0) continue;
          const file = posix.join(path, entry.name);
          if (SETUID_ALLOWLIST.has(canonicalUsrPath(file))) continue;
          const bits = [st.mode & S_ISUID ? 'setuid' : '', st.mode & S_ISGID ? 'setgid' : ''].filter((b) => b !== '').join('+');
          violations.push({ detail: `${file}: ${bits}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}, owner ${st.uid}:${st.gid}` });
        }
        return undefined;
      },
    });
    if (result.truncated) violations.push({ detail: `the file system is too large to check completely (stopped after ${result.entries} entries)`, severity: 'low' });
    return violations;
  },
};
