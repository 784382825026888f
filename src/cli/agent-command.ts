import { Command, Option } from 'commander';
import { BerthError } from '../common/errors.js';
import { runAgent } from './agent.js';
import { milliseconds, usernsBase } from './options.js';

/** `berth agent ...`: one host of a cluster, dialling its control plane. */
export function agentCommand(): Command {
  return new Command('agent')
    .description('run this host\'s engine as an agent of a Berth control plane (berth server), dialling out to it over mutual TLS')
    .requiredOption('--server <host:port[,host:port...]>', "the control plane's agent listener (berth server --agent-listen); several servers of one HA control plane, comma-separated: a tunnel to each")
    .option('--join-token <token>', 'token from `berth host join-token`; needed on the first start only')
    .addOption(new Option('--data-root <dir>', 'root of persistent state (images, containers, database, host certificate)').default('/var/lib/berth'))
    .addOption(new Option('--exec-root <dir>', 'root of runtime state (runc state, monitor sockets)').default('/run/berth'))
    .option('--name <name>', 'host name in the cluster (default: this machine\'s hostname)')
    .option('--advertise-address <ip>', "where tenants reach this host's published ports (default: this end of the connection to the server)")
    .option('--label <key=value...>', 'host label for placement constraints (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('-H, --host <address...>', 'unix:///path.sock for the operator on this host (optional; tenants come through the server)')
    .addOption(new Option('--heartbeat-interval <ms>', 'how often the agent reports to the server').argParser(milliseconds(50)).default(1000))
    .option('--bip <cidr>', 'gateway address and prefix of the default bridge network')
    .option('--default-address-pool <pool...>', 'address pool for networks, base=<CIDR>,size=<prefix> (repeatable)')
    .option('--dns-upstream <address...>', 'resolvers the embedded DNS forwards to, ip[:port]')
    .addOption(
      new Option('--userns-base <uid>', "first host uid/gid of tenants' user-namespace ID ranges on this host (default 1048576)").argParser(usernsBase),
    )
    .addOption(new Option('--insecure-registry <registry...>', 'registry reached without verified TLS (repeatable)').default([]))
    .action(
      async (options: {
        server: string;
        joinToken?: string;
        dataRoot: string;
        execRoot: string;
        name?: string;
        advertiseAddress?: string;
        label?: string[];
        host?: string[];
        heartbeatInterval: number;
        bip?: string;
        defaultAddressPool?: string[];
        dnsUpstream?: string[];
        insecureRegistry: string[];
        usernsBase?: number;
      }) => {
        const { heartbeatInterval, ...rest } = options;
        try {
          await runAgent({ ...rest, heartbeatMs: heartbeatInterval });
        } catch (err) {
          if (!(err instanceof BerthError)) throw err;
          process.stderr.write(`berth agent: ${err.message}\n`);
          process.exit(1);
        }
      },
    );
}
