import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import { EtcdStore } from '../../../src/server/store/etcd/etcd-store.js';
import { EtcdCluster } from '../../support/etcd-harness.js';
import { storeConformance } from './conformance.js';

// One real etcd for the file; each test gets its own key prefix, as separate installations would.
let cluster: Promise<EtcdCluster> | undefined;
after(async () => {
  if (cluster) await (await cluster).stop();
});

storeConformance('etcd', async () => {
  cluster ??= EtcdCluster.start(1);
  const store = new EtcdStore({ endpoints: (await cluster).endpoints(), prefix: `/t-${randomBytes(6).toString('hex')}/` });
  return { store, cleanup: () => store.close() };
});
