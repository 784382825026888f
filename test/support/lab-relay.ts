/**
 * A TCP relay from an address of the test's own lab (the cluster harness's bridge) to a port
 * on 127.0.0.1, so agents in their own network namespaces reach a loopback-only peer such as
 * the registry harness. Traffic stays between the test's namespaces and its loopback.
 *
 * Lifecycle: startLabRelay() → close(). close() destroys open connections and the listener.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface LabRelay {
  /** `host:port` the relay listens on. */
  address: string;
  close(): Promise<void>;
}

export async function startLabRelay(listenHost: string, targetPort: number): Promise<LabRelay> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    open.add(client);
    open.add(upstream);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => resolve());
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : 0;
  return {
    address: `${listenHost}:${port}`,
    close: async () => {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
