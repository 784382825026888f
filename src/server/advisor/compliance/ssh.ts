import { posix } from 'node:path';
import { listDirInRoot } from '../../../agent/inventory/rootfs-files.js';
import type { CheckContext, ComplianceCheck } from './check.js';
import { configLines } from './check.js';

/**
 * SSH servers in containers: usually a sign that the container is treated as a VM (use
 * `docker exec` instead), and a network-facing login service with its own configuration.
 */

const SSH_SERVER_PACKAGES = new Set(['openssh-server', 'dropbear', 'dropbear-bin', 'tinysshd']);
const SSH_DAEMONS = new Set(['sshd', 'dropbear', 'tinysshd']);
const SSHD_CONFIG = '/etc/ssh/sshd_config';

export const sshServerInstalled: ComplianceCheck = {
  id: 'BERTH-SSH-SERVER-INSTALLED',
  title: 'An SSH server is installed',
  severity: 'medium',
  appliesTo: ['image', 'container'],
  remediation: 'Remove the SSH server (apt-get purge openssh-server / apk del dropbear) and use `docker exec` for shell access.',
  async run(ctx) {
    return ctx.subject.inventory.packages
      .filter((p) => (p.ecosystem === 'deb' || p.ecosystem === 'apk' || p.ecosystem === 'rpm') && SSH_SERVER_PACKAGES.has(p.name))
      .map((p) => ({ detail: `package ${p.name} ${p.version} (${p.location})` }));
  },
};

export const sshServerRunning: ComplianceCheck = {
  id: 'BERTH-SSH-SERVER-RUNNING',
  title: 'An SSH server is running',
  severity: 'high',
  appliesTo: ['container'],
  remediation: 'Stop the SSH server and remove it from the image; use `docker exec` for shell access.',
  async run(ctx) {
    return (ctx.subject.runtime?.processes ?? [])
      .filter((p) => SSH_DAEMONS.has(posix.basename(p.command.split(' ')[0] ?? '').replace(/:$/, '')))
      .map((p) => ({ detail: `process ${p.pid} (${p.user}): ${p.command.slice(0, 200)}` }));
  },
};

/** A global sshd_config setting: the first occurrence wins, as in sshd; Match blocks end the global part. */
interface SshdSetting {
  value: string;
  where: string;
}

/**
 * The global settings of sshd_config, following `Include` (relative paths are under
 * /etc/ssh, globs in the last path component only) to a small depth.
 */
async function sshdSettings(ctx: CheckContext): Promise<Map<string, SshdSetting> | undefined> {
  const main = await ctx.file(SSHD_CONFIG);
  if (main === undefined) return undefined;
  const settings = new Map<string, SshdSetting>();
  const visit = async (file: string, text: string, depth: number): Promise<boolean> => {
    for (const { line, text: l } of configLines(text)) {
      const [rawKey = '', ...rest] = l.split(/\s+|=/).filter((w) => w !== '');
      const key = rawKey.toLowerCase();
      if (key === 'match') return false;
      if (key === 'include' && depth < 4) {
        for (const pattern of rest) {
          for (const included of await expandInclude(ctx, pattern)) {
            const body = await ctx.file(included);
            if (body !== undefined && !(await visit(included, body, depth + 1))) return false;
          }
        }
        continue;
      }
      if (!settings.has(key)) settings.set(key, { value: (rest[0] ?? '').toLowerCase(), where: `${file}:${line}` });
    }
    return true;
  };
  await visit(SSHD_CONFIG, main, 0);
  return settings;
}

async function expandInclude(ctx: CheckContext, pattern: string): Promise<string[]> {
  const absolute = pattern.startsWith('/') ? pattern : posix.join('/etc/ssh', pattern);
  const dir = posix.dirname(absolute);
  const base = posix.basename(absolute);
  if (!/[*?[]/.test(base)) return [absolute];
  const regex = new RegExp(`^${base.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  const { entries } = await listDirInRoot(await ctx.root(), dir);
  return entries
    .filter((e) => regex.test(e.name))
    .map((e) => posix.join(dir, e.name))
    .sort();
}

function sshdSettingCheck(opts: { id: string; title: string; severity: ComplianceCheck['severity']; key: string; bad: string[]; defaultValue: string; remediation: string }): ComplianceCheck {
  return {
    id: opts.id,
    title: opts.title,
    severity: opts.severity,
    appliesTo: ['image', 'container'],
    remediation: opts.remediation,
    async run(ctx) {
      const settings = await sshdSettings(ctx);
      if (settings === undefined) return [];
      const setting = settings.get(opts.key.toLowerCase());
      const value = setting?.value ?? opts.defaultValue;
      if (!opts.bad.includes(value)) return [];
      return [{ detail: setting === undefined ? `${SSHD_CONFIG}: ${opts.key} not set (sshd's default is ${opts.defaultValue})` : `${setting.where}: ${opts.key} ${setting.value}` }];
    },
  };
}

export const sshRootLogin = sshdSettingCheck({
  id: 'BERTH-SSH-ROOT-LOGIN',
  title: 'sshd allows root to log in with a password',
  severity: 'high',
  key: 'PermitRootLogin',
  bad: ['yes'],
  defaultValue: 'prohibit-password',
  remediation: `Set "PermitRootLogin no" in ${SSHD_CONFIG}.`,
});

export const sshPasswordAuthentication = sshdSettingCheck({
  id: 'BERTH-SSH-PASSWORD-AUTH',
  title: 'sshd accepts password authentication',
  severity: 'medium',
  key: 'PasswordAuthentication',
  bad: ['yes'],
  defaultValue: 'yes',
  remediation: `Set "PasswordAuthentication no" in ${SSHD_CONFIG} and use keys.`,
});

export const sshEmptyPasswords = sshdSettingCheck({
  id: 'BERTH-SSH-EMPTY-PASSWORDS',
  title: 'sshd accepts empty passwords',
  severity: 'critical',
  key: 'PermitEmptyPasswords',
  bad: ['yes'],
  defaultValue: 'no',
  remediation: `Set "PermitEmptyPasswords no" in ${SSHD_CONFIG}.`,
});
