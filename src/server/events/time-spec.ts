import { invalidArgument } from '../../common/errors.js';

/**
 * Parses the `since` / `until` values of `GET /events` into nanoseconds since the Unix epoch.
 *
 * The docker CLI resolves what the user typed before it calls the API and sends
 * `seconds[.fraction]`; other clients (curl, SDKs) may send the user's text as is, so Berth
 * accepts every form the CLI does:
 * - unix seconds with an optional fraction of up to nine digits: `1700000000`, `1700000000.5`;
 * - Go durations, taken as "that long before now": `10m`, `1h30m`, `1.5h`, `250ms`
 *   (a leading `-` points into the future; a bare `0` is a timestamp, as in the CLI);
 * - RFC 3339 and its shorter forms: `2024-01-02`, `2024-01-02T15`, `2024-01-02T15:04`,
 *   `2024-01-02T15:04:05.123Z`, `2024-01-02T15:04:05+02:00`. Without a zone the time is
 *   taken in the server's local zone, like the CLI takes it in the client's.
 *
 * An empty value means "not given" (undefined). Anything else is InvalidArgument.
 */
export function parseTimeSpec(value: string | undefined, nowNs: bigint): bigint | undefined {
  if (value === undefined || value === '') return undefined;
  const text = value.trim();
  if (text !== '0') {
    const duration = parseGoDuration(text);
    if (duration !== undefined) return nowNs - duration;
  }
  const unix = UNIX_TIME.exec(text);
  if (unix) return BigInt(unix[1]!) * NS_PER_S + fractionToNanos(unix[2]);
  const rfc = parseRfc3339ish(text);
  if (rfc !== undefined) return rfc;
  throw invalidArgument(`failed to parse value as time or duration: "${value}"`);
}

const NS_PER_S = 1_000_000_000n;
const UNIX_TIME = /^(\d{1,12})(?:\.(\d+))?$/;

/** `.5` is half a second: scale the digits to nine places (extra digits are below a nanosecond). */
function fractionToNanos(digits: string | undefined): bigint {
  if (!digits) return 0n;
  return BigInt(digits.slice(0, 9).padEnd(9, '0'));
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3,
  'μs': 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};
const DURATION = /^([-+]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/;
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/** Go's time.ParseDuration syntax, in nanoseconds; undefined when the text is not one. */
export function parseGoDuration(text: string): bigint | undefined {
  const match = DURATION.exec(text);
  if (!match) return undefined;
  let total = 0;
  for (const part of match[2]!.matchAll(DURATION_PART)) {
    total += Number(part[1]) * DURATION_UNITS[part[2]!]!;
  }
  const ns = BigInt(Math.round(total));
  return match[1] === '-' ? -ns : ns;
}

const RFC3339ISH =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?(Z|z|[+-]\d{2}:\d{2})?$/;

function parseRfc3339ish(text: string): bigint | undefined {
  const m = RFC3339ISH.exec(text);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const [hour, minute, second] = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  const zone = m[8];
  let ms: number;
  if (zone === undefined) {
    ms = new Date(year, month - 1, day, hour, minute, second).getTime();
  } else {
    ms = Date.UTC(year, month - 1, day, hour, minute, second);
    if (zone !== 'Z' && zone !== 'z') {
      const sign = zone.startsWith('-') ? -1 : 1;
      const [zh, zm] = zone.slice(1).split(':').map(Number) as [number, number];
      ms -= sign * (zh * 60 + zm) * 60_000;
    }
  }
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + fractionToNanos(m[7]);
}
