import { conflict, internal } from '../../common/errors.js';
import type { EtcdStore } from './etcd/etcd-store.js';
import type { ExportedRecord } from './sqlite/sqlite-store.js';
import { sameRecord } from './same-record.js';

export interface MigrationResult {
  /** Records written to the target by this run. */
  created: number;
  /** Records the target already held, identical (an earlier, possibly interrupted, run). */
  unchanged: number;
  /** Records of the target that --force removed because the source does not hold them as they are. */
  removed: number;
  /** Records per "kind tenant", equal in source and target after the run. */
  counts: Map<string, number>;
}

/** How many imports run at once: etcd commits concurrent writes in shared fsyncs. */
const PARALLEL = 32;

/**
 * Copies every record of every tenant and kind from the SQLite store into an etcd store,
 * keeping ids, names, revisions and values.
 *
 * Idempotent: a record the target already holds identically is left alone, so a run that was
 * interrupted is finished by running it again, and a finished one changes nothing. A target
 * holding anything else (records the source lacks or holds differently) is refused unless
 * `force`, which first removes those records so that the target ends up a copy of the source.
 * Afterwards the target is read back and compared record by record.
 */
export async function migrateToEtcd(
  source: Iterable<ExportedRecord>,
  target: EtcdStore,
  options: { force: boolean },
): Promise<MigrationResult> {
  const wanted = new Map<string, ExportedRecord>();
  for (const record of source) wanted.set(recordKey(record.kind, record.tenant, record.id), record);

  const foreign = (await target.exportRecords()).filter(({ kind, tenant, stored }) => {
    const counterpart = wanted.get(recordKey(kind, tenant, stored.id));
    return !counterpart || !sameRecord(counterpart, stored);
  });
  if (foreign.length > 0 && !options.force) {
    const example = foreign[0]!;
    throw conflict(
      `the target holds ${foreign.length} record(s) that the source does not hold as they are ` +
        `(e.g. ${example.kind} ${example.stored.id} of tenant ${example.tenant}); --force replaces them`,
    );
  }
  await inBatches(foreign, ({ kind, tenant, stored }) => target.removeRecord(tenant, kind, stored.id));

  let created = 0;
  let unchanged = 0;
  await inBatches([...wanted.values()], async (record) => {
    const outcome = await target.importRecord(record.tenant, record.kind, record);
    if (outcome === 'created') created++;
    else unchanged++;
  });

  const counts = await verify(wanted, target);
  return { created, unchanged, removed: foreign.length, counts };
}

/** Reads the target back: the same records, per kind and tenant, as the source. */
async function verify(wanted: Map<string, ExportedRecord>, target: EtcdStore): Promise<Map<string, number>> {
  const expected = countByKindAndTenant([...wanted.values()]);
  const landed = await target.exportRecords();
  const actual = countByKindAndTenant(landed.map(({ kind, tenant }) => ({ kind, tenant })));
  for (const group of new Set([...expected.keys(), ...actual.keys()])) {
    if (expected.get(group) !== actual.get(group)) {
      throw internal(`migration check failed: ${group} has ${actual.get(group) ?? 0} records in the target, ${expected.get(group) ?? 0} in the source`);
    }
  }
  for (const { kind, tenant, stored } of landed) {
    const source = wanted.get(recordKey(kind, tenant, stored.id));
    if (!source || !sameRecord(source, stored)) throw internal(`migration check failed: ${kind} ${stored.id} of tenant ${tenant} differs`);
  }
  return expected;
}

function countByKindAndTenant(records: { kind: string; tenant: string }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { kind, tenant } of records) {
    const group = `${kind} ${tenant}`;
    counts.set(group, (counts.get(group) ?? 0) + 1);
  }
  return counts;
}

async function inBatches<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += PARALLEL) await Promise.all(items.slice(i, i + PARALLEL).map(work));
}

const recordKey = (kind: string, tenant: string, id: string): string => JSON.stringify([kind, tenant, id]);
