import { mkdir, writeFile } from 'node:fs/promises';
import { resolve, join } from 'node:path';
import { Command, Option } from 'commander';
import { AdminClient, AdminError } from './admin-client.js';
import { POLICY_RULES } from '../server/tenancy/policy.js';
import { STRATEGIES } from '../server/scheduler/types.js';
import { formatQuota, isSizeQuota, QUOTA_NAMES, type QuotaName } from '../server/tenancy/quotas.js';

interface TenantView {
  Name: string;
  State: string;
  CreatedAt: string;
  RequireToken: boolean;
  Policy: { Allow: string[]; DefaultMemory: number; DefaultPidsLimit: number; PlacementStrategy?: string };
  Credentials: { ID: string; Kind: string; CreatedAt: string; RevokedAt?: string; Description?: string }[];
}

interface IssuedCertificate {
  ID: string;
  NotAfter: string;
  CaPem: string;
  CertPem: string;
  KeyPem: string;
  Endpoints: string[];
}

const DEFAULT_HOST = 'unix:///var/run/berth.sock';

/** 512m, 2g, 1048576: sizes as the docker CLI takes them (binary units). */
function parseSize(text: string): number {
  const match = /^(\d+)([bkmg]?)$/i.exec(text.trim());
  if (!match) throw new Error(`invalid size "${text}": use a number with an optional unit b, k, m or g`);
  const unit = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
  return Number(match[1]) * unit;
}

/** Writes a DOCKER_CERT_PATH folder (ca.pem, cert.pem, key.pem) and says how to use it. */
async function writeCertFolder(dir: string, tenant: string, issued: IssuedCertificate): Promise<string> {
  const folder = resolve(dir);
  await mkdir(folder, { recursive: true, mode: 0o700 });
  await writeFile(join(folder, 'ca.pem'), issued.CaPem, { mode: 0o644 });
  await writeFile(join(folder, 'cert.pem'), issued.CertPem, { mode: 0o644 });
  await writeFile(join(folder, 'key.pem'), issued.KeyPem, { mode: 0o600 });
  const endpoint = issued.Endpoints[0] ?? 'tcp://BERTH-HOST:2376';
  const lines = [
    `certificate ${issued.ID} for tenant ${tenant} written to ${folder} (valid until ${issued.NotAfter})`,
    '',
    'use it with a docker context:',
    `  docker context create ${tenant} --docker "host=${endpoint},ca=${join(folder, 'ca.pem')},cert=${join(folder, 'cert.pem')},key=${join(folder, 'key.pem')}"`,
    `  docker --context ${tenant} ps`,
    'or with the environment:',
    `  export DOCKER_HOST=${endpoint} DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=${folder}`,
  ];
  if (issued.Endpoints.length === 0) lines.push('', 'note: this Berth has no tcp:// listener yet; start it with -H tcp://ADDRESS:2376');
  return lines.join('\n');
}

interface QuotaOptions {
  host: string;
  containers?: string;
  cpus?: string;
  memory?: string;
  disk?: string;
  volumes?: string;
  networks?: string;
  images?: string;
  clear?: string[];
}

interface QuotaAnswer {
  Tenant: string;
  Quotas: Record<string, number>;
  Usage: Record<string, number>;
}

const quotaField = (name: QuotaName): string => name[0]!.toUpperCase() + name.slice(1);

/** The admin API's quota change from the options: sizes parsed, counts checked, --clear as null. */
function quotaChange(options: QuotaOptions): Record<string, number | null> {
  const change: Record<string, number | null> = {};
  for (const name of QUOTA_NAMES) {
    const text = options[name];
    if (text === undefined) continue;
    const value = isSizeQuota(name) ? parseSize(text) : Number(text);
    if (!Number.isFinite(value) || (name !== 'cpus' && !Number.isSafeInteger(value))) throw new Error(`invalid --${name} "${text}"`);
    change[quotaField(name)] = value;
  }
  for (const name of options.clear ?? []) {
    if (!(QUOTA_NAMES as readonly string[]).includes(name)) throw new Error(`unknown quota "${name}": use ${QUOTA_NAMES.join(', ')}`);
    change[quotaField(name as QuotaName)] = null;
  }
  return change;
}

function quotaTable(view: QuotaAnswer): string {
  const rows = [['QUOTA', 'LIMIT', 'IN USE']];
  for (const name of QUOTA_NAMES) {
    const limit = view.Quotas[quotaField(name)];
    const use = view.Usage[quotaField(name)];
    rows.push([name, limit === undefined ? 'unlimited' : formatQuota(name, limit), use === undefined ? '-' : formatQuota(name, use)]);
  }
  return table(rows);
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('   ').trimEnd()).join('\n');
}

