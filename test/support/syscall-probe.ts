/**
 * Tiny static x86_64 programs that make one raw syscall and exit with its errno (0 when it
 * succeeded with 0, the low byte of -result otherwise). They let a test ask the kernel,
 * from inside a container, exactly what a syscall answers there, with no libc, shell applet
 * or compiler in between.
 *
 * Arguments are numbers or strings; strings are placed after the code, NUL-terminated, and
 * passed by address (the program is linked at a fixed address, not position independent).
 */
export type SyscallArg = number | bigint | string;

const BASE = 0x400000n;
const HEADER = 64;
const PROGRAM_HEADER = 56;

/** x86_64 syscall numbers used by the battery (arch/x86/entry/syscalls/syscall_64.tbl). */
export const SYS = {
  ptrace: 101,
  syslog: 103,
  mknod: 133,
  personality: 135,
  pivot_root: 155,
  chroot: 161,
  acct: 163,
  settimeofday: 164,
  mount: 165,
  umount2: 166,
  swapon: 167,
  reboot: 169,
  sethostname: 170,
  iopl: 172,
  ioperm: 173,
  init_module: 175,
  delete_module: 176,
  quotactl: 179,
  clock_settime: 227,
  kexec_load: 246,
  add_key: 248,
  keyctl: 250,
  unshare: 272,
  perf_event_open: 298,
  open_by_handle_at: 304,
  setns: 308,
  process_vm_readv: 310,
  finit_module: 313,
  bpf: 321,
  userfaultfd: 323,
  socket: 41,
  clone3: 435,
  io_uring_setup: 425,
  fsopen: 430,
  open_tree: 428,
  move_mount: 429,
} as const;

const REGISTER_LOADS = [
  [0x48, 0xbf], // mov rdi, imm64
  [0x48, 0xbe], // mov rsi, imm64
  [0x48, 0xba], // mov rdx, imm64
  [0x49, 0xba], // mov r10, imm64
  [0x49, 0xb8], // mov r8, imm64
  [0x49, 0xb9], // mov r9, imm64
] as const;

function u64(value: bigint): number[] {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, value));
  return [...b];
}

export function syscallProbeElf(nr: number, args: SyscallArg[] = []): Buffer {
  if (args.length > REGISTER_LOADS.length) throw new Error('at most six syscall arguments');
  // The code has a fixed length, so string addresses can be computed before it is emitted.
  const codeLength = 7 + args.length * 10 + 2 + 3 + 3 + 5 + 2;
  const dataStart = BigInt(HEADER + PROGRAM_HEADER + codeLength);
  const strings: Buffer[] = [];
  let dataOffset = 0n;
  const values = args.map((arg) => {
    if (typeof arg !== 'string') return BigInt(arg);
    const address = BASE + dataStart + dataOffset;
    const bytes = Buffer.from(`${arg}\0`, 'utf8');
    strings.push(bytes);
    dataOffset += BigInt(bytes.length);
    return address;
  });
  const code: number[] = [0x48, 0xc7, 0xc0, ...[...Buffer.from(new Uint32Array([nr]).buffer)]]; // mov rax, nr
  values.forEach((value, i) => code.push(...REGISTER_LOADS[i]!, ...u64(value)));
  code.push(0x0f, 0x05); // syscall
  code.push(0x48, 0xf7, 0xd8); // neg rax
  code.push(0x48, 0x89, 0xc7); // mov rdi, rax
  code.push(0xb8, 0x3c, 0x00, 0x00, 0x00); // mov eax, 60 (exit)
  code.push(0x0f, 0x05); // syscall
  if (code.length !== codeLength) throw new Error('probe code length mismatch');

  const body = Buffer.concat([Buffer.from(code), ...strings]);
  const size = HEADER + PROGRAM_HEADER + body.length;
  const elf = Buffer.alloc(size);
  elf.write('\x7fELF', 0, 'latin1');
  elf[4] = 2; // ELFCLASS64
  elf[5] = 1; // little endian
  elf[6] = 1; // EV_CURRENT
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(0x3e, 18); // EM_X86_64
  elf.writeUInt32LE(1, 20);
  elf.writeBigUInt64LE(BASE + BigInt(HEADER + PROGRAM_HEADER), 24); // e_entry
  elf.writeBigUInt64LE(BigInt(HEADER), 32); // e_phoff
  elf.writeUInt16LE(HEADER, 52); // e_ehsize
  elf.writeUInt16LE(PROGRAM_HEADER, 54); // e_phentsize
  elf.writeUInt16LE(1, 56); // e_phnum
  const ph = HEADER;
  elf.writeUInt32LE(1, ph); // PT_LOAD
  elf.writeUInt32LE(5, ph + 4); // PF_R | PF_X
  elf.writeBigUInt64LE(0n, ph + 8); // p_offset
  elf.writeBigUInt64LE(BASE, ph + 16); // p_vaddr
  elf.writeBigUInt64LE(BASE, ph + 24); // p_paddr
  elf.writeBigUInt64LE(BigInt(size), ph + 32); // p_filesz
  elf.writeBigUInt64LE(BigInt(size), ph + 40); // p_memsz
  elf.writeBigUInt64LE(0x1000n, ph + 48); // p_align
  body.copy(elf, HEADER + PROGRAM_HEADER);
  return elf;
}
