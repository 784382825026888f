import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES } from '../../../src/agent/runtime/capabilities.js';
import type { Seccomp, SeccompArg } from '../../../src/agent/runtime/oci-types.js';
import { CLONE_NAMESPACE_FLAGS, defaultSeccompProfile, GATED_SYSCALLS, NEVER_ALLOWED } from '../../../src/agent/runtime/seccomp.js';

/** What the filter answers for one call: 'allow' or the errno. A model of libseccomp's matching for this profile's rule shapes. */
function decide(profile: Seccomp, name: string, args: number[] = []): 'allow' | number {
  const matches = (a: SeccompArg): boolean => {
    const v = BigInt(args[a.index] ?? 0);
    const value = BigInt(a.value);
    switch (a.op) {
      case 'SCMP_CMP_EQ':
        return v === value;
      case 'SCMP_CMP_NE':
        return v !== value;
      case 'SCMP_CMP_MASKED_EQ':
        return (v & value) === BigInt(a.valueTwo ?? 0);
      default:
        throw new Error(`op ${a.op} not modelled`);
    }
  };
  for (const rule of profile.syscalls ?? []) {
    if (!rule.names.includes(name)) continue;
    if (!(rule.args ?? []).every(matches)) continue;
    return rule.action === 'SCMP_ACT_ALLOW' ? 'allow' : (rule.errnoRet ?? profile.defaultErrnoRet ?? 1);
  }
  return profile.defaultErrnoRet ?? 1;
}

const EPERM = 1;
const ENOSYS = 38;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNS = 0x00020000;
const CLONE_THREAD_FLAGS = 0x003d0f00; // what glibc passes for pthread_create
const SIGCHLD = 17;

const withCaps = (...extra: string[]): string[] => [...DEFAULT_CAPABILITIES, ...extra];

