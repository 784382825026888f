import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BerthError } from '../../../src/common/errors.js';
import { parseBind, parseMountObject, parseVolumesFrom, validMountMode } from '../../../src/server/mounts/mount-spec.js';

const refuses = (fn: () => unknown, message: string, name: string): void => {
  assert.throws(fn, (err) => err instanceof BerthError && err.kind === 'InvalidArgument' && err.message === message, name);
};

test('parseBind reads -v strings as dockerd does', () => {
  const cases: { name: string; raw: string; want: Record<string, unknown>; volume?: unknown }[] = [
    { name: 'named volume', raw: 'data:/srv', want: { Type: 'volume', Destination: '/srv', Mode: 'z', RW: true, CopyData: true }, volume: { name: 'data' } },
    { name: 'anonymous', raw: '/srv/', want: { Type: 'volume', Destination: '/srv', Mode: '', RW: true }, volume: {} },
    { name: 'read-only nocopy', raw: 'data:/srv:ro,nocopy', want: { Type: 'volume', Mode: 'ro,nocopy', RW: false, CopyData: false } },
    { name: 'bind', raw: '/host/dir/:/in', want: { Type: 'bind', Source: '/host/dir', Destination: '/in', Mode: '', RW: true, Propagation: 'rprivate', CreateSource: true } },
    { name: 'bind with propagation', raw: '/h:/in:ro,rshared', want: { Type: 'bind', RW: false, Propagation: 'rshared', Mode: 'ro,rshared' } },
  ];
  for (const c of cases) {
    const parsed = parseBind(c.raw);
    for (const [key, value] of Object.entries(c.want)) assert.deepEqual((parsed.point as unknown as Record<string, unknown>)[key], value, `${c.name}: ${key}`);
    if (c.volume !== undefined) assert.deepEqual(parsed.volume, c.volume, c.name);
  }
});

test('parseBind refuses with dockerd\'s messages', () => {
  const cases: { raw: string; message: string }[] = [
    { raw: ':/x', message: "invalid volume specification: ':/x'" },
    { raw: '/x:rw', message: "invalid volume specification: '/x:rw'" },
    { raw: 'a:/b:c:d', message: "invalid volume specification: 'a:/b:c:d'" },
    { raw: '/x:/y:bogus', message: 'invalid mode: bogus' },
    { raw: '/x:/y:ro,rw', message: 'invalid mode: ro,rw' },
    { raw: 'vol:rel', message: "invalid volume specification: 'vol:rel': invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute" },
    { raw: 'vol:/', message: "invalid volume specification: 'vol:/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'" },
    { raw: 'vol:/x:shared', message: "invalid volume specification: 'vol:/x:shared': invalid mount config for type \"volume\": field BindOptions must not be specified" },
  ];
  for (const c of cases) refuses(() => parseBind(c.raw), c.message, c.raw);
});

test('validMountMode allows each kind of mode once', () => {
  assert.ok(validMountMode(''));
  assert.ok(validMountMode('ro,z,rslave,nocopy'));
  assert.ok(!validMountMode('ro,ro'));
  assert.ok(!validMountMode('z,Z'));
  assert.ok(!validMountMode('shared,slave'));
  assert.ok(!validMountMode('x'));
});

test('parseMountObject reads --mount objects and refuses bad ones', () => {
  const tmpfs = parseMountObject({ Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 64 * 1024 * 1024, Mode: 0o1777 } });
  assert.equal(tmpfs.point.TmpfsData, 'mode=1777,size=64m');
  assert.equal(parseMountObject({ Type: 'tmpfs', Target: '/t', ReadOnly: true, TmpfsOptions: { SizeBytes: 1000 } }).point.TmpfsData, 'ro,size=1000');
  const volume = parseMountObject({ Type: 'volume', Source: 'v', Target: '/v', VolumeOptions: { NoCopy: true, Labels: { a: 'b' }, DriverConfig: { Options: { type: 'tmpfs' } } } });
  assert.deepEqual(volume.volume, { name: 'v', driver: 'local', options: { type: 'tmpfs' }, labels: { a: 'b' } });
  assert.equal(volume.point.CopyData, false);
  assert.equal(volume.point.Mode, 'z');
  const bind = parseMountObject({ Type: 'bind', Source: '/tmp', Target: '/b', ReadOnly: true, BindOptions: { NonRecursive: true } });
  assert.deepEqual(bind.point, { Type: 'bind', Source: '/tmp', Destination: '/b', Mode: '', RW: false, Propagation: 'rprivate', NonRecursive: true });
  const cases: { raw: unknown; message: string }[] = [
    { raw: { Type: 'volume' }, message: 'invalid mount config for type "volume": field Target must not be empty' },
    { raw: { Type: 'bind', Target: '/x' }, message: 'invalid mount config for type "bind": field Source must not be empty' },
    { raw: { Type: 'bind', Source: 'rel', Target: '/x' }, message: "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute" },
    { raw: { Type: 'bind', Source: '/nonexistent-berth', Target: '/x' }, message: 'invalid mount config for type "bind": bind source path does not exist: /nonexistent-berth' },
    { raw: { Type: 'bind', Source: '/tmp', Target: '/x', BindOptions: { Propagation: 'odd' } }, message: 'invalid mount config for type "bind": invalid propagation mode: odd' },
    { raw: { Type: 'bind', Source: '/tmp', Target: '/x', VolumeOptions: {} }, message: 'invalid mount config for type "bind": field VolumeOptions must not be specified' },
    { raw: { Type: 'volume', Target: '/x', BindOptions: {} }, message: 'invalid mount config for type "volume": field BindOptions must not be specified' },
    { raw: { Type: 'volume', Target: '/x', ReadOnly: true }, message: 'invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes' },
    { raw: { Type: 'tmpfs', Source: 's', Target: '/x' }, message: 'invalid mount config for type "tmpfs": field Source must not be specified' },
    { raw: { Type: 'npipe', Target: '/x' }, message: 'invalid mount config for type "npipe": mount type unknown' },
    { raw: { Type: 'tmpfs', Target: '/' }, message: "invalid mount config for type \"tmpfs\": invalid specification: destination can't be '/'" },
  ];
  for (const c of cases) refuses(() => parseMountObject(c.raw), c.message, JSON.stringify(c.raw));
});

test('parseVolumesFrom takes container[:ro|rw]', () => {
  assert.deepEqual(parseVolumesFrom('web'), { container: 'web', mode: 'rw' });
  assert.deepEqual(parseVolumesFrom('web:ro'), { container: 'web', mode: 'ro' });
  refuses(() => parseVolumesFrom(''), 'volumes-from specification cannot be an empty string', 'empty');
  refuses(() => parseVolumesFrom('web:rshared'), 'invalid mode: rshared', 'propagation');
  refuses(() => parseVolumesFrom('web:nocopy'), 'invalid mode: nocopy', 'copy mode');
});
