import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKind } from '../../../src/common/errors.js';
import { parseChallenges } from '../../../src/server/registry/auth.js';
import { decodeRegistryAuth } from '../../../src/server/registry/credentials.js';
import { registryKey, RegistryEndpoints, splitRepository } from '../../../src/server/registry/endpoint.js';

test('splitRepository: Docker Hub names get library/, others keep their registry', () => {
  const cases = [
    { name: 'busybox', want: { domain: 'docker.io', path: 'library/busybox' } },
    { name: 'berth-test/busybox', want: { domain: 'docker.io', path: 'berth-test/busybox' } },
    { name: '127.0.0.1:5000/app', want: { domain: '127.0.0.1:5000', path: 'app' } },
    { name: 'localhost/a/b', want: { domain: 'localhost', path: 'a/b' } },
    { name: 'registry.example.com/team/app', want: { domain: 'registry.example.com', path: 'team/app' } },
  ];
  for (const c of cases) assert.deepEqual(splitRepository(c.name), c.want, c.name);
});

test('registryKey: the login address as credentials are kept', () => {
  assert.equal(registryKey('https://index.docker.io/v1/'), 'docker.io');
  assert.equal(registryKey(''), 'docker.io');
  assert.equal(registryKey('127.0.0.1:5000'), '127.0.0.1:5000');
  assert.equal(registryKey('http://127.0.0.1:5000/v2/'), '127.0.0.1:5000');
});

test('endpoints: loopback over HTTP, insecure ones TLS-unverified with HTTP fallback, the rest verified TLS', () => {
  const endpoints = new RegistryEndpoints(['registry.lan:5000', '10.1.0.0/16']);
  assert.deepEqual(endpoints.resolve('127.0.0.1:5000'), { domain: '127.0.0.1:5000', baseUrl: 'http://127.0.0.1:5000', skipTlsVerify: false });
  assert.equal(endpoints.resolve('localhost:5000').baseUrl, 'http://localhost:5000');
  assert.equal(endpoints.resolve('[::1]:5000').baseUrl, 'http://[::1]:5000');
  assert.deepEqual(endpoints.resolve('registry.lan:5000'), {
    domain: 'registry.lan:5000',
    baseUrl: 'https://registry.lan:5000',
    skipTlsVerify: true,
    fallbackUrl: 'http://registry.lan:5000',
  });
  assert.equal(endpoints.resolve('10.1.2.3:443').skipTlsVerify, true);
  assert.equal(endpoints.resolve('10.2.0.1').skipTlsVerify, false);
  assert.deepEqual(endpoints.resolve('docker.io'), { domain: 'docker.io', baseUrl: 'https://registry-1.docker.io', skipTlsVerify: false });
  assert.throws(() => new RegistryEndpoints(['bad value!']), (err: unknown) => isKind(err, 'InvalidArgument'));
});

test('parseChallenges reads Bearer and Basic challenges with quoted parameters', () => {
  assert.deepEqual(parseChallenges('Bearer realm="http://127.0.0.1:9/token",service="reg",scope="repository:a/b:pull,push"'), [
    { scheme: 'bearer', params: { realm: 'http://127.0.0.1:9/token', service: 'reg', scope: 'repository:a/b:pull,push' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="berth"'), [{ scheme: 'basic', params: { realm: 'berth' } }]);
  assert.deepEqual(parseChallenges(['Negotiate abc', 'basic realm=x']), [{ scheme: 'basic', params: { realm: 'x' } }]);
  assert.deepEqual(parseChallenges(undefined), []);
});

test('decodeRegistryAuth: absent, anonymous, credentials, legacy auth field, garbage', () => {
  const encode = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  assert.equal(decodeRegistryAuth(undefined), undefined);
  assert.deepEqual(decodeRegistryAuth('e30='), {});
  assert.deepEqual(decodeRegistryAuth(encode({ username: 'alice', password: 'pw', serveraddress: 'h:5000' })), { username: 'alice', password: 'pw' });
  assert.deepEqual(decodeRegistryAuth(encode({ auth: Buffer.from('bob:s3:cret').toString('base64') })), { username: 'bob', password: 's3:cret' });
  assert.deepEqual(decodeRegistryAuth(encode({ identitytoken: 'refresh' })), { identityToken: 'refresh' });
  assert.throws(() => decodeRegistryAuth('not base64 json'), (err: unknown) => isKind(err, 'InvalidArgument'));
});
