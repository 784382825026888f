import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BerthError } from '../../../src/common/errors.js';
import { goDuration, healthOnStart, isEnabled, mergeHealthcheck, probeCommand } from '../../../src/server/health/health-config.js';

test('mergeHealthcheck: the user overrides the image field by field', () => {
  const image = { Test: ['CMD', 'check'], Interval: 5e9, Retries: 4 };
  assert.deepEqual(mergeHealthcheck(undefined, image), image);
  assert.deepEqual(mergeHealthcheck({ Interval: 1e9 }, image), { Test: ['CMD', 'check'], Interval: 1e9, Retries: 4 });
  assert.deepEqual(mergeHealthcheck({ Test: ['NONE'] }, image), { Test: ['NONE'], Interval: 5e9, Retries: 4 });
  assert.deepEqual(mergeHealthcheck({ Test: ['CMD-SHELL', 'x'], Timeout: 2e9 }, undefined), { Test: ['CMD-SHELL', 'x'], Timeout: 2e9 });
  assert.equal(mergeHealthcheck(undefined, undefined), undefined);
});

test('mergeHealthcheck refuses what dockerd refuses', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ Interval: 10 }, 'Interval in Healthcheck cannot be less than 1ms'],
    [{ Timeout: 999_999 }, 'Timeout in Healthcheck cannot be less than 1ms'],
    [{ StartPeriod: 1 }, 'StartPeriod in Healthcheck cannot be less than 1ms'],
    [{ Retries: -1 }, 'Retries in Healthcheck cannot be negative'],
    [{ Test: ['SHELL', 'x'] }, 'unknown health check type: SHELL'],
  ];
  for (const [raw, message] of cases) {
    assert.throws(() => mergeHealthcheck(raw, undefined), (err) => err instanceof BerthError && err.kind === 'InvalidArgument' && err.message === message, message);
  }
});

test('probeCommand and isEnabled', () => {
  assert.deepEqual(probeCommand({ Test: ['CMD', 'curl', '-f', 'x'] }), ['curl', '-f', 'x']);
  assert.deepEqual(probeCommand({ Test: ['CMD-SHELL', 'curl -f x || exit 1'] }), ['/bin/sh', '-c', 'curl -f x || exit 1']);
  assert.ok(!isEnabled({ Test: ['NONE'] }));
  assert.ok(!isEnabled({}));
  assert.ok(isEnabled({ Test: ['CMD', 'true'] }));
});

test('healthOnStart begins at starting and keeps the log', () => {
  const log = [{ Start: 'a', End: 'b', ExitCode: 0, Output: '' }];
  assert.deepEqual(healthOnStart({ Test: ['CMD', 'true'] }, { Status: 'unhealthy', FailingStreak: 7, Log: log }), { Status: 'starting', FailingStreak: 0, Log: log });
  assert.equal(healthOnStart({ Test: ['NONE'] }, undefined), undefined);
});

test('goDuration prints as Go does', () => {
  assert.equal(goDuration(200e6), '200ms');
  assert.equal(goDuration(30e9), '30s');
  assert.equal(goDuration(90e9), '1m30s');
  assert.equal(goDuration(1.5e9), '1.5s');
  assert.equal(goDuration(3600e9), '1h0m0s');
});
