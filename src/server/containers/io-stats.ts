import { totalmem } from 'node:os';
import type { ResourceStats } from '../../agent/runtime/types.js';
import { ZERO_TIME } from './model.js';

/**
 * Docker's stats JSON (`GET /containers/{id}/stats`, types.StatsJSON) built from the runtime's
 * samples. The docker CLI derives CPU % from the difference between `cpu_stats` and
 * `precpu_stats` (container usage against system usage, times online CPUs) and memory % from
 * `memory_stats.usage` minus inactive file cache over `memory_stats.limit`, so both samples and
 * the cache counters must be passed through unchanged. `networks` is omitted: containers have
 * loopback only.
 */

export interface DockerCpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

export interface DockerStats {
  read: string;
  preread: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: Record<string, { major: number; minor: number; op: string; value: number }[] | null>;
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: DockerCpuStats;
  precpu_stats: DockerCpuStats;
  memory_stats: { usage?: number; max_usage?: number; stats?: Record<string, number>; limit?: number };
  name: string;
  id: string;
}

const NO_THROTTLING = { periods: 0, throttled_periods: 0, throttled_time: 0 };

function cpuStats(sample: ResourceStats | undefined): DockerCpuStats {
  if (!sample) return { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: NO_THROTTLING };
  const { cpu } = sample;
  return {
    cpu_usage: {
      total_usage: cpu.totalUsageNs,
      ...(cpu.perCpuUsageNs.length > 0 ? { percpu_usage: cpu.perCpuUsageNs } : {}),
      usage_in_kernelmode: cpu.systemNs,
      usage_in_usermode: cpu.userNs,
    },
    system_cpu_usage: cpu.systemUsageNs,
    online_cpus: cpu.onlineCpus,
    throttling_data: NO_THROTTLING,
  };
}

/** The stats of a running container; `previous` is the sample before (or none for the first). */
export function dockerStats(record: { id: string; name: string }, sample: ResourceStats, previous: ResourceStats | undefined): DockerStats {
  const hostMemory = totalmem();
  // An unlimited cgroup reports a huge number; Docker shows the host's memory instead.
  const limit = sample.memory.limit > 0 && sample.memory.limit < hostMemory ? sample.memory.limit : hostMemory;
  return {
    read: sample.read,
    preread: previous?.read ?? ZERO_TIME,
    pids_stats: { current: sample.pids.current, ...(sample.pids.limit ? { limit: sample.pids.limit } : {}) },
    blkio_stats: blkioStats(sample.blkio.length > 0 ? sample.blkio : null),
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpuStats(sample),
    precpu_stats: cpuStats(previous),
    memory_stats: {
      usage: sample.memory.usage,
      ...(sample.memory.maxUsage !== undefined ? { max_usage: sample.memory.maxUsage } : {}),
      stats: sample.memory.stats,
      limit,
    },
    name: `/${record.name}`,
    id: record.id,
  };
}

/** Docker's blkio block: Berth reads service bytes only; the other counters stay null as dockerd leaves them on cgroup v2. */
function blkioStats(serviceBytes: DockerStats['blkio_stats'][string]): DockerStats['blkio_stats'] {
  return {
    io_service_bytes_recursive: serviceBytes,
    io_serviced_recursive: null,
    io_queue_recursive: null,
    io_service_time_recursive: null,
    io_wait_time_recursive: null,
    io_merged_recursive: null,
    io_time_recursive: null,
    sectors_recursive: null,
  };
}

/** What dockerd answers for a container that is not running: zeros, with name and id. */
export function emptyDockerStats(record: { id: string; name: string }): DockerStats {
  return {
    read: ZERO_TIME,
    preread: ZERO_TIME,
    pids_stats: {},
    blkio_stats: blkioStats(null),
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpuStats(undefined),
    precpu_stats: cpuStats(undefined),
    memory_stats: {},
    name: `/${record.name}`,
    id: record.id,
  };
}
