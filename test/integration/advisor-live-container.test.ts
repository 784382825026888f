/**
 * The advisor's agent-side readers against real containers: runtime state (processes, listening
 * ports, drift) of a container Berth runs, and the runtime-settings compliance checks over the
 * HostConfig that `docker inspect` shows, from Berth and, for settings Berth refuses
 * (--privileged, host namespaces), from a real dockerd.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readRuntimeState, takeInventory } from '../../src/agent/inventory/index.js';
import { runComplianceChecks } from '../../src/server/advisor/compliance/index.js';
import type { ComplianceSubject } from '../../src/server/advisor/model.js';
import { startBerth, type BerthInstance } from '../support/berth-harness.js';
import { sleep } from '../support/cleanup.js';
import { dockerOk } from '../support/docker-cli.js';
import { startDockerd, type DockerdInstance } from '../support/dockerd-harness.js';
import { busyboxImageTar } from '../support/test-images.js';

const IMAGE = 'berth-test/busybox';

interface Inspect {
  State: { Pid: number };
  Config: ComplianceSubject['config'];
  HostConfig: Record<string, unknown>;
  GraphDriver: { Data: { UpperDir: string; MergedDir: string } };
}

async function inspect(env: NodeJS.ProcessEnv, name: string): Promise<Inspect> {
  return (JSON.parse(await dockerOk(env, ['inspect', name])) as Inspect[])[0]!;
}

/** The check ids that fire for a container's inspect, runtime-settings checks only. */
async function runtimeFindings(container: Inspect, rootfs: string): Promise<string[]> {
  const subject: ComplianceSubject = { rootfs, config: container.Config, hostConfig: container.HostConfig, inventory: await takeInventory(rootfs) };
  const findings = await runComplianceChecks(subject);
  return [...new Set(findings.map((f) => f.checkId).filter((id) => id.startsWith('BERTH-RUNTIME-')))].sort();
}

describe('a live Berth container', () => {
  let berth: BerthInstance;
  let hostDir = '';

  before(async () => {
    const [b, tar] = await Promise.all([startBerth(), busyboxImageTar()]);
    berth = b;
    hostDir = await mkdtemp(join(tmpdir(), 'berth-advisor-bind-'));
    await dockerOk(berth.env, ['load', '-i', tar]);
  });
  after(async () => {
    await berth?.stop();
    await rm(hostDir, { recursive: true, force: true });
  });

  test('processes with their users, listening ports and drift', async () => {
    await dockerOk(berth.env, ['run', '-d', '--name', 'live', IMAGE, 'sh', '-c', 'echo new > /etc/added; rm /etc/group; echo hi > /tmp/index.html; httpd -f -p 8080 -h /tmp & nc -l -p 9090 & exec sleep 300']);
    await dockerOk(berth.env, ['exec', '-d', '-u', 'nobody', 'live', 'sleep', '301']);
    const container = await inspect(berth.env, 'live');
    let state = await readRuntimeState({ pid: container.State.Pid, rootfs: container.GraphDriver.Data.MergedDir, upperDir: container.GraphDriver.Data.UpperDir });
    for (let i = 0; i < 50 && (state.listening.length < 2 || state.processes.length < 4); i++) {
      await sleep(100);
      state = await readRuntimeState({ pid: container.State.Pid, rootfs: container.GraphDriver.Data.MergedDir, upperDir: container.GraphDriver.Data.UpperDir });
    }
    const processes = state.processes.map((p) => `${p.user} ${p.command}`).sort();
    assert.deepEqual(processes, ['nobody sleep 301', 'root httpd -f -p 8080 -h /tmp', 'root nc -l -p 9090', 'root sleep 300']);
    assert.ok(state.processes.some((p) => p.pid === container.State.Pid));
    const ports = state.listening.map((l) => `${l.protocol} ${l.port}`).sort();
    assert.ok(ports.some((p) => /^tcp6? 8080$/.test(p)), ports.join(', '));
    assert.ok(ports.some((p) => /^tcp6? 9090$/.test(p)), ports.join(', '));
    // (busybox has no UDP listener; the unshare test in test/agent/inventory covers UDP.)
    assert.deepEqual(state.drift.deleted, ['/etc/group']);
    assert.ok(state.drift.added.includes('/etc/added'), JSON.stringify(state.drift));
    assert.ok(state.drift.added.includes('/tmp/index.html'), JSON.stringify(state.drift));
    assert.deepEqual(state.drift.changed, []);
    // The inventory of a live container reads its merged root: the busybox image has no packages.
    assert.deepEqual((await takeInventory(container.GraphDriver.Data.MergedDir)).packages, []);
  });

  test('runtime-settings checks over the HostConfig Berth reports', async () => {
    await dockerOk(berth.env, ['create', '--name', 'loose', '--cap-add', 'SYS_ADMIN', '-v', `${hostDir}:/data`, '-v', '/etc:/host-etc:ro', IMAGE, 'true']);
    await dockerOk(berth.env, ['create', '--name', 'tight', '--read-only', '--memory', '64m', '--pids-limit', '50', '--cap-drop', 'ALL', '--cap-add', 'CHOWN', IMAGE, 'true']);
    const loose = await inspect(berth.env, 'loose');
    const tight = await inspect(berth.env, 'tight');
    assert.deepEqual(await runtimeFindings(loose, loose.GraphDriver.Data.MergedDir), [
      'BERTH-RUNTIME-CAPABILITIES',
      'BERTH-RUNTIME-HOST-MOUNT',
      'BERTH-RUNTIME-NO-MEMORY-LIMIT',
      'BERTH-RUNTIME-NO-PIDS-LIMIT',
      'BERTH-RUNTIME-SENSITIVE-MOUNT',
      'BERTH-RUNTIME-WRITABLE-ROOTFS',
    ]);
    assert.deepEqual(await runtimeFindings(tight, tight.GraphDriver.Data.MergedDir), []);
  });
});

