/**
 * Benchmark: container-to-container traffic on a tenant network, same host vs across hosts
 * (issue 7). `berth server` with two agents, each in its own network namespace on the lab
 * bridge (test/support/cluster-harness.ts); one tenant network; a receiver pinned to host A;
 * one sender on host A (same host: the bridge only) and one on host B (across hosts: bridge,
 * VXLAN, the underlay veths and lab bridge, VXLAN, bridge).
 *
 * Rows, each the median of --runs:
 *   - TCP throughput: --mib MiB in 1 MiB writes to a fresh receiver that discards them,
 *     timed by the sender from connect to the receiver's close after the last byte;
 *   - latency: mean TCP round trip of one byte echoed back (TCP_NODELAY), over 2000.
 * Both tools are perl scripts below, run in the Debian test image.
 *
 * Usage: node dist/bench/cross-host.js [--runs 5] [--mib 512] [--no-write]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { startCluster } from '../test/support/cluster-harness.js';
import { dockerOk } from '../test/support/docker-cli.js';
import { DEBIAN_IMAGE, debianImageTar } from '../test/support/test-images.js';
import { writeBenchmarkSection } from './doc-section.js';
import { median } from './timing.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, mib: { type: 'string', default: '1024' }, 'no-write': { type: 'boolean', default: false } } });
const runs = Number(values.runs);
const mib = Number(values.mib);
const ROUND_TRIPS = 2000;

/**
 * The tools, in perl (perl-base is in the Debian test image; busybox nc moves 1 KiB per system
 * call and measured itself, not the network). Sizes in MiB, writes of 1 MiB.
 */
const PERL_PRELUDE =
  'use IO::Socket::INET; use Socket qw(IPPROTO_TCP TCP_NODELAY); ' +
  // CLOCK_MONOTONIC through clock_gettime (x86_64 syscall 228): Time::HiRes is not in perl-base.
  'sub now { my $t = "\\0" x 16; syscall(228, 1, $t) == 0 or die "clock_gettime: $!"; my ($s, $n) = unpack("q q", $t); $s + $n / 1e9 }';
/** Receiver: one connection; discards a stream, or echoes single bytes (mode "echo"). */
const RECEIVER = `${PERL_PRELUDE} my ($port, $mode) = @ARGV; my $l = IO::Socket::INET->new(LocalPort => $port, Listen => 1, ReuseAddr => 1) or die "listen: $!"; my $c = $l->accept; setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1); my $b; if ($mode eq "echo") { syswrite($c, $b) while sysread($c, $b, 1) } else { 1 while sysread($c, $b, 1048576) } close $c;`;
/** Sender: streams MiB then waits for the receiver's close, or does N one-byte round trips; prints the seconds taken after connect. */
const SENDER = `${PERL_PRELUDE} my ($port, $mode, $n) = @ARGV; my $s; for (1..50) { $s = IO::Socket::INET->new(PeerAddr => "receiver", PeerPort => $port) and last; select(undef, undef, undef, 0.1) } die "connect: $!" unless $s; setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1); my $x; my $t0 = now(); if ($mode eq "echo") { for (1..$n) { syswrite($s, "x"); sysread($s, $x, 1) == 1 or die "echo" } } else { my $b = "\\0" x 1048576; for (1..$n) { my $w = 0; while ($w < 1048576) { my $r = syswrite($s, $b, 1048576 - $w, $w); die "write: $!" unless defined $r; $w += $r } } shutdown($s, 1); sysread($s, $x, 1) } printf("%.6f\\n", now() - $t0);`;

/** Seconds the sender printed (its last line). */
function seconds(output: string): number {
  const value = Number(output.trim().split('\n').pop());
  if (!Number.isFinite(value)) throw new Error(`no timing in: ${output}`);
  return value;
}

