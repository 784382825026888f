import type { Seccomp, SeccompArch, SeccompSyscall } from './oci-types.js';

/**
 * Berth's default seccomp profile.
 *
 * Shape: an ALLOWLIST. The default action is SCMP_ACT_ERRNO with EPERM and the profile lists
 * what may run. We chose it over a denylist (default allow, list what is blocked) because
 * - a syscall the profile has never heard of (a new kernel's new way to mount, create
 *   namespaces, …) stays blocked instead of silently allowed; runc additionally answers ENOSYS
 *   for syscall numbers above the highest one the profile names, so libc falls back cleanly;
 * - "allow when an argument is one of a few values" (personality) and "allow unless a flag
 *   bit is set" (clone) need one comparison per rule, which a denylist cannot express on
 *   runc (it turns several comparisons of one argument into OR'ed rules).
 *
 * Content: `GENERAL` is every syscall of the x86_64 and i386 tables of Linux 6.1 except those
 * listed in `GATED` (allowed only when the container holds a capability that makes Docker's
 * default profile allow them) and in `NEVER` (blocked even then). Names a kernel or libseccomp
 * does not know are skipped by runc, so one list serves x86_64 and, when the operator allows
 * it, 32-bit x86. The x32 ABI is never listed: libseccomp then refuses every x32 syscall on an
 * x86_64 filter (stricter than Docker, which lists it); Debian's kernels are built without
 * CONFIG_X86_X32_ABI anyway.
 * On top come the argument rules: clone only without namespace flags (unless
 * CAP_SYS_ADMIN), clone3 answered with ENOSYS so that libc falls back to clone where its flags
 * can be inspected, personality only with the values Docker allows, and socket on any family
 * but AF_VSOCK.
 *
 * Deliberate differences from Docker's profile: io_uring_* are blocked (as Docker ≥ 25 does);
 * a few harmless legacy i386 calls (nice, readdir, signal, …) are allowed; ptrace,
 * process_vm_readv/writev are allowed without CAP_SYS_PTRACE as Docker does on kernels ≥ 4.8,
 * which Berth requires. adjtimex and clock_adjtime stay allowed as in Docker: they only read
 * unless the caller holds CAP_SYS_TIME, which the kernel checks.
 */

const EPERM = 1;
const ENOSYS = 38;

/** The namespace bits of clone(2)'s flags: NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET. */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

const AF_VSOCK = 40;

/** personality(2) values: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query 0xffffffff. */
const PERSONALITY_ALLOWED = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** Syscalls allowed only with one of the capabilities named; the kernel checks the same capability. */
const GATED: Record<string, readonly string[]> = {
  // Mounts, namespaces, and what they reach: the heart of container escapes.
  CAP_SYS_ADMIN: [
    'bpf', 'clone', 'clone3', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick',
    'lookup_dcookie', 'mount', 'mount_setattr', 'move_mount', 'open_tree', 'perf_event_open',
    'quotactl', 'quotactl_fd', 'setdomainname', 'sethostname', 'setns', 'syslog', 'umount',
    'umount2', 'unshare',
  ],
  CAP_BPF: ['bpf'],
  CAP_PERFMON: ['perf_event_open'],
  CAP_SYSLOG: ['syslog'],
  CAP_SYS_BOOT: ['reboot'],
  CAP_SYS_CHROOT: ['chroot'],
  CAP_SYS_MODULE: ['delete_module', 'init_module', 'finit_module'],
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_PTRACE: ['kcmp', 'pidfd_getfd', 'process_madvise'],
  CAP_SYS_RAWIO: ['iopl', 'ioperm'],
  CAP_SYS_TIME: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'],
  CAP_SYS_TTY_CONFIG: ['vhangup'],
  CAP_SYS_NICE: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node', 'migrate_pages', 'move_pages'],
  CAP_DAC_READ_SEARCH: ['open_by_handle_at'],
};

/** Blocked whatever the capabilities: host-global state, obsolete interfaces, or not namespaced at all. */
const NEVER: readonly string[] = [
  // kernel replacement and keyrings (keys are not namespaced)
  'kexec_load', 'kexec_file_load', 'add_key', 'request_key', 'keyctl',
  // host-wide memory and mount-root changes
  'swapon', 'swapoff', 'pivot_root',
  // page-fault handling from user space has been an exploitation primitive
  'userfaultfd',
  // io_uring bypasses seccomp for the operations it performs
  'io_uring_setup', 'io_uring_enter', 'io_uring_register',
  // obsolete or never implemented
  '_sysctl', 'afs_syscall', 'bdflush', 'break', 'create_module', 'ftime', 'get_kernel_syms',
  'getpmsg', 'gtty', 'idle', 'lock', 'mpx', 'nfsservctl', 'prof', 'profil', 'putpmsg',
  'query_module', 'security', 'stty', 'sysfs', 'tuxcall', 'ulimit', 'uselib', 'ustat', 'vm86',
  'vm86old', 'vserver',
  // allowed only through the argument rules below
  'personality', 'socket',
];

