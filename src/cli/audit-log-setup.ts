import { join } from 'node:path';
import type { Logger } from '../common/logging.js';
import { DEFAULT_AUDIT_RETENTION, type AuditLog } from '../server/audit/audit-log.js';
import { SqliteAuditLog } from '../server/audit/sqlite-audit-log.js';

/** How often retention runs while Berth is up (it also runs at start). */
const PRUNE_INTERVAL_MS = 60 * 60 * 1000;

/**
 * Opens `<data-root>/audit.db` with the retention `berth up` was given, prunes it once, and
 * keeps pruning hourly. `close` stops the timer; closing the log is the caller's.
 */
export function openAuditLog(
  dataRoot: string,
  options: { auditRetentionDays?: number; auditMaxEntries?: number },
  logger: Logger,
): { log: AuditLog; close(): void } {
  const retention = {
    maxAgeDays: options.auditRetentionDays ?? DEFAULT_AUDIT_RETENTION.maxAgeDays,
    maxEntries: options.auditMaxEntries ?? DEFAULT_AUDIT_RETENTION.maxEntries,
  };
  const log = new SqliteAuditLog(join(dataRoot, 'audit.db'), retention);
  const prune = (): void => {
    log.prune().then(
      (removed) => {
        if (removed > 0) logger.info({ removed, ...retention }, 'audit log pruned');
      },
      (err: unknown) => logger.warn({ err }, 'audit log pruning failed'),
    );
  };
  prune();
  const timer = setInterval(prune, PRUNE_INTERVAL_MS);
  timer.unref();
  return { log, close: () => clearInterval(timer) };
}
