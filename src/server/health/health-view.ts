import type { HealthState } from './health-config.js';

/** What `docker ps` adds to "Up 5 seconds": " (healthy)", " (unhealthy)", " (health: starting)". */
export function healthSuffix(health: { Status: string } | HealthState | undefined): string {
  if (!health) return '';
  return health.Status === 'starting' ? ' (health: starting)' : ` (${health.Status})`;
}