describe('HostConfig of settings Berth refuses, from a real dockerd', () => {
  let dockerd: DockerdInstance;
  let emptyRoot = '';
  before(async () => {
    const [d, tar] = await Promise.all([startDockerd(), busyboxImageTar()]);
    dockerd = d;
    emptyRoot = await mkdtemp(join(tmpdir(), 'berth-advisor-empty-'));
    await dockerOk(dockerd.env, ['load', '-i', tar]);
  });
  after(async () => {
    await dockerd?.stop();
    await rm(emptyRoot, { recursive: true, force: true });
  });

  test('--privileged, --network/--pid/--ipc/--uts host and a docker.sock mount', async () => {
    await dockerOk(dockerd.env, ['create', '--name', 'host-everything', '--privileged', '--network', 'host', '--pid', 'host', '--ipc', 'host', '--uts', 'host', '-v', '/run/docker.sock:/var/run/docker.sock', '--memory', '64m', '--pids-limit', '50', '--read-only', IMAGE, 'true']);
    const container = await inspect(dockerd.env, 'host-everything');
    const subject: ComplianceSubject = { rootfs: emptyRoot, config: container.Config, hostConfig: container.HostConfig, inventory: await takeInventory(emptyRoot) };
    const findings = (await runComplianceChecks(subject)).filter((f) => f.checkId.startsWith('BERTH-RUNTIME-'));
    assert.deepEqual(findings.map((f) => `${f.checkId}: ${f.detail}`).sort(), [
      'BERTH-RUNTIME-HOST-NAMESPACE: HostConfig.IpcMode is "host": the host\'s ipc namespace',
      'BERTH-RUNTIME-HOST-NAMESPACE: HostConfig.NetworkMode is "host": the host\'s network namespace',
      'BERTH-RUNTIME-HOST-NAMESPACE: HostConfig.PidMode is "host": the host\'s pid namespace',
      'BERTH-RUNTIME-HOST-NAMESPACE: HostConfig.UTSMode is "host": the host\'s uts namespace',
      'BERTH-RUNTIME-PRIVILEGED: HostConfig.Privileged is true: every capability, every device, no seccomp or AppArmor',
      'BERTH-RUNTIME-SENSITIVE-MOUNT: host path /run/docker.sock is mounted at /var/run/docker.sock',
    ]);
  });
});
