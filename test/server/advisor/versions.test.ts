/** Version rules with expected answers written out (the dpkg differential test is versions-dpkg). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compareDebianVersions, compareNpmVersions, comparePypiVersions, normalizePypiName, parseDebianVersion } from '../../../src/server/advisor/versions/index.js';

function ordered(compare: (a: string, b: string) => number, ascending: string[]): void {
  for (let i = 0; i < ascending.length; i++) {
    for (let j = 0; j < ascending.length; j++) {
      const expected = Math.sign(i - j);
      assert.equal(compare(ascending[i]!, ascending[j]!), expected, `${ascending[i]} vs ${ascending[j]}: expected ${expected}`);
    }
  }
}

describe('Debian versions', () => {
  test('parses epoch, upstream and revision (the last hyphen splits)', () => {
    assert.deepEqual(parseDebianVersion('1:2.38.1-5+deb12u3'), { epoch: 1, upstream: '2.38.1', revision: '5+deb12u3' });
    assert.deepEqual(parseDebianVersion('1.0-1-2'), { epoch: 0, upstream: '1.0-1', revision: '2' });
    assert.deepEqual(parseDebianVersion('2.0'), { epoch: 0, upstream: '2.0', revision: '' });
    assert.deepEqual(parseDebianVersion('a:1.0'), { epoch: 0, upstream: 'a:1.0', revision: '' });
  });

  test('orders tilde, end of string, letters, other characters, then digits numerically', () => {
    ordered(compareDebianVersions, ['1.0~~', '1.0~~a', '1.0~', '1.0~rc1', '1.0', '1.0a', '1.0z', '1.0+', '1.0.', '1.0.1', '1.0.9', '1.0.10', '1.1']);
    ordered(compareDebianVersions, ['3.0.15-1~deb12u1', '3.0.15-1', '3.0.15-1+b1', '3.0.15-1+deb12u1', '3.0.15-2']);
    ordered(compareDebianVersions, ['9.9', '1:0.1', '1:1.0', '2:0']);
    ordered(compareDebianVersions, ['1.2A', '1.2Z', '1.2a']);
  });

  test('equal spellings: zero epoch, zero revision, leading zeros', () => {
    assert.equal(compareDebianVersions('0:1.0', '1.0'), 0);
    assert.equal(compareDebianVersions('1.0', '1.0-0'), 0);
    assert.equal(compareDebianVersions('1.001', '1.1'), 0);
    assert.equal(compareDebianVersions('99999999999999999999999', '100000000000000000000000'), -1, 'no overflow');
  });

  test('odd input is ordered, never thrown', () => {
    for (const v of ['', '-', ':', '1:', '::', '~', 'é', '1.0-']) assert.doesNotThrow(() => compareDebianVersions(v, '1.0'));
  });
});

describe('npm versions', () => {
  test('SemVer precedence, loose spellings', () => {
    ordered(compareNpmVersions, ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-beta', '1.0.0-rc.1', '1.0.0', '1.0.1', '1.10.0', '2.0.0']);
    assert.equal(compareNpmVersions('v1.2.3', '1.2.3'), 0);
    assert.equal(compareNpmVersions('1.2.3+build.5', '1.2.3'), 0, 'build metadata does not count');
    assert.throws(() => compareNpmVersions('latest', '1.0.0'));
  });
});

describe('PyPI versions and names', () => {
  test('PEP 440 order: dev, pre, final, post, epochs, local', () => {
    ordered(comparePypiVersions, ['1.0.dev1', '1.0a1', '1.0b2', '1.0rc1', '1.0', '1.0+local.1', '1.0.post1', '1.1', '1!0.1']);
    assert.equal(comparePypiVersions('1.0', '1.0.0'), 0);
    assert.equal(comparePypiVersions('1.0RC1', '1.0rc1'), 0);
    assert.throws(() => comparePypiVersions('not a version', '1.0'), /PEP 440/);
  });

  test('PEP 503 name normalisation', () => {
    assert.equal(normalizePypiName('Zope.Interface_Extra'), 'zope-interface-extra');
    assert.equal(normalizePypiName('a--_.b'), 'a-b');
    assert.equal(normalizePypiName('Django'), 'django');
  });
});
