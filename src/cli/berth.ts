#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { runUp } from './up.js';
import { tenantCommand } from './tenant-commands.js';
import { auditCommand } from './audit-command.js';
import { imageCommand } from './image-commands.js';

function wholeNumber(text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) throw new InvalidArgumentError('expected a whole number, 0 or more');
  return value;
}
import { advisorCommand } from './advisor-commands.js';
import { agentCommand } from './agent-command.js';
import { serverCommand } from './server-command.js';
import { hostCommand } from './host-commands.js';
import { statusCommand } from './status-command.js';
import { storeCommand, storeUrl } from './store-commands.js';
import { usernsBase } from './options.js';

const program = new Command();
program.name('berth').description('Berth: a container-native cloud that looks like one Docker host');

program
  .command('up')
  .description('run the server and a local agent in one process, with state in embedded SQLite')
  .addOption(new Option('--data-root <dir>', 'root of persistent state (images, containers, database)').default('/var/lib/berth'))
  .addOption(new Option('--exec-root <dir>', 'root of runtime state (runc state, monitor sockets)').default('/run/berth'))
  .addOption(
    new Option(
      '-H, --host <address...>',
      'Docker API address to listen on (repeatable): unix:///path/to.sock (the operator), or tcp://host:port (tenants; mutual TLS with certificates from Berth\'s CA)',
    ).default([
      'unix:///var/run/berth.sock',
    ]),
  )
  .addOption(
    new Option('--store <url>', 'where state lives: sqlite (under --data-root) or etcd://host:port[,host:port...][/key-prefix/]')
      .default('sqlite')
      .argParser(storeUrl),
  )
  .addOption(new Option('--bip <cidr>', 'gateway address and prefix of the default bridge network, e.g. 10.200.0.1/24'))
  .addOption(new Option('--default-address-pool <pool...>', 'address pool for networks, base=<CIDR>,size=<prefix> (repeatable)'))
  .addOption(new Option('--dns-upstream <address...>', 'resolvers the embedded DNS forwards to, ip[:port] (default: /etc/resolv.conf)'))
  .addOption(
    new Option('--tls-san <name...>', 'extra DNS names or IP addresses for the TLS certificate of tcp:// listeners').default([]),
  )
  .addOption(
    new Option(
      '--allow-32bit-syscalls',
      "let containers use the kernel's 32-bit syscall ABI (i386 binaries); off by default, which closes that attack surface to tenants",
    ).default(false),
  )
  .addOption(
    new Option('--insecure-registry <registry...>', 'registry (host:port or IPv4 CIDR) to reach without verified TLS, repeatable; loopback always is').default([]),
  )
  .addOption(new Option('--audit-retention-days <days>', 'drop audit entries older than this (0 keeps them)').argParser(wholeNumber).default(90))
  .addOption(new Option('--audit-max-entries <n>', 'keep at most this many audit entries, the newest (0: no limit)').argParser(wholeNumber).default(1_000_000))
  .addOption(
    new Option('--userns-base <uid>', "first host uid/gid of tenants' user-namespace ID ranges (65536 ids each); default 1048576 (2^20)").argParser(usernsBase),
  )
  .addOption(
    new Option('--advisor-scan-interval <seconds>', 'how often the Vulnerability Advisor rescans running containers (0: never)')
      .default(600)
      .argParser((v) => {
        if (!/^\d+(\.\d+)?$/.test(v)) throw new InvalidArgumentError(`expected seconds, not "${v}"`);
        return Number(v);
      }),
  )
  .action(
    async (options: {
      usernsBase?: number;
      dataRoot: string;
      execRoot: string;
      store: string;
      host: string[];
      allow32bitSyscalls: boolean;
      tlsSan: string[];
      insecureRegistry: string[];
      bip?: string;
      defaultAddressPool?: string[];
      dnsUpstream?: string[];
      auditRetentionDays: number;
      auditMaxEntries: number;
      advisorScanInterval: number;
    }) => {
      await runUp({ ...options, advisorScanIntervalMs: Math.round(options.advisorScanInterval * 1000) });
    },
  );

program.addCommand(tenantCommand());
program.addCommand(auditCommand());
program.addCommand(imageCommand());
program.addCommand(advisorCommand());
program.addCommand(agentCommand());
program.addCommand(serverCommand());
program.addCommand(hostCommand());
program.addCommand(statusCommand());
program.addCommand(storeCommand());

await program.parseAsync(process.argv);
