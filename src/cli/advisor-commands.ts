import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Command, Option } from 'commander';
import { AdminClient } from './admin-client.js';
import type { Report } from '../server/advisor/report.js';
import type { Alert, Exemption, AdvisorPolicy } from '../server/advisor/tenant-records.js';
import type { FeedSummary } from '../server/advisor/advisor-db.js';
import type { RuntimeState } from '../server/advisor/model.js';

const DEFAULT_HOST = 'unix:///var/run/berth.sock';

function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('   ').trimEnd()).join('\n');
}

async function act(host: string, action: (client: AdminClient) => Promise<string>): Promise<void> {
  try {
    const out = await action(new AdminClient(host));
    if (out) process.stdout.write(`${out}\n`);
  } catch (err) {
    process.stderr.write(`berth: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

const enc = encodeURIComponent;
const tenantQuery = (tenant: string | undefined): string => (tenant ? `?tenant=${enc(tenant)}` : '');

/** "30d", "12h", "90m" from now, or an RFC 3339 time, as RFC 3339. */
export function parseExpiry(text: string, now = Date.now()): string {
  const match = /^(\d+)([smhdw])$/.exec(text.trim());
  if (match) {
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[match[2] as 's' | 'm' | 'h' | 'd' | 'w'];
    return new Date(now + Number(match[1]) * unit).toISOString();
  }
  if (Number.isNaN(Date.parse(text))) throw new Error(`invalid expiry "${text}": use a duration like 30d or 12h, or a time like 2026-12-31T00:00:00Z`);
  return new Date(text).toISOString();
}

/** The readable form of a report: a header, vulnerabilities, compliance findings. */
export function formatReport(report: Report & { runtime?: RuntimeState | null }): string {
  const s = report.summary;
  const lines = [
    `${report.subject.kind} ${report.subject.name} (${report.subject.id.replace(/^sha256:/, '').slice(0, 12)})`,
    `os: ${report.os ?? 'unknown'}   packages: ${report.packages}   inventory: ${report.inventoryTakenAt}   feed: ${report.feedVersion ?? 'none (import or build one: berth advisor feed)'}`,
    `findings: ${s.critical} critical, ${s.high} high, ${s.medium} medium, ${s.low} low, ${s.negligible} negligible, ${s.unknown} unknown (exempted not counted)`,
    '',
  ];
  if (report.vulnerabilities.length === 0) lines.push('no vulnerabilities found');
  else {
    lines.push(
      table([
        ['SEVERITY', 'ID', 'PACKAGE', 'INSTALLED', 'FIXED', 'STATUS', 'REMEDIATION'],
        ...report.vulnerabilities.map((v) => [
          v.severity,
          v.advisoryId,
          v.package,
          v.installedVersion,
          v.fixedVersion ?? '-',
          v.exemption ? `exempt (${v.exemption.id})` : v.status,
          v.remediation ?? '-',
        ]),
      ]),
    );
  }
  lines.push('');
  if (report.compliance.length === 0) lines.push('no compliance findings');
  else {
    lines.push(
      table([
        ['SEVERITY', 'CHECK', 'DETAIL', 'REMEDIATION'],
        ...report.compliance.map((c) => [c.severity, c.exemption ? `${c.checkId} (exempt)` : c.checkId, c.detail, c.remediation]),
      ]),
    );
  }
  if (report.runtime) {
    lines.push('', `processes: ${report.runtime.processes.length}   listening: ${report.runtime.listening.map((l) => `${l.protocol}/${l.port}`).join(', ') || 'none'}`);
    const d = report.runtime.drift;
    lines.push(`drift from the image: ${d.added.length} added, ${d.changed.length} changed, ${d.deleted.length} deleted`);
  }
  return lines.join('\n');
}

/** `berth advisor ...`: the Vulnerability Advisor for the operator, over the local socket. */
export function advisorCommand(): Command {
  const advisor = new Command('advisor').description('the Vulnerability Advisor: feeds, reports, SBOMs, policy, exemptions and alerts');
  const host = (): Option => new Option('-H, --host <address>', "Berth's local socket").default(DEFAULT_HOST);
  const tenant = (): Option => new Option('--tenant <name>', "act in a tenant's scope (default: the operator's own)");

  const feed = advisor.command('feed').description('advisory feeds (versioned; each import or build makes a new version)');
  feed
    .command('import')
    .description('import Debian security tracker JSON and/or OSV JSON files as a new feed version')
    .option('--debian-tracker <file>', 'the tracker JSON (https://security-tracker.debian.org/tracker/data/json)')
    .option('--osv <files...>', 'OSV JSON files (one record or an array each)')
    .option('--replace', 'start the new version empty instead of from the last one', false)
    .addOption(host())
    .action(async (o: { debianTracker?: string; osv?: string[]; replace: boolean; host: string }) =>
      act(o.host, async (client) => {
        const sources: { Format: string; Name: string; Data: unknown }[] = [];
        if (o.debianTracker) sources.push({ Format: 'debian-tracker', Name: basename(o.debianTracker), Data: JSON.parse(await readFile(o.debianTracker, 'utf8')) });
        for (const file of o.osv ?? []) sources.push({ Format: 'osv', Name: basename(file), Data: JSON.parse(await readFile(file, 'utf8')) });
        if (sources.length === 0) throw new Error('give --debian-tracker FILE and/or --osv FILE...');
        const summary = await client.call<FeedSummary>('POST', '/berth/v1/advisor/feeds', { Sources: sources, Replace: o.replace });
        return `feed version ${summary.version}: ${summary.advisories} advisories`;
      }),
    );
  feed
    .command('build')
    .description("build a feed from a Debian security archive: its package index gives fixed versions, each package's changelog.Debian the CVEs")
    .requiredOption('--mirror <url>', 'archive base URL, e.g. http://deb.debian.org/debian-security')
    .requiredOption('--suite <suite>', 'e.g. bookworm-security')
    .option('--release <release>', 'release the advisories apply to (default debian:<suite without -security>)')
    .option('--source <packages...>', 'only these source packages')
    .option('--replace', 'start the new version empty instead of from the last one', false)
    .addOption(host())
    .action(async (o: { mirror: string; suite: string; release?: string; source?: string[]; replace: boolean; host: string }) =>
      act(o.host, async (client) => {
        const summary = await client.call<FeedSummary>('POST', '/berth/v1/advisor/feeds/build', {
          Mirror: o.mirror,
          Suite: o.suite,
          ...(o.release ? { Release: o.release } : {}),
          ...(o.source ? { SourcePackages: o.source } : {}),
          Replace: o.replace,
        });
        return `feed version ${summary.version}: ${summary.advisories} advisories`;
      }),
    );
  feed
    .command('ls')
    .description('list feed versions')
    .addOption(host())
    .action(async (o: { host: string }) =>
      act(o.host, async (client) => {
        const feeds = await client.call<FeedSummary[]>('GET', '/berth/v1/advisor/feeds');
        return table([['VERSION', 'CREATED', 'ADVISORIES', 'SOURCES'], ...feeds.map((f) => [String(f.version), f.createdAt, String(f.advisories), f.sources.join(', ')])]);
      }),
    );

  advisor
    .command('image <ref>')
    .description("an image's findings: vulnerabilities with installed and fixed versions and the fix, and compliance")
    .addOption(tenant())
    .option('--json', 'print the report as JSON', false)
    .addOption(host())
    .action(async (ref: string, o: { tenant?: string; json: boolean; host: string }) =>
      act(o.host, async (client) => {
        const report = await client.call<Report>('GET', `/berth/v1/advisor/images/${enc(ref)}/report${tenantQuery(o.tenant)}`);
        return o.json ? JSON.stringify(report, null, 2) : formatReport(report);
      }),
    );

  advisor
    .command('container <id>')
    .description("a container's findings from its last scan (scanned now if never), with its processes, ports and drift")
    .addOption(tenant())
    .option('--json', 'print the report as JSON', false)
    .addOption(host())
    .action(async (id: string, o: { tenant?: string; json: boolean; host: string }) =>
      act(o.host, async (client) => {
        const report = await client.call<Report & { runtime: RuntimeState | null }>('GET', `/berth/v1/advisor/containers/${enc(id)}/report${tenantQuery(o.tenant)}`);
        return o.json ? JSON.stringify(report, null, 2) : formatReport(report);
      }),
    );

  advisor
    .command('scan [container]')
    .description('inventory a live container now (or every running container) and report')
    .addOption(tenant())
    .option('--json', 'print the report as JSON', false)
    .addOption(host())
    .action(async (id: string | undefined, o: { tenant?: string; json: boolean; host: string }) =>
      act(o.host, async (client) => {
        if (id === undefined) {
          await client.call('POST', '/berth/v1/advisor/scan');
          return 'scanned every running container';
        }
        const report = await client.call<Report>('POST', `/berth/v1/advisor/containers/${enc(id)}/scan${tenantQuery(o.tenant)}`);
        return o.json ? JSON.stringify(report, null, 2) : formatReport(report);
      }),
    );

  advisor
    .command('sbom <ref>')
    .description("an image's software bill of materials")
    .addOption(new Option('--format <format>', 'cyclonedx (1.5 JSON) or spdx (2.3 JSON)').choices(['cyclonedx', 'spdx']).default('cyclonedx'))
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .addOption(tenant())
    .addOption(host())
    .action(async (ref: string, o: { format: string; output?: string; tenant?: string; host: string }) =>
      act(o.host, async (client) => {
        const q = `?format=${o.format}${o.tenant ? `&tenant=${enc(o.tenant)}` : ''}`;
        const sbom = await client.call<unknown>('GET', `/berth/v1/advisor/images/${enc(ref)}/sbom${q}`);
        const text = JSON.stringify(sbom, null, 2);
        if (o.output) {
          await writeFile(o.output, `${text}\n`);
          return '';
        }
        return text;
      }),
    );

  const exempt = advisor.command('exempt').description("exemptions: findings the operator accepted for a tenant's image");
  exempt
    .command('add <tenant> <image> <finding>')
    .description('exempt a finding (CVE or advisory id, or compliance check id) of an image ("*": every image) for a tenant')
    .requiredOption('--reason <text>', 'why it is accepted')
    .option('--expires <when>', 'a duration (30d, 12h) or an RFC 3339 time; default: never')
    .option('--by <name>', 'who accepts it', 'operator')
    .addOption(host())
    .action(async (tenantName: string, image: string, finding: string, o: { reason: string; expires?: string; by: string; host: string }) =>
      act(o.host, async (client) => {
        const e = await client.call<Exemption>('POST', '/berth/v1/advisor/exemptions', {
          Tenant: tenantName,
          Image: image,
          Finding: finding,
          Reason: o.reason,
          ...(o.expires ? { Expires: parseExpiry(o.expires) } : {}),
          By: o.by,
        });
        return `exemption ${e.id}: ${e.findingId} on ${e.imageRef} for ${tenantName}${e.expiresAt ? ` until ${e.expiresAt}` : ''}`;
      }),
    );
  exempt
    .command('ls')
    .description("list a tenant's exemptions")
    .addOption(tenant())
    .addOption(host())
    .action(async (o: { tenant?: string; host: string }) =>
      act(o.host, async (client) => {
        const list = await client.call<Exemption[]>('GET', `/berth/v1/advisor/exemptions${tenantQuery(o.tenant)}`);
        return table([
          ['ID', 'IMAGE', 'FINDING', 'EXPIRES', 'BY', 'REASON'],
          ...list.map((e) => [e.id, e.imageRef, e.findingId, e.expiresAt ?? 'never', e.createdBy, e.reason]),
        ]);
      }),
    );
  exempt
    .command('rm <id>')
    .description('remove an exemption')
    .addOption(tenant())
    .addOption(host())
    .action(async (id: string, o: { tenant?: string; host: string }) =>
      act(o.host, async (client) => {
        await client.call('DELETE', `/berth/v1/advisor/exemptions/${enc(id)}${tenantQuery(o.tenant)}`);
        return `removed exemption ${id}`;
      }),
    );

  advisor
    .command('policy <tenant>')
    .description("show or set a tenant's policy: refuse containers from images with findings at or above a severity")
    .option('--block-severity <severity>', 'critical, high, medium, low, negligible, unknown, or none to stop blocking')
    .addOption(host())
    .action(async (tenantName: string, o: { blockSeverity?: string; host: string }) =>
      act(o.host, async (client) => {
        const path = `/berth/v1/advisor/policies/${enc(tenantName)}`;
        const policy =
          o.blockSeverity === undefined
            ? await client.call<AdvisorPolicy>('GET', path)
            : await client.call<AdvisorPolicy>('PUT', path, { BlockSeverity: o.blockSeverity });
        return policy.blockSeverity === null
          ? `tenant ${tenantName}: containers are not blocked by findings`
          : `tenant ${tenantName}: creating containers from images with findings at or above ${policy.blockSeverity} is refused (exempted findings excepted)`;
      }),
    );

  advisor
    .command('alerts')
    .description('containers that became vulnerable or non-compliant (after a feed update, drift or a rescan)')
    .addOption(tenant())
    .addOption(host())
    .action(async (o: { tenant?: string; host: string }) =>
      act(o.host, async (client) => {
        const alerts = await client.call<Alert[]>('GET', `/berth/v1/advisor/alerts${tenantQuery(o.tenant)}`);
        return table([
          ['TIME', 'CONTAINER', 'ACTION', 'CAUSE', 'FINDINGS'],
          ...alerts.map((a) => [
            a.time,
            a.containerName,
            a.action,
            a.cause,
            a.findings
              .slice(0, 5)
              .map((f) => `${f.id}${f.package ? ` (${f.package})` : ''}`)
              .join(', ') + (a.findings.length > 5 ? ` and ${a.findings.length - 5} more` : ''),
          ]),
        ]);
      }),
    );

  advisor
    .command('stats')
    .description('what the advisor did: inventories read, matches, the last feed re-match')
    .addOption(host())
    .action(async (o: { host: string }) => act(o.host, async (client) => JSON.stringify(await client.call('GET', '/berth/v1/advisor/stats'), null, 2)));

  return advisor;
}
