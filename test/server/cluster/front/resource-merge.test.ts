import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { EventMerger } from '../../../../src/server/cluster/front/events.js';
import { tagTarget } from '../../../../src/server/cluster/front/image-transfer.js';
import { baseImagesOf, peekBuildContext } from '../../../../src/server/cluster/front/images-build.js';
import { mergeImageLists, repositoryOf, type ImageSummary } from '../../../../src/server/cluster/front/images.js';
import { mergeNetworkInspects, mergeNetworkLists, pinSubnet } from '../../../../src/server/cluster/front/networks.js';
import type { DockerEvent } from '../../../../src/server/events/types.js';
import { tarOf } from '../../../support/tar-files.js';

const image = (id: string, created: number, tags: string[], extra: Partial<ImageSummary> = {}): ImageSummary => ({
  Id: id,
  Created: created,
  RepoTags: tags,
  RepoDigests: [],
  Containers: -1,
  ...extra,
});

test('image lists merge by id: tags and digests unioned, newest first', () => {
  const merged = mergeImageLists([
    [image('sha256:a', 10, ['app:1']), image('sha256:b', 20, ['web:1'], { RepoDigests: ['r/web@sha256:1'] })],
    [image('sha256:a', 10, ['app:1', 'app:latest']), image('sha256:c', 5, [])],
    [image('sha256:b', 20, ['web:1'], { RepoDigests: null })],
  ]);
  assert.deepEqual(
    merged.map((entry) => [entry.Id, entry.RepoTags, entry.RepoDigests]),
    [
      ['sha256:b', ['web:1'], ['r/web@sha256:1']],
      ['sha256:a', ['app:1', 'app:latest'], []],
      ['sha256:c', [], []],
    ],
  );
});

test('container counts add up unless a host does not count', () => {
  const counted = mergeImageLists([[image('sha256:a', 1, [], { Containers: 2 })], [image('sha256:a', 1, [], { Containers: 3 })]]);
  assert.equal(counted[0]!.Containers, 5);
  const uncounted = mergeImageLists([[image('sha256:a', 1, [], { Containers: 2 })], [image('sha256:a', 1, [], { Containers: -1 })]]);
  assert.equal(uncounted[0]!.Containers, -1);
});

test('repository and tag of references', () => {
  const cases: { name: string; ref: string; repo: string; tag: ReturnType<typeof tagTarget> }[] = [
    { name: 'bare', ref: 'busybox', repo: 'busybox', tag: { repo: 'busybox', tag: 'latest' } },
    { name: 'tagged', ref: 'busybox:1.36', repo: 'busybox', tag: { repo: 'busybox', tag: '1.36' } },
    { name: 'registry port', ref: '127.0.0.1:5000/a/b', repo: '127.0.0.1:5000/a/b', tag: { repo: '127.0.0.1:5000/a/b', tag: 'latest' } },
    { name: 'registry port and tag', ref: '127.0.0.1:5000/a/b:v1', repo: '127.0.0.1:5000/a/b', tag: { repo: '127.0.0.1:5000/a/b', tag: 'v1' } },
    { name: 'digest', ref: 'r:5000/a@sha256:' + 'f'.repeat(64), repo: 'r:5000/a', tag: undefined },
    { name: 'id', ref: 'sha256:' + 'a'.repeat(64), repo: 'sha256', tag: undefined },
    { name: 'short id', ref: 'abcdef012345', repo: 'abcdef012345', tag: undefined },
  ];
  for (const c of cases) {
    if (c.name !== 'id') assert.equal(repositoryOf(c.ref), c.repo, c.name);
    assert.deepEqual(tagTarget(c.ref), c.tag, c.name);
  }
});

test('network lists: a cluster network once by id, predefined networks once by name', () => {
  const merged = mergeNetworkLists([
    [
      { Id: 'b1', Name: 'bridge' },
      { Id: 'n', Name: 'net' },
    ],
    [
      { Id: 'b2', Name: 'bridge' },
      { Id: 'n', Name: 'net' },
      { Id: 'm', Name: 'alpha' },
    ],
  ]);
  assert.deepEqual(
    merged.map((n) => `${n.Name}/${n.Id}`),
    ['alpha/m', 'bridge/b1', 'net/n'],
  );
});

test('network inspect gathers the containers of every host', () => {
  const merged = mergeNetworkInspects([
    { Id: 'n', Name: 'net', Containers: { c1: { Name: 'a' } } },
    { Id: 'n', Name: 'net', Containers: { c2: { Name: 'b' } } },
    { Id: 'n', Name: 'net', Containers: null },
  ]);
  assert.deepEqual(Object.keys(merged.Containers ?? {}).sort(), ['c1', 'c2']);
});

