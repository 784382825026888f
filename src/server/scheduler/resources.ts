import type { HostView, Resources } from './types.js';

/**
 * The share of a host's capacity in use once `request` is added: the mean over the
 * resources the host has (CPU, memory, disk; GPUs are counted, not balanced), 0 to 1.
 */
export function utilizationWith(host: HostView, request: Readonly<Resources>): number {
  const { capacity } = host;
  const { allocated } = host;
  let sum = 0;
  let parts = 0;
  if (capacity.milliCpus > 0) {
    sum += Math.min(1, (allocated.milliCpus + request.milliCpus) / capacity.milliCpus);
    parts++;
  }
  if (capacity.memoryBytes > 0) {
    sum += Math.min(1, (allocated.memoryBytes + request.memoryBytes) / capacity.memoryBytes);
    parts++;
  }
  if (capacity.diskBytes > 0) {
    sum += Math.min(1, (allocated.diskBytes + request.diskBytes) / capacity.diskBytes);
    parts++;
  }
  return parts === 0 ? 0 : sum / parts;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 2147483648 → "2 GiB", 1610612736 → "1.5 GiB": the units `docker run -m` takes. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1).replace(/\.0$/, '')} ${BYTE_UNITS[unit]}`;
}

/** 1500 → "1.5 CPUs", 1000 → "1 CPU", in the terms of `docker run --cpus`. */
export function formatCpus(milliCpus: number): string {
  const cpus = milliCpus / 1000;
  return `${Number(cpus.toFixed(3))} ${cpus === 1 ? 'CPU' : 'CPUs'}`;
}
