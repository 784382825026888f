/**
 * Berth driven by dockerode, the Docker SDK most Node programs use: the same calls a
 * program makes against dockerd, with the SDK's own stream demultiplexing and errors.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createReadStream } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import Docker from 'dockerode';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

let berth: BerthInstance;
let client: Docker;

function collect(stream: PassThrough): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

describe('dockerode against Berth', () => {
  before(async () => {
    berth = await startBerth();
    client = new Docker({ socketPath: berth.socket });
    const loaded = await client.loadImage(createReadStream(await busyboxImageTar()));
    await new Promise<void>((resolve, reject) => client.modem.followProgress(loaded, (err: Error | null) => (err ? reject(err) : resolve())));
  });
  after(async () => {
    await berth?.stop();
  });

  test('ping, version and image list', async () => {
    assert.equal(String(await client.ping()), 'OK');
    const version = await client.version();
    assert.equal(version.ApiVersion, '1.47');
    const images = await client.listImages();
    assert.ok(images.some((image) => image.RepoTags?.includes(BUSYBOX_IMAGE)));
  });

  test('create, attach, start, wait, logs, inspect, remove', async () => {
    const container = await client.createContainer({
      Image: BUSYBOX_IMAGE,
      Cmd: ['sh', '-c', 'echo to-out; echo to-err >&2; exit 2'],
      Labels: { suite: 'dockerode' },
    });
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    container.modem.demuxStream(stream, stdout, stderr);
    stream.on('end', () => {
      stdout.end();
      stderr.end();
    });
    const outputs = Promise.all([collect(stdout), collect(stderr)]);
    await container.start();
    const result = (await container.wait()) as { StatusCode: number };
    assert.equal(result.StatusCode, 2);
    assert.deepEqual(await outputs, ['to-out\n', 'to-err\n']);

    const info = await container.inspect();
    assert.equal(info.State.Status, 'exited');
    assert.equal(info.State.ExitCode, 2);
    assert.equal(info.Config.Labels.suite, 'dockerode');
    const logs = (await container.logs({ stdout: true, stderr: false })) as unknown as Buffer;
    // Non-TTY logs are multiplexed: an 8-byte header whose first byte is the stream (1 = stdout).
    assert.equal(logs[0], 1);
    assert.equal(logs.subarray(8).toString('utf8'), 'to-out\n');

    const listed = await client.listContainers({ all: true, filters: { label: ['suite=dockerode'] } });
    assert.deepEqual(listed.map((c) => c.Id), [container.id]);
    await container.remove();
    await assert.rejects(container.inspect(), (err: { statusCode?: number; json?: { message?: string } }) => {
      assert.equal(err.statusCode, 404);
      assert.match(String(err.json?.message), /No such container/);
      return true;
    });
  });

  test('exec with a demultiplexed stream and its exit code', async () => {
    const container = await client.createContainer({ Image: BUSYBOX_IMAGE, Cmd: ['sleep', '300'] });
    await container.start();
    try {
      const exec = await container.exec({ Cmd: ['sh', '-c', 'echo inside; exit 4'], AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({ hijack: true, stdin: false });
      const stdout = new PassThrough();
      container.modem.demuxStream(stream, stdout, new PassThrough());
      stream.on('end', () => stdout.end());
      assert.equal(await collect(stdout), 'inside\n');
      let inspected = await exec.inspect();
      for (let i = 0; i < 50 && inspected.Running; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        inspected = await exec.inspect();
      }
      assert.equal(inspected.ExitCode, 4);
    } finally {
      await container.remove({ force: true });
    }
  });

  test('bad input answers with Docker status codes', async () => {
    await assert.rejects(client.createContainer({ Image: 'no-such-image:latest' }), (err: { statusCode?: number }) => err.statusCode === 404);
    await assert.rejects(client.createContainer({ Image: BUSYBOX_IMAGE, name: 'bad name!' }), (err: { statusCode?: number }) => err.statusCode === 400);
    await assert.rejects(client.getContainer('nosuch').start(), (err: { statusCode?: number }) => err.statusCode === 404);
    assert.deepEqual(await client.listContainers({ all: true }), []);
  });
});
