import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseGoDuration, parseTimeSpec } from '../../../src/server/events/time-spec.js';
import { isKind } from '../../../src/common/errors.js';

const NOW = 1_700_000_000_000_000_000n; // 2023-11-14T22:13:20Z
const S = 1_000_000_000n;

describe('parseTimeSpec', () => {
  const cases: { name: string; input: string | undefined; want: bigint | undefined }[] = [
    { name: 'absent', input: undefined, want: undefined },
    { name: 'empty', input: '', want: undefined },
    { name: 'unix seconds', input: '1600000000', want: 1_600_000_000n * S },
    { name: 'unix seconds with nanos as the CLI sends', input: '1600000000.000000123', want: 1_600_000_000n * S + 123n },
    { name: 'short fraction scales up', input: '1600000000.5', want: 1_600_000_000n * S + 500_000_000n },
    { name: 'fraction beyond nanoseconds is cut', input: '1600000000.1234567891', want: 1_600_000_000n * S + 123_456_789n },
    { name: 'zero is a timestamp, not a duration', input: '0', want: 0n },
    { name: 'minutes ago', input: '10m', want: NOW - 600n * S },
    { name: 'compound duration', input: '1h30m', want: NOW - 5400n * S },
    { name: 'fractional duration', input: '1.5h', want: NOW - 5400n * S },
    { name: 'milliseconds', input: '250ms', want: NOW - 250_000_000n },
    { name: 'negative duration points to the future', input: '-5s', want: NOW + 5n * S },
    { name: 'RFC 3339 UTC', input: '2023-11-14T22:13:20Z', want: NOW },
    { name: 'RFC 3339 with nanos', input: '2023-11-14T22:13:20.000000042Z', want: NOW + 42n },
    { name: 'RFC 3339 with offset', input: '2023-11-15T00:13:20+02:00', want: NOW },
    { name: 'hour precision with zone', input: '2023-11-14T22Z', want: NOW - 800n * S },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(parseTimeSpec(c.input, NOW), c.want));
  }

  it('date without a zone is local midnight', () => {
    const want = BigInt(new Date(2023, 10, 14).getTime()) * 1_000_000n;
    assert.equal(parseTimeSpec('2023-11-14', NOW), want);
  });

  const bad = ['yesterday', '10x', '2023-13-01', '12:00', '1.2.3'];
  for (const input of bad) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => parseTimeSpec(input, NOW),
        (err: unknown) => isKind(err, 'InvalidArgument') && err.message === `failed to parse value as time or duration: "${input}"`,
      );
    });
  }
});

describe('parseGoDuration', () => {
  it('is undefined for a bare number', () => assert.equal(parseGoDuration('10'), undefined));
  it('reads microseconds in both spellings', () => {
    assert.equal(parseGoDuration('3us'), 3000n);
    assert.equal(parseGoDuration('3µs'), 3000n);
  });
});
