import { Command, Option } from 'commander';
import { act, table } from './tenant-commands.js';
import { keyValuePairs } from './options.js';
import type { HostView } from '../server/admin-api/hosts.js';
import type { JoinTokenView } from '../server/cluster/join-tokens.js';

// Hosts exist only on a cluster: the default is berth server's socket, as for berth status.
const DEFAULT_HOST = 'unix:///var/run/berth-server.sock';

const gib = (bytes: number): string => `${(bytes / 1024 ** 3).toFixed(1)}GiB`;
const path = (ref: string, tail = ''): string => `/berth/v1/hosts/${encodeURIComponent(ref)}${tail}`;

function hostTable(hosts: HostView[]): string {
  const rows = [['ID', 'NAME', 'STATE', 'CORDONED', 'ADDRESS', 'CPUS', 'MEMORY', 'DISK FREE', 'CONTAINERS', 'LABELS']];
  for (const h of hosts) {
    rows.push([
      h.ID.slice(0, 12),
      h.Name,
      h.State,
      h.Cordoned ? 'yes' : 'no',
      h.Address,
      String(h.Capacity.Cpus),
      gib(h.Capacity.MemoryBytes),
      gib(h.Capacity.DiskBytes),
      String(h.Containers),
      Object.entries(h.Labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    ]);
  }
  return table(rows);
}

/** `berth host ...`: the cluster's hosts, through the admin API on the server's local socket. */
export function hostCommand(): Command {
  const host = new Command('host').description('manage the hosts of a Berth cluster (berth server)');
  const socket = (): Option => new Option('-H, --host <address>', "the server's local socket").default(DEFAULT_HOST);

  host
    .command('ls')
    .description('list hosts with state, capacity and labels')
    .addOption(socket())
    .option('-q, --quiet', 'only ids')
    .action(async (options: { host: string; quiet?: boolean }) => {
      await act(options.host, async (client) => {
        const hosts = await client.call<HostView[]>('GET', '/berth/v1/hosts');
        return options.quiet ? hosts.map((h) => h.ID).join('\n') : hostTable(hosts);
      });
    });

  host
    .command('inspect <host...>')
    .description('show hosts in detail (JSON), by id, name or id prefix')
    .addOption(socket())
    .action(async (refs: string[], options: { host: string }) => {
      await act(options.host, async (client) => {
        const views = [];
        for (const ref of refs) views.push(await client.call<HostView>('GET', path(ref)));
        return JSON.stringify(views, null, 2);
      });
    });

  host
    .command('label <host>')
    .description("add or remove a host's labels (the operator's labels win over the agent's --label)")
    .addOption(socket())
    .option('--add <key=value...>', 'labels to set')
    .option('--rm <key...>', 'labels to remove')
    .action(async (ref: string, options: { host: string; add?: string[]; rm?: string[] }) => {
      await act(options.host, async (client) => {
        const view = await client.call<HostView>('POST', path(ref, '/labels'), { Add: keyValuePairs(options.add ?? [], (pair) => `invalid label "${pair}": use key=value`), Remove: options.rm ?? [] });
        return hostTable([view]);
      });
    });

  for (const [verb, description] of [
    ['cordon', 'take no new containers on a host; those it runs stay'],
    ['uncordon', 'let a host take new containers again'],
    ['drain', 'cordon a host and move its containers to other hosts'],
  ] as const) {
    host
      .command(`${verb} <host>`)
      .description(description)
      .addOption(socket())
      .action(async (ref: string, options: { host: string }) => {
        await act(options.host, async (client) => {
          const view = await client.call<HostView>('POST', path(ref, `/${verb}`));
          return view.Name;
        });
      });
  }

  host
    .command('rm <host>')
    .description('remove a host from the cluster; its certificate is refused from then on')
    .addOption(socket())
    .option('-f, --force', 'remove even an up host that still has containers')
    .action(async (ref: string, options: { host: string; force?: boolean }) => {
      await act(options.host, async (client) => {
        await client.call('DELETE', `${path(ref)}${options.force ? '?force=1' : ''}`);
        return ref;
      });
    });

  host
    .command('join-token')
    .description('create a token for new hosts to join with (berth agent --join-token); --ls lists, --revoke ID revokes')
    .addOption(socket())
    .option('--description <text>', 'a label for the token')
    .option('--ls', 'list tokens instead')
    .option('--revoke <id>', 'revoke a token instead')
    .option('-q, --quiet', 'print only the token')
    .action(async (options: { host: string; description?: string; ls?: boolean; revoke?: string; quiet?: boolean }) => {
      await act(options.host, async (client) => {
        if (options.ls) {
          const tokens = await client.call<JoinTokenView[]>('GET', '/berth/v1/join-tokens');
          return table([
            ['ID', 'CREATED', 'REVOKED', 'USES', 'DESCRIPTION'],
            ...tokens.map((t) => [t.ID, t.CreatedAt, t.RevokedAt ?? '', String(t.Uses), t.Description ?? '']),
          ]);
        }
        if (options.revoke) {
          const view = await client.call<JoinTokenView>('POST', `/berth/v1/join-tokens/${encodeURIComponent(options.revoke)}/revoke`);
          return `${view.ID} revoked at ${view.RevokedAt ?? ''}`;
        }
        const issued = await client.call<{ ID: string; Token: string }>('POST', '/berth/v1/join-tokens', { Description: options.description });
        if (options.quiet) return issued.Token;
        return [
          `join token ${issued.ID} (shown only now):`,
          issued.Token,
          '',
          'on a new host:',
          `  berth agent --server <this server's agent address> --join-token ${issued.Token}`,
        ].join('\n');
      });
    });

  return host;
}
