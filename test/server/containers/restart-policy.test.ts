import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextRestartDelay, parseRestartPolicy, shouldRestart } from '../../../src/server/containers/restart-policy.js';
import type { RestartPolicy } from '../../../src/server/containers/model.js';

test('shouldRestart follows Docker restart policies', () => {
  const cases: { name: string; policy: RestartPolicy; exitCode: number; manuallyStopped: boolean; restartCount: number; want: boolean }[] = [
    { name: 'no policy never restarts', policy: { Name: '', MaximumRetryCount: 0 }, exitCode: 1, manuallyStopped: false, restartCount: 0, want: false },
    { name: 'always restarts after success', policy: { Name: 'always', MaximumRetryCount: 0 }, exitCode: 0, manuallyStopped: false, restartCount: 5, want: true },
    { name: 'always holds after a manual stop', policy: { Name: 'always', MaximumRetryCount: 0 }, exitCode: 137, manuallyStopped: true, restartCount: 0, want: false },
    { name: 'unless-stopped restarts after a crash', policy: { Name: 'unless-stopped', MaximumRetryCount: 0 }, exitCode: 2, manuallyStopped: false, restartCount: 0, want: true },
    { name: 'on-failure ignores success', policy: { Name: 'on-failure', MaximumRetryCount: 0 }, exitCode: 0, manuallyStopped: false, restartCount: 0, want: false },
    { name: 'on-failure restarts a failure', policy: { Name: 'on-failure', MaximumRetryCount: 0 }, exitCode: 3, manuallyStopped: false, restartCount: 9, want: true },
    { name: 'on-failure stops at its maximum', policy: { Name: 'on-failure', MaximumRetryCount: 2 }, exitCode: 3, manuallyStopped: false, restartCount: 2, want: false },
    { name: 'on-failure below its maximum', policy: { Name: 'on-failure', MaximumRetryCount: 2 }, exitCode: 3, manuallyStopped: false, restartCount: 1, want: true },
  ];
  for (const c of cases) {
    assert.equal(shouldRestart(c.policy, c), c.want, c.name);
  }
});

test('restart delay doubles, caps at a minute and resets after a long run', () => {
  assert.equal(nextRestartDelay(0, 0), 100);
  assert.equal(nextRestartDelay(100, 50), 200);
  assert.equal(nextRestartDelay(40_000, 50), 60_000);
  assert.equal(nextRestartDelay(6400, 15_000), 100);
});

test('parseRestartPolicy validates like dockerd', () => {
  assert.deepEqual(parseRestartPolicy({ Name: 'on-failure', MaximumRetryCount: 3 }), { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.match(String(parseRestartPolicy({ Name: 'sometimes' })), /unknown policy 'sometimes'/);
  assert.match(String(parseRestartPolicy({ Name: 'always', MaximumRetryCount: 2 })), /only be used with 'on-failure'/);
  assert.match(String(parseRestartPolicy({ Name: 'on-failure', MaximumRetryCount: -1 })), /cannot be negative/);
});