describe('defaultSeccompProfile', () => {
  test('shape: allowlist, EPERM default, native ABI only unless 32-bit is allowed, never x32', () => {
    const p = defaultSeccompProfile(withCaps(), { arch: 'x64' });
    assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(p.defaultErrnoRet, EPERM);
    assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64']);
    assert.deepEqual(defaultSeccompProfile([], { arch: 'x64', compat32: true }).architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']);
    assert.deepEqual(defaultSeccompProfile([], { arch: 'arm64' }).architectures, ['SCMP_ARCH_AARCH64']);
    assert.deepEqual(defaultSeccompProfile([], { arch: 'arm64', compat32: true }).architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  });

  const cases: { name: string; caps: string[]; call: string; args?: number[]; want: 'allow' | number }[] = [
    { name: 'read allowed', caps: withCaps(), call: 'read', want: 'allow' },
    { name: 'execve allowed', caps: withCaps(), call: 'execve', want: 'allow' },
    { name: 'chroot allowed with the default SYS_CHROOT', caps: withCaps(), call: 'chroot', want: 'allow' },
    { name: 'chroot blocked without SYS_CHROOT', caps: [], call: 'chroot', want: EPERM },
    { name: 'mount blocked', caps: withCaps(), call: 'mount', want: EPERM },
    { name: 'umount2 blocked', caps: withCaps(), call: 'umount2', want: EPERM },
    { name: 'mount allowed with SYS_ADMIN', caps: withCaps('CAP_SYS_ADMIN'), call: 'mount', want: 'allow' },
    { name: 'fsopen blocked', caps: withCaps(), call: 'fsopen', want: EPERM },
    { name: 'pivot_root blocked even with SYS_ADMIN', caps: withCaps('CAP_SYS_ADMIN'), call: 'pivot_root', want: EPERM },
    { name: 'unshare blocked', caps: withCaps(), call: 'unshare', want: EPERM },
    { name: 'setns blocked', caps: withCaps(), call: 'setns', want: EPERM },
    { name: 'unshare allowed with SYS_ADMIN', caps: withCaps('CAP_SYS_ADMIN'), call: 'unshare', want: 'allow' },
    { name: 'clone for fork allowed', caps: withCaps(), call: 'clone', args: [SIGCHLD], want: 'allow' },
    { name: 'clone for a thread allowed', caps: withCaps(), call: 'clone', args: [CLONE_THREAD_FLAGS], want: 'allow' },
    { name: 'clone NEWUSER blocked', caps: withCaps(), call: 'clone', args: [CLONE_NEWUSER | SIGCHLD], want: EPERM },
    { name: 'clone NEWNS blocked', caps: withCaps(), call: 'clone', args: [CLONE_NEWNS], want: EPERM },
    { name: 'clone NEWUSER allowed with SYS_ADMIN', caps: withCaps('CAP_SYS_ADMIN'), call: 'clone', args: [CLONE_NEWUSER], want: 'allow' },
    { name: 'clone3 answers ENOSYS', caps: withCaps(), call: 'clone3', want: ENOSYS },
    { name: 'clone3 allowed with SYS_ADMIN', caps: withCaps('CAP_SYS_ADMIN'), call: 'clone3', want: 'allow' },
    { name: 'init_module blocked', caps: withCaps(), call: 'init_module', want: EPERM },
    { name: 'finit_module allowed with SYS_MODULE', caps: withCaps('CAP_SYS_MODULE'), call: 'finit_module', want: 'allow' },
    { name: 'kexec_load blocked even with everything', caps: [...ALL_CAPABILITIES], call: 'kexec_load', want: EPERM },
    { name: 'reboot blocked', caps: withCaps(), call: 'reboot', want: EPERM },
    { name: 'reboot allowed with SYS_BOOT', caps: withCaps('CAP_SYS_BOOT'), call: 'reboot', want: 'allow' },
    { name: 'swapon blocked even with SYS_ADMIN', caps: withCaps('CAP_SYS_ADMIN'), call: 'swapon', want: EPERM },
    { name: 'bpf blocked', caps: withCaps(), call: 'bpf', want: EPERM },
    { name: 'bpf allowed with CAP_BPF', caps: withCaps('CAP_BPF'), call: 'bpf', want: 'allow' },
    { name: 'perf_event_open blocked', caps: withCaps(), call: 'perf_event_open', want: EPERM },
    { name: 'perf_event_open allowed with PERFMON', caps: withCaps('CAP_PERFMON'), call: 'perf_event_open', want: 'allow' },
    { name: 'keyctl blocked even with everything', caps: [...ALL_CAPABILITIES], call: 'keyctl', want: EPERM },
    { name: 'add_key blocked', caps: withCaps(), call: 'add_key', want: EPERM },
    { name: 'request_key blocked', caps: withCaps(), call: 'request_key', want: EPERM },
    { name: 'ptrace allowed (kernel >= 4.8)', caps: withCaps(), call: 'ptrace', want: 'allow' },
    { name: 'kcmp blocked', caps: withCaps(), call: 'kcmp', want: EPERM },
    { name: 'kcmp allowed with SYS_PTRACE', caps: withCaps('CAP_SYS_PTRACE'), call: 'kcmp', want: 'allow' },
    { name: 'acct blocked', caps: withCaps(), call: 'acct', want: EPERM },
    { name: 'acct allowed with SYS_PACCT', caps: withCaps('CAP_SYS_PACCT'), call: 'acct', want: 'allow' },
    { name: 'settimeofday blocked', caps: withCaps(), call: 'settimeofday', want: EPERM },
    { name: 'clock_settime blocked', caps: withCaps(), call: 'clock_settime', want: EPERM },
    { name: 'clock_settime allowed with SYS_TIME', caps: withCaps('CAP_SYS_TIME'), call: 'clock_settime', want: 'allow' },
    { name: 'iopl blocked', caps: withCaps(), call: 'iopl', want: EPERM },
    { name: 'ioperm allowed with SYS_RAWIO', caps: withCaps('CAP_SYS_RAWIO'), call: 'ioperm', want: 'allow' },
    { name: 'open_by_handle_at blocked', caps: withCaps(), call: 'open_by_handle_at', want: EPERM },
    { name: 'open_by_handle_at allowed with DAC_READ_SEARCH', caps: withCaps('CAP_DAC_READ_SEARCH'), call: 'open_by_handle_at', want: 'allow' },
    { name: 'userfaultfd blocked', caps: [...ALL_CAPABILITIES], call: 'userfaultfd', want: EPERM },
    { name: 'io_uring_setup blocked', caps: withCaps(), call: 'io_uring_setup', want: EPERM },
    { name: 'personality(PER_LINUX) allowed', caps: withCaps(), call: 'personality', args: [0], want: 'allow' },
    { name: 'personality query allowed', caps: withCaps(), call: 'personality', args: [0xffffffff], want: 'allow' },
    { name: 'personality(PER_LINUX32) allowed', caps: withCaps(), call: 'personality', args: [8], want: 'allow' },
    { name: 'personality(ADDR_NO_RANDOMIZE) blocked', caps: withCaps(), call: 'personality', args: [0x0040000], want: EPERM },
    { name: 'socket AF_INET allowed', caps: withCaps(), call: 'socket', args: [2], want: 'allow' },
    { name: 'socket AF_VSOCK blocked', caps: withCaps(), call: 'socket', args: [40], want: EPERM },
    { name: 'sethostname blocked', caps: withCaps(), call: 'sethostname', want: EPERM },
    { name: 'syslog allowed with SYSLOG', caps: withCaps('CAP_SYSLOG'), call: 'syslog', want: 'allow' },
    { name: 'vhangup blocked', caps: withCaps(), call: 'vhangup', want: EPERM },
    { name: 'mbind allowed with SYS_NICE', caps: withCaps('CAP_SYS_NICE'), call: 'mbind', want: 'allow' },
    { name: 'an unknown future syscall is blocked', caps: [...ALL_CAPABILITIES], call: 'frobnicate_namespaces', want: EPERM },
  ];
  for (const c of cases) {
    test(c.name, () => assert.equal(decide(defaultSeccompProfile(c.caps, { arch: 'x64' }), c.call, c.args), c.want));
  }

  test('gated and never-allowed names are absent from the base allowlist', () => {
    const base = defaultSeccompProfile([], { arch: 'x64' }).syscalls?.[0]?.names ?? [];
    for (const name of [...NEVER_ALLOWED, ...Object.values(GATED_SYSCALLS).flat()]) {
      assert.ok(!base.includes(name), name);
    }
  });

  test('the clone mask covers the seven namespace flags', () => {
    assert.equal(CLONE_NAMESPACE_FLAGS, 0x7e020000);
  });

  test('every syscall of the installed kernel headers is classified', (t) => {
    let names: string[];
    try {
      names = ['unistd_64.h', 'unistd_32.h'].flatMap((f) =>
        [...readFileSync(`/usr/include/x86_64-linux-gnu/asm/${f}`, 'utf8').matchAll(/#define __NR_(\w+)/g)].map((m) => m[1] as string),
      );
    } catch {
      t.skip('kernel headers not installed');
      return;
    }
    const everything = defaultSeccompProfile([...ALL_CAPABILITIES], { arch: 'x64' });
    const classified = new Set([...(everything.syscalls ?? []).flatMap((r) => r.names), ...NEVER_ALLOWED]);
    assert.deepEqual([...new Set(names)].filter((n) => !classified.has(n)), []);
  });
});
