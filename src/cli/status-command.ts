import { Command, Option } from 'commander';
import { act } from './tenant-commands.js';
import type { ControlPlaneStatus } from '../server/cluster/ha/control-plane-routes.js';

/** `berth status`: this server's role in the control plane, the store's health, hosts up and down. */
export function statusCommand(): Command {
  return new Command('status')
    .description("show a berth server's role (leader or follower), its store's health and its hosts")
    .addOption(new Option('-H, --host <address>', "the server's local socket").default('unix:///var/run/berth-server.sock'))
    .option('--json', 'print the status as JSON')
    .action(async (options: { host: string; json?: boolean }) => {
      await act(options.host, async (client) => {
        const s = await client.call<ControlPlaneStatus>('GET', '/berth/v1/control-plane');
        if (options.json) return JSON.stringify(s, null, 2);
        return [
          `Server:  ${s.server}`,
          `Role:    ${s.role}${s.leader ? ` (leader: ${s.leader})` : ' (no leader elected)'}`,
          `Store:   ${s.store.kind}, ${s.store.healthy ? 'healthy' : `unhealthy: ${s.store.error ?? 'no answer'}`}`,
          `Hosts:   ${s.hosts.up} up, ${s.hosts.down} down`,
        ].join('\n');
      });
    });
}