// A generous down timeout: loading the 170 MB Debian image onto both hosts can delay heartbeats on a busy machine.
const cluster = await startCluster({ controlPlane: 'berth-server', downTimeoutMs: 15_000 });
try {
  await cluster.startAgent({ name: 'bench-a' });
  await cluster.startAgent({ name: 'bench-b' });
  const env = await cluster.createTenantClient('bench-tenant');
  await dockerOk(env, ['load', '-i', await debianImageTar()]);
  await dockerOk(env, ['network', 'create', 'benchnet']);
  const pin = (host: string): string[] => ['-e', `constraint:node==${host}`];
  await dockerOk(env, ['run', '-d', '--name', 'receiver', '--network', 'benchnet', ...pin('bench-a'), DEBIAN_IMAGE, 'sleep', '3600']);
  await dockerOk(env, ['run', '-d', '--name', 'same-host', '--network', 'benchnet', ...pin('bench-a'), DEBIAN_IMAGE, 'sleep', '3600']);
  await dockerOk(env, ['run', '-d', '--name', 'other-host', '--network', 'benchnet', ...pin('bench-b'), DEBIAN_IMAGE, 'sleep', '3600']);

  let port = 5000;
  /** Seconds one sender takes for one job against a fresh receiver, timed from after connect. */
  const job = async (sender: string, mode: 'stream' | 'echo', n: number): Promise<number> => {
    port++;
    await dockerOk(env, ['exec', '-d', 'receiver', 'perl', '-e', RECEIVER, String(port), mode]);
    const out = await dockerOk(env, ['exec', sender, 'perl', '-e', SENDER, String(port), mode, String(n)]);
    return seconds(out);
  };
  const send = async (sender: string): Promise<number> => (mib * 1024 * 1024) / (await job(sender, 'stream', mib));
  const rtt = async (sender: string): Promise<number> => ((await job(sender, 'echo', ROUND_TRIPS)) * 1000) / ROUND_TRIPS;

  const rows: { label: string; mbps: number[]; rttMs: number[] }[] = [
    { label: 'same host (bridge)', mbps: [], rttMs: [] },
    { label: 'across hosts (VXLAN)', mbps: [], rttMs: [] },
  ];
  const senders = ['same-host', 'other-host'];
  await send('same-host'); // warm-up: ARP, DNS, caches
  await send('other-host');
  for (let i = 0; i < runs; i++) {
    for (let s = 0; s < 2; s++) {
      rows[s]!.mbps.push((await send(senders[s]!)) / 1e6);
      rows[s]!.rttMs.push(await rtt(senders[s]!));
    }
  }
  const same = median(rows[0]!.mbps);
  const across = median(rows[1]!.mbps);
  const lines = [
    '## Container to container, same host vs across hosts (`bench/cross-host.ts`)',
    '',
    `\`node dist/bench/cross-host.js --runs ${runs} --mib ${mib}\` — ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load ${os.loadavg()[0]!.toFixed(2)} at the end; agents in their own network namespaces on one machine, so "across hosts" crosses veths and a Linux bridge instead of a NIC. Medians of ${runs} runs.`,
    '',
    `| path | TCP throughput (MB/s) | TCP round trip, 1 byte (ms, mean of ${ROUND_TRIPS}) |`,
    '| --- | ---: | ---: |',
    ...rows.map((r) => `| ${r.label} | ${median(r.mbps).toFixed(0)} | ${median(r.rttMs).toFixed(3)} |`),
    '',
    `Across hosts: ${((across / same) * 100).toFixed(0)} % of same-host throughput (target ≥ 80 %).`,
    '',
    'Both ends are perl scripts in the Debian test image (1 MiB writes; TCP_NODELAY echo for the round trip); busybox nc, which moves 1 KiB per system call, measured itself (25 MB/s). The MTU is 1450 on the tenant network (VXLAN) in both rows, as on a real cluster.',
  ];
  const section = lines.join('\n');
  console.log(section);
  if (!values['no-write']) await writeBenchmarkSection('bench/cross-host.ts', section);
} finally {
  await cluster.stop();
}
