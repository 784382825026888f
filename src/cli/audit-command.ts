import { Command, Option } from 'commander';
import { AdminClient, AdminError } from './admin-client.js';

interface AuditEntryView {
  Seq: number;
  Time: string;
  Tenant: string;
  Credential: string;
  Method: string;
  Path: string;
  Object: string | null;
  RequestId: string;
  Result: { Time: string; Status: number; Error?: string } | null;
}

const DEFAULT_HOST = 'unix:///var/run/berth.sock';

/** Cuts a cell so one long path or message does not stretch every row of the table. */
const cell = (text: string, width: number): string => (text.length > width ? `${text.slice(0, width - 1)}…` : text);

function render(entries: AuditEntryView[]): string {
  const rows = [['TIME', 'TENANT', 'CREDENTIAL', 'CALL', 'OBJECT', 'RESULT', 'ERROR']];
  for (const e of entries) {
    rows.push([
      e.Time,
      e.Tenant === '' ? '(none)' : e.Tenant,
      cell(e.Credential, 28),
      cell(`${e.Method} ${e.Path}`, 60),
      cell(e.Object ?? '', 24),
      e.Result ? String(e.Result.Status) : 'unknown',
      cell(e.Result?.Error ?? '', 80),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** `berth audit`: the operator reads who changed what, newest first. */
export function auditCommand(): Command {
  return new Command('audit')
    .description('show the audit log of mutating calls, newest first (operator only, over the local socket)')
    .addOption(new Option('-H, --host <address>', 'Berth\'s local socket').default(DEFAULT_HOST))
    .option('--tenant <name>', 'only this tenant\'s calls ("default" is the operator\'s scope)')
    .option('--since <time>', 'only calls at or after TIME: RFC 3339, unix seconds, or a duration such as 1h (that long ago)')
    .option('--until <time>', 'only calls at or before TIME')
    .option('--limit <n>', 'at most this many entries', '100')
    .option('--json', 'print the entries as JSON')
    .action(async (options: { host: string; tenant?: string; since?: string; until?: string; limit: string; json?: boolean }) => {
      try {
        const query = new URLSearchParams({ limit: options.limit });
        if (options.tenant !== undefined) query.set('tenant', options.tenant);
        if (options.since !== undefined) query.set('since', options.since);
        if (options.until !== undefined) query.set('until', options.until);
        const entries = await new AdminClient(options.host).call<AuditEntryView[]>('GET', `/berth/v1/audit?${query.toString()}`);
        process.stdout.write(`${options.json ? JSON.stringify(entries, null, 2) : render(entries)}\n`);
      } catch (err) {
        process.stderr.write(`berth: ${err instanceof AdminError || err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
      }
    });
}
