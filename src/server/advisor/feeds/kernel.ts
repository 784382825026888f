/**
 * Kernel packages are skipped by feeds and matching alike: a container runs on the host's
 * kernel, so a kernel package inside an image is never the kernel that runs.
 *
 * Only the kernel itself counts: `linux`, `linux-signed-<arch>` (also `linux-signed-6.12-amd64`),
 * `linux-latest`, versioned backports such as `linux-6.1`; not `linux-pam`, `linux-base` or `linux-atm`, which are
 * ordinary userland sources whose names happen to start with "linux".
 */
const KERNEL_SOURCE = /^linux(?:-signed(?:-[a-z0-9.+-]+)?|-latest(?:-[a-z0-9.+-]+)?|-\d+(?:\.\d+)*)?$/;
const KERNEL_BINARY = /^linux-(?:image|headers|modules|kbuild|support|libc-dev-unused)-/;

export function isKernelSource(source: string): boolean {
  return KERNEL_SOURCE.test(source);
}

export function isKernelBinary(binary: string): boolean {
  return KERNEL_BINARY.test(binary);
}
