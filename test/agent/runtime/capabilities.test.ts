import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isKind } from '../../../src/common/errors.js';
import {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  capabilityMask,
  effectiveCapabilities,
} from '../../../src/agent/runtime/capabilities.js';

const without = (list: readonly string[], ...drop: string[]): string[] => list.filter((c) => !drop.includes(c));

describe('effectiveCapabilities', () => {
  const cases: { name: string; add: string[]; drop: string[]; want?: string[]; err?: string }[] = [
    { name: 'defaults', add: [], drop: [], want: [...DEFAULT_CAPABILITIES] },
    { name: 'add with prefix', add: ['CAP_NET_ADMIN'], drop: [], want: [...DEFAULT_CAPABILITIES, 'CAP_NET_ADMIN'] },
    { name: 'add lower case without prefix', add: ['sys_ptrace'], drop: [], want: [...DEFAULT_CAPABILITIES, 'CAP_SYS_PTRACE'] },
    { name: 'drop mixed case', add: [], drop: ['Net_Raw', 'cap_mknod'], want: without(DEFAULT_CAPABILITIES, 'CAP_NET_RAW', 'CAP_MKNOD') },
    { name: 'drop ALL keeps only the added', add: ['chown', 'KILL'], drop: ['ALL'], want: ['CAP_CHOWN', 'CAP_KILL'] },
    { name: 'drop all lower case', add: [], drop: ['all'], want: [] },
    { name: 'add ALL minus drops', add: ['ALL'], drop: ['SYS_ADMIN'], want: without(ALL_CAPABILITIES, 'CAP_SYS_ADMIN') },
    { name: 'add ALL wins over drop ALL', add: ['ALL'], drop: ['ALL'], want: [...ALL_CAPABILITIES] },
    { name: 'add and drop the same: add wins', add: ['NET_RAW'], drop: ['NET_RAW'], want: [...without(DEFAULT_CAPABILITIES, 'CAP_NET_RAW'), 'CAP_NET_RAW'] },
    { name: 'adding a default twice does not duplicate', add: ['CHOWN', 'cap_chown'], drop: [], want: [...DEFAULT_CAPABILITIES] },
    { name: 'unknown add', add: ['FOO'], drop: [], err: 'unknown capability: "CAP_FOO"' },
    { name: 'unknown drop', add: [], drop: ['cap_bar'], err: 'unknown capability: "CAP_BAR"' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      if (c.err !== undefined) {
        assert.throws(
          () => effectiveCapabilities(c.add, c.drop),
          (err: unknown) => isKind(err, 'InvalidArgument') && (err as Error).message === c.err,
        );
      } else {
        assert.deepEqual(effectiveCapabilities(c.add, c.drop), c.want);
      }
    });
  }

  test('there are 14 defaults and 41 capabilities', () => {
    assert.equal(DEFAULT_CAPABILITIES.length, 14);
    assert.equal(ALL_CAPABILITIES.length, 41);
  });
});

describe('capabilityMask', () => {
  const cases: { name: string; caps: readonly string[]; want: string }[] = [
    { name: 'none', caps: [], want: '0000000000000000' },
    // The mask every Docker container shows as CapBnd.
    { name: 'docker defaults', caps: DEFAULT_CAPABILITIES, want: '00000000a80425fb' },
    { name: 'all of Linux 6.x', caps: ALL_CAPABILITIES, want: '000001ffffffffff' },
  ];
  for (const c of cases) test(c.name, () => assert.equal(capabilityMask(c.caps), c.want));
});
