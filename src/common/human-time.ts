/**
 * Durations and timestamps in the words the docker CLI and dockerd use ("Up 5 seconds",
 * "Exited (0) 2 minutes ago"), so `docker ps` against Berth reads like against dockerd.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(seconds / 3600);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

/** RFC 3339 with nanosecond precision, as Go's time.RFC3339Nano prints UTC times. */
export function nowRfc3339Nano(): string {
  const ns = process.hrtime.bigint() % 1_000_000n;
  const iso = new Date().toISOString(); // 2026-11-23T08:39:31.123Z
  return `${iso.slice(0, 23)}${ns.toString().padStart(6, '0')}Z`;
}

/** Milliseconds since the epoch of an RFC 3339 string with any fraction length. */
export function parseRfc3339(value: string): number {
  const match = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(value);
  if (!match) return Date.parse(value);
  const fraction = match[2] ? Number(`0${match[2]}`) : 0;
  return Date.parse(`${match[1]}${match[3]}`) + fraction * 1000;
}