/** Runs one admin call and prints its result; a failure prints Berth's message and sets exit code 1. */
export async function act(host: string, action: (client: AdminClient) => Promise<string>): Promise<void> {
  try {
    const out = await action(new AdminClient(host));
    if (out) process.stdout.write(`${out}\n`);
  } catch (err) {
    process.stderr.write(`berth: ${err instanceof AdminError || err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

/** Where `berth server` places the tenant's containers; absent, the server's own default. */
function placementStrategyOption(): Option {
  return new Option('--placement-strategy <strategy>', 'berth server: spread the tenant\'s containers over hosts, or binpack them (fill a host first)').choices([...STRATEGIES]);
}

/** `berth tenant ...`: the operator's commands for tenants and their credentials. */
export function tenantCommand(): Command {
  const tenant = new Command('tenant').description('manage tenants and their credentials (operator only, over the local socket)');
  const host = (): Option => new Option('-H, --host <address>', 'Berth\'s local socket').default(DEFAULT_HOST);
  tenant
    .command('create <name>')
    .description('create a tenant and issue its first client certificate into a DOCKER_CERT_PATH folder')
    .addOption(host())
    .option('--cert-dir <dir>', 'where to write ca.pem, cert.pem and key.pem (default ./<name>-certs)')
    .option('--require-token', 'every request must also carry one of the tenant\'s API tokens')
    .addOption(placementStrategyOption())
    .action(async (name: string, options: { host: string; certDir?: string; requireToken?: boolean; placementStrategy?: string }) => {
      await act(options.host, async (client) => {
        await client.call('POST', '/berth/v1/tenants', { Name: name, RequireToken: options.requireToken ?? false });
        if (options.placementStrategy !== undefined) {
          await client.call('POST', `/berth/v1/tenants/${encodeURIComponent(name)}/update`, { Policy: { PlacementStrategy: options.placementStrategy } });
        }
        const issued = await client.call<IssuedCertificate>('POST', `/berth/v1/tenants/${encodeURIComponent(name)}/certificates`, {});
        return writeCertFolder(options.certDir ?? `${name}-certs`, name, issued);
      });
    });

  tenant
    .command('ls')
    .description('list tenants')
    .addOption(host())
    .option('-q, --quiet', 'names only')
    .action(async (options: { host: string; quiet?: boolean }) => {
      await act(options.host, async (client) => {
        const list = await client.call<TenantView[]>('GET', '/berth/v1/tenants');
        if (options.quiet) return list.map((t) => t.Name).join('\n');
        const rows = [['NAME', 'STATE', 'CERTIFICATES', 'TOKENS', 'CREATED']];
        for (const t of list) {
          const live = (kind: string) => String(t.Credentials.filter((c) => c.Kind === kind && !c.RevokedAt).length);
          rows.push([t.Name, t.State, live('certificate'), live('token'), t.CreatedAt]);
        }
        return table(rows);
      });
    });

  tenant
    .command('inspect <name>')
    .description('show a tenant and its credentials as JSON')
    .addOption(host())
    .action(async (name: string, options: { host: string }) => {
      await act(options.host, async (client) => JSON.stringify(await client.call('GET', `/berth/v1/tenants/${encodeURIComponent(name)}`), null, 2));
    });

  for (const [verb, state, text] of [
    ['disable', 'disabled', 'refuse every request of a tenant (its containers keep running)'],
    ['enable', 'active', 'serve a disabled tenant again'],
  ] as const) {
    tenant
      .command(`${verb} <name>`)
      .description(text)
      .addOption(host())
      .action(async (name: string, options: { host: string }) => {
        await act(options.host, async (client) => {
          const view = await client.call<TenantView>('POST', `/berth/v1/tenants/${encodeURIComponent(name)}/update`, { State: state });
          return `${view.Name} ${view.State}`;
        });
      });
  }

  tenant
    .command('policy <name>')
    .description(`loosen what a tenant may ask for, or set its default limits; rules: ${Object.keys(POLICY_RULES).join(', ')}, cap:NAME`)
    .addOption(host())
    .option('--allow <rule...>', 'rules to allow (replaces the list; --allow none clears it)')
    .option('--default-memory <size>', 'memory limit for containers that name none (e.g. 512m, 2g)')
    .option('--default-pids <n>', 'pids limit for containers that name none')
    .addOption(placementStrategyOption())
    .action(async (name: string, options: { host: string; allow?: string[]; defaultMemory?: string; defaultPids?: string; placementStrategy?: string }) => {
      await act(options.host, async (client) => {
        const policy: Record<string, unknown> = {};
        if (options.allow) policy.Allow = options.allow.filter((a) => a !== 'none');
        if (options.defaultMemory !== undefined) policy.DefaultMemory = parseSize(options.defaultMemory);
        if (options.defaultPids !== undefined) policy.DefaultPidsLimit = Number(options.defaultPids);
        if (options.placementStrategy !== undefined) policy.PlacementStrategy = options.placementStrategy;
        const path = `/berth/v1/tenants/${encodeURIComponent(name)}`;
        const view =
          Object.keys(policy).length > 0
            ? await client.call<TenantView>('POST', `${path}/update`, { Policy: policy })
            : await client.call<TenantView>('GET', path);
        return JSON.stringify(view.Policy, null, 2);
      });
    });

  tenant
    .command('quota <name>')
    .description('set, clear or show a tenant\'s quotas and its use of them (an unset quota is unlimited)')
    .addOption(host())
    .option('--containers <n>', 'containers that may exist at once')
    .option('--cpus <n>', 'CPUs, summed over the limits of every container (fractions allowed)')
    .option('--memory <size>', 'memory, summed over the limits of every container (e.g. 4g)')
    .option('--disk <size>', 'image layers + volume contents + container writable layers (e.g. 20g)')
    .option('--volumes <n>', 'volumes')
    .option('--networks <n>', 'networks of its own')
    .option('--images <n>', 'images')
    .option('--clear <quota...>', `quotas to make unlimited again: ${QUOTA_NAMES.join(', ')}`)
    .action(async (name: string, options: QuotaOptions) => {
      await act(options.host, async (client) => {
        const change = quotaChange(options);
        const path = `/berth/v1/tenants/${encodeURIComponent(name)}/quota`;
        const view =
          Object.keys(change).length > 0
            ? await client.call<QuotaAnswer>('POST', path, change)
            : await client.call<QuotaAnswer>('GET', path);
        return quotaTable(view);
      });
    });

  tenant
    .command('rm <name>')
    .description('remove a tenant that has no containers left; its credentials are revoked')
    .addOption(host())
    .action(async (name: string, options: { host: string }) => {
      await act(options.host, async (client) => {
        await client.call('DELETE', `/berth/v1/tenants/${encodeURIComponent(name)}`);
        return name;
      });
    });

  tenant
    .command('cert <name>')
    .description('issue another client certificate for a tenant')
    .addOption(host())
    .option('--cert-dir <dir>', 'where to write ca.pem, cert.pem and key.pem (default ./<name>-certs)')
    .option('--description <text>', 'a label for the credential')
    .action(async (name: string, options: { host: string; certDir?: string; description?: string }) => {
      await act(options.host, async (client) => {
        const issued = await client.call<IssuedCertificate>('POST', `/berth/v1/tenants/${encodeURIComponent(name)}/certificates`, {
          Description: options.description,
        });
        return writeCertFolder(options.certDir ?? `${name}-certs`, name, issued);
      });
    });

  tenant
    .command('token <name>')
    .description('issue an API token for a tenant (shown once), for the HttpHeaders of the docker CLI\'s config.json')
    .addOption(host())
    .option('--description <text>', 'a label for the credential')
    .action(async (name: string, options: { host: string; description?: string }) => {
      await act(options.host, async (client) => {
        const issued = await client.call<{ ID: string; Token: string }>('POST', `/berth/v1/tenants/${encodeURIComponent(name)}/tokens`, {
          Description: options.description,
        });
        return [
          `token ${issued.ID} for tenant ${name} (shown only now):`,
          issued.Token,
          '',
          'add it to the docker CLI\'s config.json (DOCKER_CONFIG or ~/.docker):',
          `  { "HttpHeaders": { "Authorization": "Bearer ${issued.Token}" } }`,
        ].join('\n');
      });
    });

  tenant
    .command('revoke <name> <credential-id>')
    .description('revoke a certificate (by serial) or a token (by id) of a tenant')
    .addOption(host())
    .action(async (name: string, id: string, options: { host: string }) => {
      await act(options.host, async (client) => {
        const view = await client.call<{ ID: string; RevokedAt: string }>(
          'POST',
          `/berth/v1/tenants/${encodeURIComponent(name)}/credentials/${encodeURIComponent(id)}/revoke`,
        );
        return `${view.ID} revoked at ${view.RevokedAt}`;
      });
    });

  return tenant;
}
