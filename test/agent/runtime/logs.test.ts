import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { normalizeTime, parseLogLine, readLogs, type LogEntry, type ReadLogsOptions } from '../../../src/agent/runtime/logs.js';

const base: Omit<ReadLogsOptions, 'follow'> = { stdout: true, stderr: true, timestamps: false };

async function entries(stream: Readable): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of stream as AsyncIterable<LogEntry>) out.push(e);
  return out;
}

const text = (list: LogEntry[]): string[] => list.map((e) => `${e.stream}:${e.data.toString()}`);

describe('k8s-file parsing', () => {
  test('times in any offset become UTC with nine digits', () => {
    assert.deepEqual(normalizeTime('2024-03-01T10:00:00.5+02:00'), { time: '2024-03-01T08:00:00.500000000Z', seconds: 1709280000.5 });
    assert.equal(normalizeTime('2024-03-01T08:00:00.123456789Z')?.time, '2024-03-01T08:00:00.123456789Z');
    assert.equal(normalizeTime('2024-03-01T08:00:00-01:30')?.time, '2024-03-01T09:30:00.000000000Z');
    assert.equal(normalizeTime('yesterday'), undefined);
  });

  test('F lines keep their newline, P lines do not, junk is skipped', () => {
    const f = parseLogLine(Buffer.from('2024-03-01T08:00:00.000000001+00:00 stdout F hello world'));
    assert.equal(f?.data.toString(), 'hello world\n');
    assert.equal(f?.partial, false);
    const p = parseLogLine(Buffer.from('2024-03-01T08:00:00.000000001+00:00 stderr P part'));
    assert.equal(p?.data.toString(), 'part');
    assert.equal(p?.stream, 'stderr');
    const empty = parseLogLine(Buffer.from('2024-03-01T08:00:00.000000001+00:00 stdout F '));
    assert.equal(empty?.data.toString(), '\n');
    assert.equal(parseLogLine(Buffer.from('garbage line')), undefined);
    assert.equal(parseLogLine(Buffer.from('2024-03-01T08:00:00Z stdin F x')), undefined);
  });
});

describe('readLogs', () => {
  let dir: string;
  let path: string;
  const line = (sec: number, stream: string, tag: string, body: string): string =>
    `2024-03-01T08:00:${String(sec).padStart(2, '0')}.000000000+00:00 ${stream} ${tag} ${body}\n`;
  const t0 = Date.UTC(2024, 2, 1, 8, 0, 0) / 1000;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-logs-'));
    path = join(dir, 'c.log');
    await writeFile(
      path,
      line(1, 'stdout', 'F', 'one') +
        line(2, 'stderr', 'P', 'err-a') +
        line(3, 'stdout', 'P', 'two-a') +
        line(4, 'stderr', 'F', 'err-b') +
        line(5, 'stdout', 'F', 'two-b') +
        line(6, 'stdout', 'F', 'three') +
        line(7, 'stdout', 'P', 'unfinished'),
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('joins partial lines per stream and ends with an unfinished piece', async () => {
    const got = await entries(readLogs(path, { ...base, follow: false }));
    assert.deepEqual(text(got), ['stdout:one\n', 'stderr:err-aerr-b\n', 'stdout:two-atwo-b\n', 'stdout:three\n', 'stdout:unfinished']);
    assert.equal(got[1]!.time, '2024-03-01T08:00:02.000000000Z');
  });

  test('stream selection, tail, since and until', async () => {
    assert.deepEqual(text(await entries(readLogs(path, { ...base, follow: false, stdout: false }))), ['stderr:err-aerr-b\n']);
    assert.deepEqual(text(await entries(readLogs(path, { ...base, follow: false, tail: 2 }))), ['stdout:three\n', 'stdout:unfinished']);
    assert.deepEqual(await entries(readLogs(path, { ...base, follow: false, tail: 0 })), []);
    assert.equal((await entries(readLogs(path, { ...base, follow: false, tail: 'all' }))).length, 5);
    assert.deepEqual(text(await entries(readLogs(path, { ...base, follow: false, since: t0 + 5.5 }))), ['stdout:three\n', 'stdout:unfinished']);
    assert.deepEqual(text(await entries(readLogs(path, { ...base, follow: false, until: t0 + 1.5 }))), ['stdout:one\n']);
  });

  test('a missing file is an empty log', async () => {
    assert.deepEqual(await entries(readLogs(join(dir, 'nope.log'), { ...base, follow: false })), []);
  });

  test('follow sees appended lines, waits for a file to appear, and ends at exit', async () => {
    const later = join(dir, 'later.log');
    let exit!: () => void;
    const exited = new Promise<void>((resolve) => (exit = resolve));
    const reading = entries(readLogs(later, { ...base, follow: true, exited }));
    await new Promise((r) => setTimeout(r, 150));
    await writeFile(later, line(1, 'stdout', 'F', 'first'));
    await new Promise((r) => setTimeout(r, 150));
    await appendFile(later, line(2, 'stderr', 'F', 'second') + line(3, 'stdout', 'P', 'no newline'));
    await new Promise((r) => setTimeout(r, 150));
    exit();
    assert.deepEqual(text(await reading), ['stdout:first\n', 'stderr:second\n', 'stdout:no newline']);
  });

  test('follow ends quietly on abort', async () => {
    const controller = new AbortController();
    const reading = entries(readLogs(path, { ...base, follow: true, tail: 1, signal: controller.signal }));
    setTimeout(() => controller.abort(), 100);
    assert.deepEqual(text(await reading), ['stdout:unfinished']);
  });
});