/**
 * Every syscall name of Linux 6.1's x86_64 and i386 tables, minus GATED and NEVER, grouped by
 * purpose so that a review can see what a container may do.
 */
const GENERAL: readonly string[] = [
  // files and directories
  'access', 'chdir', 'chmod', 'chown', 'chown32', 'close', 'close_range', 'copy_file_range', 'creat',
  'dup', 'dup2', 'dup3', 'faccessat', 'faccessat2', 'fadvise64', 'fadvise64_64', 'fallocate',
  'fanotify_mark', 'fchdir', 'fchmod', 'fchmodat', 'fchown', 'fchown32', 'fchownat', 'fcntl',
  'fcntl64', 'fdatasync', 'flock', 'fstat', 'fstat64', 'fstatat64', 'fstatfs', 'fstatfs64', 'fsync',
  'ftruncate', 'ftruncate64', 'futimesat', 'getcwd', 'getdents', 'getdents64', 'inotify_add_watch',
  'inotify_init', 'inotify_init1', 'inotify_rm_watch', 'ioctl', 'lchown', 'lchown32', 'link', 'linkat',
  '_llseek', 'lseek', 'lstat', 'lstat64', 'mkdir', 'mkdirat', 'mknod', 'mknodat', 'name_to_handle_at',
  'newfstatat', 'oldfstat', 'oldlstat', 'oldstat', 'open', 'openat', 'openat2', 'pread64', 'preadv',
  'pipe', 'pipe2', 'preadv2', 'pwrite64', 'pwritev', 'pwritev2', 'read', 'readahead', 'readdir', 'readlink',
  'readlinkat', 'readv', 'rename', 'renameat', 'renameat2', 'rmdir', 'sendfile', 'sendfile64',
  'splice', 'stat', 'stat64', 'statfs', 'statfs64', 'statx', 'symlink', 'symlinkat', 'sync',
  'sync_file_range', 'syncfs', 'tee', 'truncate', 'truncate64', 'umask', 'unlink', 'unlinkat',
  'utime', 'utimensat', 'utimensat_time64', 'utimes', 'vmsplice', 'write', 'writev',
  // extended attributes
  'fgetxattr', 'flistxattr', 'fremovexattr', 'fsetxattr', 'getxattr', 'lgetxattr', 'listxattr',
  'llistxattr', 'lremovexattr', 'lsetxattr', 'removexattr', 'setxattr',
  // memory
  'brk', 'madvise', 'membarrier', 'memfd_create', 'memfd_secret', 'mincore', 'mlock', 'mlock2',
  'mlockall', 'mmap', 'mmap2', 'mprotect', 'mremap', 'msync', 'munlock', 'munlockall', 'munmap',
  'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'remap_file_pages',
  // processes, threads, scheduling, credentials
  'arch_prctl', 'capget', 'capset', 'execve', 'execveat', 'exit', 'exit_group', 'fork', 'vfork',
  'get_robust_list', 'set_robust_list', 'get_thread_area', 'set_thread_area', 'set_tid_address',
  'getcpu', 'getegid', 'getegid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getgroups',
  'getgroups32', 'getpgid', 'getpgrp', 'getpid', 'getppid', 'getpriority', 'getresgid',
  'getresgid32', 'getresuid', 'getresuid32', 'getrlimit', 'getrusage', 'getsid', 'gettid', 'getuid',
  'getuid32', 'ioprio_get', 'ioprio_set', 'modify_ldt', 'nice', 'pidfd_open', 'pidfd_send_signal',
  'prctl', 'prlimit64', 'process_mrelease', 'process_vm_readv', 'process_vm_writev', 'ptrace',
  'rseq', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_getaffinity', 'sched_getattr',
  'sched_getparam', 'sched_getscheduler', 'sched_rr_get_interval', 'sched_rr_get_interval_time64',
  'sched_setaffinity', 'sched_setattr', 'sched_setparam', 'sched_setscheduler', 'sched_yield',
  'seccomp', 'setfsgid', 'setfsgid32', 'setfsuid', 'setfsuid32', 'setgid', 'setgid32', 'setgroups',
  'setgroups32', 'setpgid', 'setpriority', 'setregid', 'setregid32', 'setresgid', 'setresgid32',
  'setresuid', 'setresuid32', 'setreuid', 'setreuid32', 'setrlimit', 'setsid', 'setuid', 'setuid32',
  'ugetrlimit', 'wait4', 'waitid', 'waitpid', 'landlock_add_rule', 'landlock_create_ruleset',
  'landlock_restrict_self',
  // signals
  'kill', 'pause', 'restart_syscall', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask',
  'rt_sigqueueinfo', 'rt_sigreturn', 'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64',
  'rt_tgsigqueueinfo', 'sgetmask', 'ssetmask', 'sigaction', 'sigaltstack', 'signal', 'signalfd',
  'signalfd4', 'sigpending', 'sigprocmask', 'sigreturn', 'sigsuspend', 'tgkill', 'tkill',
  // time and timers (reading; setting is GATED)
  'adjtimex', 'alarm', 'clock_adjtime', 'clock_adjtime64', 'clock_getres', 'clock_getres_time64',
  'clock_gettime', 'clock_gettime64', 'clock_nanosleep', 'clock_nanosleep_time64', 'getitimer',
  'gettimeofday', 'nanosleep', 'setitimer', 'time', 'timer_create', 'timer_delete',
  'timer_getoverrun', 'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64',
  'timerfd_create', 'timerfd_gettime', 'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64',
  'times',
  // waiting and events
  'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2',
  'epoll_wait', 'epoll_wait_old', 'eventfd', 'eventfd2', 'futex', 'futex_time64', 'futex_waitv',
  '_newselect', 'poll', 'ppoll', 'ppoll_time64', 'pselect6', 'pselect6_time64', 'select',
  // asynchronous I/O (io_uring is in NEVER)
  'io_cancel', 'io_destroy', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64', 'io_setup',
  'io_submit',
  // networking (socket itself goes through an argument rule)
  'accept', 'accept4', 'bind', 'connect', 'getpeername', 'getsockname', 'getsockopt', 'listen',
  'recvfrom', 'recvmmsg', 'recvmmsg_time64', 'recvmsg', 'sendmmsg', 'sendmsg', 'sendto',
  'setsockopt', 'shutdown', 'socketcall', 'socketpair',
  // System V and POSIX IPC (namespaced by the container's IPC namespace)
  'ipc', 'mq_getsetattr', 'mq_notify', 'mq_open', 'mq_timedreceive', 'mq_timedreceive_time64',
  'mq_timedsend', 'mq_timedsend_time64', 'mq_unlink', 'msgctl', 'msgget', 'msgrcv', 'msgsnd',
  'semctl', 'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'shmat', 'shmctl', 'shmdt',
  'shmget',
  // system information
  'getrandom', 'olduname', 'oldolduname', 'sysinfo', 'uname',
];

