import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseRuncError, Runc, RuncError } from '../../../src/agent/runtime/runc.js';

describe('parseRuncError', () => {
  test('JSON log lines (--log-format json): the last error wins', () => {
    const stderr =
      '{"level":"warning","msg":"something minor","time":"2024-01-01T00:00:00Z"}\n' +
      '{"level":"error","msg":"container does not exist","time":"2024-01-01T00:00:00Z"}\n';
    assert.equal(parseRuncError(stderr), 'container does not exist');
  });

  test('logfmt lines, as runc prints under conmon, with Go quoting undone', () => {
    const stderr =
      'time="2026-11-23T08:46:21Z" level=error msg="runc create failed: unable to start container process: exec: \\"sh\\": executable file not found in $PATH"\n';
    assert.equal(parseRuncError(stderr), 'runc create failed: unable to start container process: exec: "sh": executable file not found in $PATH');
  });

  test('plain text and nothing at all', () => {
    assert.equal(parseRuncError('flag provided but not defined: -x\n'), 'flag provided but not defined: -x');
    assert.equal(parseRuncError(''), 'runc failed without a message');
  });
});

describe('Runc (real runc binary)', () => {
  let dir: string;
  let runc: Runc;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-runc-'));
    runc = new Runc({ binary: 'runc', root: join(dir, 'root') });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('an empty root lists nothing; a missing container is reported as such', async () => {
    assert.deepEqual(await runc.list(), []);
    await assert.rejects(runc.state('nope'), (err: unknown) => {
      assert.ok(err instanceof RuncError);
      assert.equal(err.message, 'container does not exist');
      assert.equal(err.notFound, true);
      return true;
    });
    await assert.rejects(runc.kill('nope', 'KILL'), (err: unknown) => err instanceof RuncError && err.notFound);
    // delete --force of a container that is not there succeeds, which makes delete idempotent
    await runc.delete('nope', true);
  });
});
