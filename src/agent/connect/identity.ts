import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * What an agent keeps from its join, in `<data-root>/agent/identity.json` (0600): the host id
 * the control plane gave, its host certificate and key, and the control plane's CA. With it,
 * a restarted agent reconnects as the same host without a token.
 */
export interface AgentIdentity {
  hostId: string;
  /** HOST:PORT of the control plane it joined. */
  server: string;
  certPem: string;
  keyPem: string;
  caPem: string;
}

const identityPath = (dataRoot: string): string => join(dataRoot, 'agent', 'identity.json');

export async function loadIdentity(dataRoot: string): Promise<AgentIdentity | undefined> {
  const text = await readFile(identityPath(dataRoot), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as AgentIdentity);
}

export async function saveIdentity(dataRoot: string, identity: AgentIdentity): Promise<void> {
  await mkdir(join(dataRoot, 'agent'), { recursive: true, mode: 0o700 });
  const path = identityPath(dataRoot);
  // Written whole then renamed: a crash leaves the old identity or the new, never half of one.
  await writeFile(`${path}.tmp`, JSON.stringify(identity), { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}
