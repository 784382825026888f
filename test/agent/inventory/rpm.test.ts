import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { takeInventory } from '../../../src/agent/inventory/index.js';
import { decodeHeader, parseSourceRpm } from '../../../src/agent/inventory/rpm.js';

const run = promisify(execFile);

/**
 * A real rpm database (rpm 4.18's SQLite backend) written by rpm itself: two binary packages
 * built with rpmbuild from one spec (so one has a source package of another name), installed
 * with --justdb into a fresh root (at /var/lib/rpm: Debian's rpm defaults to ~/.rpmdb). The
 * inventory must agree with `rpm -qa` on that root.
 */
let scratch = '';
let root = '';
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'berth-rpm-'));
  root = join(scratch, 'root');
  const top = join(scratch, 'build');
  await mkdir(join(top, 'SPECS'), { recursive: true });
  const spec = join(top, 'SPECS/fixture.spec');
  await writeFile(
    spec,
    [
      'Name: berth-fixture',
      'Version: 1.2.3',
      'Release: 4.fc40',
      'Epoch: 2',
      'Summary: Berth rpm fixture',
      'License: MIT AND BSD-3-Clause',
      'BuildArch: noarch',
      '%description',
      'A fixture.',
      '%package -n libfixture-data',
      'Summary: data',
      'License: CC0-1.0',
      '%description -n libfixture-data',
      'Data.',
      '%files',
      '%files -n libfixture-data',
      '',
    ].join('\n'),
  );
  await run('rpmbuild', ['--quiet', '-bb', '--define', `_topdir ${top}`, spec]);
  const rpms = (await readdir(join(top, 'RPMS/noarch'))).map((f) => join(top, 'RPMS/noarch', f));
  await mkdir(root);
  await run('rpm', ['--root', root, '--dbpath', '/var/lib/rpm', '--initdb']);
  await run('rpm', ['--root', root, '--dbpath', '/var/lib/rpm', '-i', '--justdb', '--nodeps', '--noscripts', ...rpms]);
});
after(() => rm(scratch, { recursive: true, force: true }));

test('rpm packages agree with rpm -qa on the same SQLite database', async () => {
  const { stdout } = await run('rpm', ['--root', root, '--dbpath', '/var/lib/rpm', '-qa', '--qf', '%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%{LICENSE}\\n']);
  const expected = stdout.trim().split('\n').sort();
  assert.equal(expected.length, 2);
  const inventory = await takeInventory(root);
  const rpm = inventory.packages.filter((p) => p.ecosystem === 'rpm');
  assert.deepEqual(rpm.map((p) => [p.name, p.version, p.architecture, `${p.sourceName}-${(p.sourceVersion ?? '').replace(/^\d+:/, '')}.src.rpm`, p.license].join('\t')).sort(), expected);
  assert.deepEqual(
    rpm.map((p) => [p.name, p.version, p.sourceName, p.sourceVersion, p.location]).sort(),
    [
      ['berth-fixture', '2:1.2.3-4.fc40', 'berth-fixture', '2:1.2.3-4.fc40', '/var/lib/rpm/rpmdb.sqlite'],
      ['libfixture-data', '2:1.2.3-4.fc40', 'berth-fixture', '2:1.2.3-4.fc40', '/var/lib/rpm/rpmdb.sqlite'],
    ],
  );
});

test('source rpm names and malformed header blobs', () => {
  assert.deepEqual(parseSourceRpm('openssl-3.0.7-25.el9_3.src.rpm'), { name: 'openssl', version: '3.0.7-25.el9_3' });
  assert.deepEqual(parseSourceRpm('python3-pip-21.3.1-1.fc40.src.rpm'), { name: 'python3-pip', version: '21.3.1-1.fc40' });
  assert.equal(parseSourceRpm('(none)'), undefined);
  assert.equal(decodeHeader(Buffer.alloc(4)), undefined);
  // Claims more index entries and data than the blob holds.
  const lying = Buffer.alloc(8);
  lying.writeUInt32BE(1000, 0);
  lying.writeUInt32BE(1000, 4);
  assert.equal(decodeHeader(lying), undefined);
});

test('a file that is not an SQLite database yields no packages', async () => {
  const bad = join(scratch, 'bad');
  await mkdir(join(bad, 'var/lib/rpm'), { recursive: true });
  await writeFile(join(bad, 'var/lib/rpm/rpmdb.sqlite'), 'not a database');
  assert.deepEqual((await takeInventory(bad)).packages, []);
});
