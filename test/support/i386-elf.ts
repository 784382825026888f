/**
 * The smallest static i386 ELF executable: `exit(code)` through `int 0x80`, the kernel's
 * 32-bit syscall entry. Used to prove which syscall ABIs a container's seccomp filter admits.
 */
export function i386ExitElf(code: number): Buffer {
  const base = 0x08048000;
  const headerSize = 52;
  const programHeaderSize = 32;
  const text = Buffer.from([
    0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1 (exit)
    0xbb, code & 0xff, 0x00, 0x00, 0x00, // mov ebx, code
    0xcd, 0x80, // int 0x80
  ]);
  const size = headerSize + programHeaderSize + text.length;
  const elf = Buffer.alloc(size);
  elf.write('\x7fELF', 0, 'latin1');
  elf[4] = 1; // ELFCLASS32
  elf[5] = 1; // little endian
  elf[6] = 1; // EV_CURRENT
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(3, 18); // EM_386
  elf.writeUInt32LE(1, 20); // e_version
  elf.writeUInt32LE(base + headerSize + programHeaderSize, 24); // e_entry
  elf.writeUInt32LE(headerSize, 28); // e_phoff
  elf.writeUInt16LE(headerSize, 40); // e_ehsize
  elf.writeUInt16LE(programHeaderSize, 42); // e_phentsize
  elf.writeUInt16LE(1, 44); // e_phnum
  const ph = headerSize;
  elf.writeUInt32LE(1, ph); // PT_LOAD
  elf.writeUInt32LE(0, ph + 4); // p_offset
  elf.writeUInt32LE(base, ph + 8); // p_vaddr
  elf.writeUInt32LE(base, ph + 12); // p_paddr
  elf.writeUInt32LE(size, ph + 16); // p_filesz
  elf.writeUInt32LE(size, ph + 20); // p_memsz
  elf.writeUInt32LE(5, ph + 24); // PF_R | PF_X
  elf.writeUInt32LE(0x1000, ph + 28); // p_align
  text.copy(elf, headerSize + programHeaderSize);
  return elf;
}
