import { Command, Option } from 'commander';
import { BerthError } from '../common/errors.js';
import { runServer } from './server.js';
import { storeUrl } from './store-commands.js';
import { STRATEGIES } from '../server/scheduler/types.js';
import { milliseconds } from './options.js';

/** `berth server ...`: the control plane of a cluster of agents. */
export function serverCommand(): Command {
  return new Command('server')
    .description('run the control plane of a cluster: one Docker API for tenants over every host whose agent joined (berth agent)')
    .addOption(new Option('--data-root <dir>', 'root of the control plane\'s state (database, CA)').default('/var/lib/berth-server'))
    .addOption(
      new Option('-H, --host <address...>', "Docker API address (repeatable): unix:///path.sock (the operator), tcp://host:port (tenants, mutual TLS)").default([
        'unix:///var/run/berth-server.sock',
      ]),
    )
    .requiredOption('--agent-listen <address>', 'tcp://IP:PORT where agents dial in (mutual TLS)')
    .addOption(new Option('--host-down-timeout <ms>', 'a host without heartbeats for this long is down and its restart-policy containers move').argParser(milliseconds(100)).default(5000))
    .addOption(new Option('--placement-strategy <strategy>', 'how hosts are chosen: spread (balance) or binpack (fill)').choices([...STRATEGIES]).default('spread'))
    .addOption(new Option('--tls-san <name...>', 'extra DNS names or IP addresses for the TLS certificates of the listeners').default([]))
    .addOption(
      new Option('--store <url>', 'where state lives: sqlite (under --data-root, one server) or etcd://host:port[,host:port...][/key-prefix/] (several servers share it)')
        .default('sqlite')
        .argParser(storeUrl),
    )
    .action(
      async (options: { store: string; dataRoot: string; host: string[]; agentListen: string; hostDownTimeout: number; placementStrategy: 'spread' | 'binpack'; tlsSan: string[] }) => {
        try {
          await runServer({
            dataRoot: options.dataRoot,
            host: options.host,
            agentListen: options.agentListen,
            hostDownTimeoutMs: options.hostDownTimeout,
            placementStrategy: options.placementStrategy,
            tlsSan: options.tlsSan,
            store: options.store,
          });
        } catch (err) {
          if (!(err instanceof BerthError)) throw err;
          process.stderr.write(`berth server: ${err.message}\n`);
          process.exit(1);
        }
      },
    );
}
