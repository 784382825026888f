/**
 * Connections that arrived through an agent's mutually authenticated tunnel from the control
 * plane. On those, and only those, the engine takes the tenant from the control plane's
 * header instead of from a client certificate: the control plane authenticated the tenant.
 */
const trustedConnections = new WeakSet<object>();

export function trustUpstreamConnection(connection: object): void {
  trustedConnections.add(connection);
}

export function isTrustedUpstream(connection: object): boolean {
  return trustedConnections.has(connection);
}