test("the first host's subnet is pinned into the create body, keeping the tenant's other IPAM fields", () => {
  const body = { Name: 'n', IPAM: { Driver: 'default', Options: { a: 'b' } }, Labels: { x: 'y' } };
  const pinned = pinSubnet(body, { Id: 'n', Name: 'n', IPAM: { Config: [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.1' }] } });
  assert.deepEqual(pinned, { Name: 'n', Labels: { x: 'y' }, IPAM: { Driver: 'default', Options: { a: 'b' }, Config: [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.1' }] } });
  assert.deepEqual(pinSubnet(body, { Id: 'n', Name: 'n', IPAM: null }), body);
});

const event = (action: string, id: string, timeNano: number): DockerEvent => ({
  Type: 'container',
  Action: action,
  Actor: { ID: id, Attributes: {} },
  scope: 'local',
  time: Math.floor(timeNano / 1e9),
  timeNano,
});

test('events of several streams come out once each, in time order within the hold window', async () => {
  const written: string[] = [];
  const merger = new EventMerger((e) => written.push(`${e.Action}:${e.Actor.ID}`), 20);
  merger.add(event('start', 'b', 2_000_000_002));
  merger.add(event('create', 'a', 2_000_000_001));
  merger.add(event('start', 'b', 2_000_000_002)); // the same event again (a host re-subscribed)
  merger.add(event('create', 'c', 1_000_000_000));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(written, ['create:c', 'create:a', 'start:b']);
  merger.add(event('die', 'a', 3_000_000_000));
  merger.flush();
  assert.deepEqual(written.at(-1), 'die:a');
  merger.close();
  merger.add(event('destroy', 'a', 4_000_000_000));
  merger.flush();
  assert.equal(written.length, 4, 'nothing after close');
});

test('a cluster network said by every host is one event; two containers of one network stay two', () => {
  const written: string[] = [];
  const merger = new EventMerger((e) => written.push(`${e.Action}:${e.Actor.Attributes.container ?? ''}`), 1000);
  const network = (action: string, timeNano: number, attributes: Record<string, string>): DockerEvent => ({
    Type: 'network',
    Action: action,
    Actor: { ID: 'n1', Attributes: attributes },
    scope: 'local',
    time: Math.floor(timeNano / 1e9),
    timeNano,
  });
  merger.add(network('create', 5_000_000_001, { name: 'net', type: 'bridge' }));
  merger.add(network('create', 5_000_000_900, { name: 'net', type: 'bridge' }));
  merger.add(network('connect', 6_000_000_001, { name: 'net', type: 'bridge', container: 'c1' }));
  merger.add(network('connect', 6_000_000_002, { name: 'net', type: 'bridge', container: 'c2' }));
  merger.flush();
  merger.close();
  assert.deepEqual(written, ['create:', 'connect:c1', 'connect:c2']);
});

test('base images of a Dockerfile: stages, scratch and ARG-made names left out', () => {
  const text = [
    'ARG BASE=busybox',
    'FROM --platform=linux/amd64 golang:1.22 AS build',
    'FROM $BASE',
    'FROM scratch AS empty',
    'FROM build AS again',
    'FROM localhost:5000/app/base@sha256:' + 'a'.repeat(64),
    'FROM golang:1.22',
  ].join('\n');
  assert.deepEqual(baseImagesOf(text), ['golang:1.22', 'localhost:5000/app/base@sha256:' + 'a'.repeat(64)]);
  assert.deepEqual(baseImagesOf('FROM'), []);
});

test('peeking at a build context finds the Dockerfile and gives every byte back', async () => {
  const context = await tarOf({ 'app/a.txt': 'x'.repeat(100_000), 'build/Dockerfile.dev': 'FROM front/base:1\nRUN true\n', 'z.txt': 'z' });
  const chunks = Array.from({ length: Math.ceil(context.length / 1000) }, (_, i) => context.subarray(i * 1000, (i + 1) * 1000));
  const peeked = await peekBuildContext(Readable.from(chunks), './build/Dockerfile.dev');
  assert.deepEqual(peeked.baseImages, ['front/base:1']);
  const again: Buffer[] = [];
  for await (const chunk of peeked.body) again.push(chunk as Buffer);
  assert.ok(Buffer.concat(again).equals(context));

  const missing = await peekBuildContext(Readable.from([context]), 'Dockerfile');
  assert.deepEqual(missing.baseImages, []);
  const gzipped = Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]);
  const compressed = await peekBuildContext(Readable.from([gzipped]), 'Dockerfile');
  const back: Buffer[] = [];
  for await (const chunk of compressed.body) back.push(chunk as Buffer);
  assert.ok(Buffer.concat(back).equals(gzipped));
});
