#!/usr/bin/env node
import { Command, Option } from 'commander';
import { runUp } from './up.js';

const program = new Command();
program.name('berth').description('Berth: a container-native cloud that looks like one Docker host');

program
  .command('up')
  .description('run the server and a local agent in one process, with state in embedded SQLite')
  .addOption(new Option('--data-root <dir>', 'root of persistent state (images, containers, database)').default('/var/lib/berth'))
  .addOption(new Option('--exec-root <dir>', 'root of runtime state (runc state, monitor sockets)').default('/run/berth'))
  .addOption(
    new Option('-H, --host <address...>', 'Docker API address to listen on (repeatable): unix:///path/to.sock').default([
      'unix:///var/run/berth.sock',
    ]),
  )
  .addOption(new Option('--bip <cidr>', 'gateway address and prefix of the default bridge network, e.g. 10.200.0.1/24'))
  .addOption(new Option('--default-address-pool <pool...>', 'address pool for networks, base=<CIDR>,size=<prefix> (repeatable)'))
  .addOption(new Option('--dns-upstream <address...>', 'resolvers the embedded DNS forwards to, ip[:port] (default: /etc/resolv.conf)'))
  .action(async (options: { dataRoot: string; execRoot: string; host: string[]; bip?: string; defaultAddressPool?: string[]; dnsUpstream?: string[] }) => {
    await runUp(options);
  });

await program.parseAsync(process.argv);
