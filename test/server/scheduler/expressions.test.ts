import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKind } from '../../../src/common/errors.js';
import { statusOf } from '../../../src/server/docker-api/errors.js';
import {
  AFFINITIES_LABEL,
  CONSTRAINTS_LABEL,
  normalizeImageReference,
  parsePlacementRules,
  parseRule,
  placementEnvKind,
} from '../../../src/server/scheduler/expressions.js';

test('env and label rules parse into constraints and affinities with key, operator and softness', () => {
  const rules = parsePlacementRules(
    ['PATH=/bin', 'constraint:region==eu', 'affinity:container!=web-1', 'affinity:image==~redis', 'affinity:role!=~db'],
    { [CONSTRAINTS_LABEL]: '["storage!=hdd"]', [AFFINITIES_LABEL]: '["container==db-*"]', other: 'x' },
  );
  assert.deepEqual(
    rules.constraints.map((r) => [r.key, r.negated, r.soft, r.pattern.kind, r.text]),
    [
      ['region', false, false, 'exact', 'region==eu'],
      ['storage', true, false, 'exact', 'storage!=hdd'],
    ],
  );
  assert.deepEqual(
    rules.affinities.map((r) => [r.key, r.negated, r.soft, r.pattern.kind, r.pattern.text]),
    [
      ['container', true, false, 'exact', 'web-1'],
      ['image', false, true, 'exact', 'redis'],
      ['role', true, true, 'exact', 'db'],
      ['container', false, false, 'glob', 'db-*'],
    ],
  );
});

test('value patterns: exact, whole-value globs, searched regexps and (?i)', () => {
  const cases: { name: string; value: string; matches: string[]; misses: string[] }[] = [
    { name: 'exact', value: 'web-1', matches: ['web-1'], misses: ['web-10', 'Web-1', 'xweb-1'] },
    { name: 'glob prefix', value: 'web-*', matches: ['web-', 'web-1', 'web-abc'], misses: ['aweb-1', 'web'] },
    { name: 'glob middle', value: 'a*z', matches: ['az', 'abcz'], misses: ['abc', 'zaz1'] },
    { name: 'glob keeps dots literal', value: 'v1.*', matches: ['v1.2'], misses: ['v1x2'] },
    { name: 'regex searches', value: '/web-[0-9]+/', matches: ['web-1', 'my-web-22'], misses: ['web-x'] },
    { name: 'anchored regex', value: '/^foo/', matches: ['foobar'], misses: ['barfoo'] },
    { name: 'regex escapes', value: '/foo\\[bar\\]/', matches: ['foo[bar]'], misses: ['foob'] },
    { name: 'case-insensitive regex', value: '/(?i)node1/', matches: ['NoDe1', 'node1'], misses: ['node2'] },
  ];
  for (const c of cases) {
    const rule = parseRule('affinity', `container==${c.value}`);
    for (const m of c.matches) assert.ok(rule.pattern.test(m), `${c.name}: ${c.value} should match ${m}`);
    for (const m of c.misses) assert.ok(!rule.pattern.test(m), `${c.name}: ${c.value} should not match ${m}`);
  }
});

test('bad expressions are 400s in Docker error shape that quote the expression', () => {
  const bad: { name: string; env?: string[]; labels?: Record<string, string>; message: RegExp }[] = [
    { name: 'single =', env: ['affinity:container=web-1'], message: /invalid affinity expression "affinity:container=web-1": expected <key>==<value>/ },
    { name: 'no operator', env: ['constraint:region'], message: /invalid constraint expression "constraint:region"/ },
    { name: 'empty value', env: ['constraint:region=='], message: /invalid constraint expression/ },
    { name: 'key starting with a digit', env: ['constraint:1region==eu'], message: /key starting with a letter or underscore/ },
    { name: 'empty key', env: ['affinity:==web'], message: /invalid affinity expression/ },
    { name: 'soft rule without a value', env: ['constraint:region==~'], message: /invalid constraint expression "constraint:region==~"/ },
    { name: 'bad regexp', env: ['affinity:container==/web-[/'], message: /invalid affinity expression "affinity:container==\/web-\[\/": bad regular expression/ },
    { name: 'empty regexp', env: ['affinity:container==//'], message: /empty regular expression/ },
    { name: 'overlong regexp', env: [`affinity:container==/${'a'.repeat(300)}/`], message: /longer than 256 characters/ },
    { name: 'space in value', env: ['constraint:region==e u'], message: /must not contain spaces/ },
    { name: 'label not JSON', labels: { [CONSTRAINTS_LABEL]: 'region==eu' }, message: /invalid label com\.docker\.swarm\.constraints: expected a JSON array of strings/ },
    { name: 'label not an array of strings', labels: { [AFFINITIES_LABEL]: '[1]' }, message: /invalid label com\.docker\.swarm\.affinities/ },
    { name: 'bad rule inside a label', labels: { [AFFINITIES_LABEL]: '["container<>x"]' }, message: /invalid affinity expression "container<>x"/ },
  ];
  for (const c of bad) {
    assert.throws(
      () => parsePlacementRules(c.env ?? [], c.labels ?? {}),
      (err: unknown) => {
        assert.ok(isKind(err, 'InvalidArgument'), c.name);
        assert.equal(statusOf(err), 400, c.name);
        assert.match((err as Error).message, c.message, c.name);
        return true;
      },
    );
  }
});

test('only constraint: and affinity: env entries are rules', () => {
  assert.equal(placementEnvKind('constraint:region==eu'), 'constraint');
  assert.equal(placementEnvKind('affinity:container!=a'), 'affinity');
  assert.equal(placementEnvKind('CONSTRAINT=1'), undefined);
  assert.equal(placementEnvKind('affinity=1'), undefined);
  assert.deepEqual(parsePlacementRules(['A=b', 'affinity=x'], {}), { constraints: [], affinities: [] });
});

test('image references normalise to name:tag as the image index keeps them', () => {
  assert.equal(normalizeImageReference('redis'), 'redis:latest');
  assert.equal(normalizeImageReference('redis:7'), 'redis:7');
  assert.equal(normalizeImageReference('docker.io/library/redis'), 'redis:latest');
  assert.equal(normalizeImageReference('localhost:5000/app'), 'localhost:5000/app:latest');
  assert.equal(normalizeImageReference('localhost:5000/app:v2'), 'localhost:5000/app:v2');
  assert.equal(normalizeImageReference('sha256:abc'), 'sha256:abc');
  assert.equal(normalizeImageReference('app@sha256:abc'), 'app@sha256:abc');
});
