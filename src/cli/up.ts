import { createLogger } from '../common/logging.js';
import { listenOn, parseListenAddress, tenantEndpointsOf } from './listen.js';
import { listenerNames } from './tls-names.js';
import { startEngine, type EngineOptions } from './engine.js';

export interface UpOptions extends Omit<EngineOptions, 'tenantEndpoints' | 'logger'> {
  host: string[];
  /** Extra names (DNS or IP) for the TLS listener's certificate. */
  tlsSan?: string[];
}

/**
 * `berth up`: the server and the local agent in one process — the engine served on its -H
 * listeners (unix: the operator; tcp: tenants over mutual TLS).
 */
export async function runUp(options: UpOptions): Promise<void> {
  const logger = createLogger('berth');
  const addresses = options.host.map(parseListenAddress);
  const tenantEndpoints = tenantEndpointsOf(addresses);
  const engine = await startEngine({ ...options, tenantEndpoints, logger });
  const tcp = addresses.filter((a) => a.kind === 'tcp');
  const tls = tcp.length > 0 ? await engine.ca.serverIdentity(listenerNames(tcp, options.tlsSan ?? [])) : undefined;
  const listeners = await listenOn(engine.app.server, addresses, tls);
  logger.info({ dataRoot: engine.dataRoot, execRoot: engine.execRoot, hosts: options.host }, 'berth is up');
  installProcessGuards(logger);
  onTermination(logger, async () => {
    for (const listener of listeners) listener.close();
    await engine.close();
  });
}

/**
 * One stray promise in one session must not end every tenant's API: log it loudly and go on.
 * (Thrown exceptions still end the process; the state they leave cannot be trusted.)
 */
export function installProcessGuards(logger: ReturnType<typeof createLogger>): void {
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason }, 'unhandled promise rejection (a bug): the request it belonged to failed');
  });
}

/** SIGTERM/SIGINT run `shutdown` once, then the process exits; containers keep running. */
export function onTermination(logger: ReturnType<typeof createLogger>, shutdown: () => Promise<void>): void {
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down; containers keep running');
    await shutdown().catch((err: unknown) => logger.error({ err }, 'shutdown failed'));
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
