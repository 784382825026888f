import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HelperServer } from '../../../src/agent/network/helper-server.js';

/**
 * The resident helper's protocol and life cycle, with a stand-in server (a shell script that
 * speaks the same lines) so that death and restart can be provoked at will.
 */

async function fakeServer(body: string): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-helper-server-'));
  const path = join(dir, 'helper');
  await writeFile(path, `#!/bin/sh\n[ "$1" = serve ] || exit 9\n${body}\n`);
  await chmod(path, 0o755);
  return { path, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

test('answers go to their requests in order; a non-zero code rejects with the message', async () => {
  // Echoes each request's first argument as the exit code and the rest as the message.
  const fake = await fakeServer('while IFS= read -r line; do code=${line%%\t*}; rest=${line#*\t}; echo "$code $rest"; done');
  try {
    const server = new HelperServer(() => fake.path);
    const results = await Promise.allSettled([server.run(['0', 'a']), server.run(['1', 'it broke']), server.run(['0', 'c'])]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((results[1] as PromiseRejectedResult).reason), /failed \(exit 1\): it broke$/);
    await assert.rejects(server.run(['0', 'a\tb']), /tab or newline/);
    server.close();
  } finally {
    await fake.cleanup();
  }
});

test('a server that dies fails the requests in flight, and the next request starts a new one', async () => {
  // Answers one request, then dies while the second is in flight.
  const fake = await fakeServer('read -r line; echo "0 "; read -r line; exit 3');
  try {
    const server = new HelperServer(() => fake.path);
    await server.run(['first']);
    await assert.rejects(server.run(['second']), /serve exited \(3\) before answering: second/);
    await server.run(['third']);
    server.close();
  } finally {
    await fake.cleanup();
  }
});

test('closing with a request in flight: it is settled by its own server, and new requests go to a new one', async () => {
  // Answers only a request named "new"; any other it reads, waits, and exits unanswered.
  const fake = await fakeServer('read -r line; sleep 0.2; [ "$line" = new ] && echo "0 "; exit 0');
  try {
    const server = new HelperServer(() => fake.path);
    const inFlight = server.run(['old']);
    server.close();
    const next = server.run(['new']);
    const [old, fresh] = await Promise.allSettled([inFlight, next]);
    assert.equal(old.status, 'rejected');
    assert.match(String((old as PromiseRejectedResult).reason), /exited \(0\) before answering: old/);
    assert.equal(fresh.status, 'fulfilled');
    server.close();
  } finally {
    await fake.cleanup();
  }
});

test('a missing helper fails the request with the reason', async () => {
  const server = new HelperServer(() => '/nonexistent/berth-userns');
  await assert.rejects(server.run(['net-plug']), /ENOENT/);
});
