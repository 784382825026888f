import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { operatorContext } from '../../../common/context.js';
import { isKind } from '../../../common/errors.js';
import type { Store } from '../../store/store.js';
import { CertificateAuthority } from '../../tenancy/pki.js';

interface CaRecord {
  certPem: string;
  keyPem: string;
}

const KIND = 'control-plane-ca';
const ID = 'ca';

/**
 * The control plane's CA when several servers share a store: every server must issue tenant
 * credentials, host certificates and listener certificates from the same CA, or an agent
 * joined at one server could not dial another. The first server to start creates the CA and
 * stores it with a create that only one racer can win (the store's create is atomic); the
 * losers and every later server take the stored one.
 *
 * Trade-off (docs/cluster.md): the CA's private key then lives in the store, readable by whoever
 * can read etcd — etcd must be as closely guarded as each server's data root.
 */
export async function openSharedCa(store: Store, pkiDir: string): Promise<CertificateAuthority> {
  const ctx = operatorContext('pki');
  let stored = await store.get<CaRecord>(ctx, KIND, ID).catch((err: unknown) => {
    if (isKind(err, 'NotFound')) return undefined;
    throw err;
  });
  if (!stored) {
    const scratch = await mkdtemp(join(pkiDir, '..', '.ca-'));
    try {
      // A server that ran on SQLite before (its state migrated with `berth store migrate`)
      // offers the CA it has, so that the credentials and host certificates it issued stay
      // valid; otherwise a new one.
      const own = await readCa(pkiDir);
      if (!own) await CertificateAuthority.open(scratch);
      const candidate: CaRecord = own ?? (await readCa(scratch))!;
      stored = await store.create<CaRecord>(ctx, KIND, { id: ID, value: candidate }).catch(async (err: unknown) => {
        if (!isKind(err, 'AlreadyExists')) throw err;
        return store.get<CaRecord>(ctx, KIND, ID);
      });
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
  await installCa(pkiDir, stored.value);
  return CertificateAuthority.open(pkiDir);
}

async function readCa(dir: string): Promise<CaRecord | undefined> {
  const certPem = await readFile(join(dir, 'ca.pem'), 'utf8').catch(() => undefined);
  const keyPem = await readFile(join(dir, 'ca-key.pem'), 'utf8').catch(() => undefined);
  return certPem !== undefined && keyPem !== undefined ? { certPem, keyPem } : undefined;
}

/** Puts the shared CA under the data root; listener certificates of another CA are dropped. */
async function installCa(dir: string, ca: CaRecord): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const current = await readFile(join(dir, 'ca.pem'), 'utf8').catch(() => undefined);
  if (current === ca.certPem) return;
  for (const name of await readdir(dir)) await rm(join(dir, name), { force: true, recursive: true });
  await writeFile(join(dir, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
  // The certificate last: CertificateAuthority.open takes a present ca.pem as a whole CA.
  await writeFile(join(dir, 'ca.pem'), ca.certPem, { mode: 0o644 });
}