export type HostArch = 'x64' | 'arm64';

/**
 * The ABIs a container may use. By default only the host's native 64-bit one: libseccomp
 * refuses every syscall of an ABI the filter does not list, which shuts the kernel's 32-bit
 * compat entry points (a long line of kernel CVEs) to tenants, and `runc create` compiles
 * one filter instead of two (about 7 ms of every start). `compat32` lists the 32-bit ABI too,
 * with the same allowlist, for operators whose tenants run 32-bit binaries.
 */
function architectures(arch: HostArch, compat32: boolean): SeccompArch[] {
  if (arch === 'arm64') return compat32 ? ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'] : ['SCMP_ARCH_AARCH64'];
  return compat32 ? ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'] : ['SCMP_ARCH_X86_64'];
}

export interface SeccompProfileOptions {
  arch?: HostArch;
  /** Also allow the 32-bit ABI (x86 on x86_64, arm on arm64). Default false. */
  compat32?: boolean;
}

/** Names allowed outright for a process holding `caps` (canonical CAP_ names). */
export function allowedSyscalls(caps: readonly string[]): string[] {
  const allowed = new Set(GENERAL);
  for (const cap of caps) for (const name of GATED[cap] ?? []) allowed.add(name);
  // clone without CAP_SYS_ADMIN is allowed only through the flag rule.
  return [...allowed].sort();
}

/**
 * The profile for a container whose process holds `caps` (canonical CAP_ names, as
 * effectiveCapabilities returns them). Pure; same input, same profile.
 */
export function defaultSeccompProfile(caps: readonly string[], options: SeccompProfileOptions = {}): Seccomp {
  const arch = options.arch ?? (process.arch === 'arm64' ? 'arm64' : 'x64');
  const sysAdmin = caps.includes('CAP_SYS_ADMIN');
  const syscalls: SeccompSyscall[] = [{ names: allowedSyscalls(caps), action: 'SCMP_ACT_ALLOW' }];

  if (!sysAdmin) {
    syscalls.push(
      {
        names: ['clone'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      },
      // clone3 passes its flags in memory seccomp cannot read; ENOSYS makes glibc use clone.
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
    );
  }
  for (const value of PERSONALITY_ALLOWED) {
    syscalls.push({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }] });
  }
  // vsock reaches the hypervisor host, outside every network namespace.
  syscalls.push({ names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }] });

  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: architectures(arch, options.compat32 ?? false),
    syscalls,
  };
}

/** For tests and reviews: the names never allowed, whatever the capabilities. */
export const NEVER_ALLOWED: readonly string[] = NEVER.filter((n) => n !== 'personality' && n !== 'socket');
/** For tests and reviews: the capability that unlocks each gated name. */
export const GATED_SYSCALLS: Readonly<Record<string, readonly string[]>> = GATED;
