import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { invalidArgument } from '../common/errors.js';
import { EtcdStore } from '../server/store/etcd/etcd-store.js';
import { migrateToEtcd } from '../server/store/migrate.js';
import { parseEtcdUrl } from '../server/store/open-store.js';
import { SqliteStore } from '../server/store/sqlite/sqlite-store.js';

/** Checks `--store` as commander parses it, so a bad URL is a usage error before anything starts. */
export function storeUrl(text: string): string {
  if (text === 'sqlite') return text;
  try {
    parseEtcdUrl(text);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
  }
  return text;
}

/** `berth store ...`: operations on the Store itself, run while no Berth server uses it. */
export function storeCommand(): Command {
  const store = new Command('store').description("operate on Berth's store (stop Berth first)");
  store
    .command('migrate')
    .description("copy every record of a SQLite installation into etcd (ids, names, revisions, values), then check the copy; safe to run again")
    .requiredOption('--from <data-root>', "data root of the SQLite installation (holds berth.db)")
    .requiredOption('--to <url>', 'etcd://host:port[,host:port...][/key-prefix/]')
    .option('--force', 'replace what the target holds that the source does not hold as it is', false)
    .action(async (options: { from: string; to: string; force: boolean }) => {
      try {
        process.stdout.write(`${await migrate(options)}\n`);
      } catch (err) {
        process.stderr.write(`berth: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
      }
    });
  return store;
}

async function migrate(options: { from: string; to: string; force: boolean }): Promise<string> {
  const database = join(resolve(options.from), 'berth.db');
  if (!existsSync(database)) throw invalidArgument(`no Berth store at ${database}`);
  const source = new SqliteStore(database);
  const target = new EtcdStore(parseEtcdUrl(options.to));
  try {
    const result = await migrateToEtcd(source.exportRecords(), target, { force: options.force });
    const lines = [...result.counts].sort(([a], [b]) => a.localeCompare(b)).map(([group, count]) => `  ${group}: ${count}`);
    const total = [...result.counts.values()].reduce((sum, n) => sum + n, 0);
    return [
      `migrated ${total} records to ${options.to}: ${result.created} copied, ${result.unchanged} already there, ${result.removed} removed from the target`,
      'verified (kind tenant: records):',
      ...lines,
    ].join('\n');
  } finally {
    await source.close();
    await target.close();
  }
}
