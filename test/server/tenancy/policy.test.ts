import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BerthError } from '../../../src/common/errors.js';
import { DEFAULT_POLICY, enforceCreatePolicy, enforceExecPolicy, enforceUpdatePolicy, validatePolicyAllow } from '../../../src/server/tenancy/policy.js';

const refusal = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof BerthError && err.kind === 'Forbidden', String(err));
    return err.message;
  }
  assert.fail('not refused');
};

describe('tenant policy', () => {
  test('an ordinary request passes and gets the default limits', () => {
    const hc = enforceCreatePolicy(DEFAULT_POLICY, { CapAdd: ['CHOWN', 'cap_kill'], Binds: ['data:/data'], Sysctls: { 'net.ipv4.ip_forward': '1', 'net.core.somaxconn': '1', 'kernel.shmmax': '1' } });
    assert.equal(hc.Memory, DEFAULT_POLICY.defaultMemory);
    assert.equal(hc.PidsLimit, DEFAULT_POLICY.defaultPidsLimit);
    assert.equal(enforceCreatePolicy(DEFAULT_POLICY, { Memory: 7e6, PidsLimit: 5 }).Memory, 7e6);
    assert.equal(enforceCreatePolicy(DEFAULT_POLICY, undefined).PidsLimit, DEFAULT_POLICY.defaultPidsLimit);
  });

  test('each escape hatch is refused with the option named', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ Privileged: true }, /^--privileged is not allowed for tenants/],
      [{ NetworkMode: 'host' }, /^--network host/],
      [{ PidMode: 'host' }, /^--pid host/],
      [{ IpcMode: 'host' }, /^--ipc host/],
      [{ UTSMode: 'host' }, /^--uts host/],
      [{ UsernsMode: 'host' }, /^--userns host/],
      [{ CgroupnsMode: 'host' }, /^--cgroupns host/],
      [{ Binds: ['/etc:/x:ro'] }, /^the bind mount -v \/etc:\/x:ro/],
      [{ Mounts: [{ Type: 'bind', Source: '/', Target: '/h' }] }, /type=bind,source=\//],
      [{ Devices: [{ PathOnHost: '/dev/sda' }] }, /^--device/],
      [{ DeviceRequests: [{ Count: -1 }] }, /^--gpus/],
      [{ SecurityOpt: ['seccomp=unconfined'] }, /^--security-opt seccomp=unconfined/],
      [{ SecurityOpt: ['apparmor=unconfined'] }, /apparmor=unconfined/],
      [{ SecurityOpt: ['no-new-privileges=false'] }, /no-new-privileges=false/],
      [{ SecurityOpt: ['systempaths=unconfined'] }, /systempaths=unconfined/],
      [{ Sysctls: { 'kernel.core_pattern': '|/x' } }, /^--sysctl kernel.core_pattern/],
      [{ Sysctls: { 'vm.overcommit_memory': '1' } }, /^--sysctl vm.overcommit_memory/],
      [{ CgroupParent: '/' }, /^--cgroup-parent/],
      [{ OomScoreAdj: -1000 }, /^--oom-score-adj -1000/],
      [{ Runtime: 'runsc' }, /^--runtime runsc/],
      [{ CapAdd: ['SYS_ADMIN'] }, /^--cap-add SYS_ADMIN is not allowed for tenants.*cap:SYS_ADMIN/],
      [{ CapAdd: ['ALL'] }, /^--cap-add ALL/],
    ];
    for (const [hc, message] of cases) assert.match(refusal(() => enforceCreatePolicy(DEFAULT_POLICY, hc)), message);
    assert.match(refusal(() => enforceExecPolicy(DEFAULT_POLICY, { Privileged: true })), /docker exec --privileged/);
  });

  test('the operator loosens rules per tenant', () => {
    const policy = { ...DEFAULT_POLICY, allow: ['bind-mounts', 'cap:NET_ADMIN'] };
    enforceCreatePolicy(policy, { Binds: ['/srv:/srv'], CapAdd: ['NET_ADMIN'] });
    assert.match(refusal(() => enforceCreatePolicy(policy, { CapAdd: ['NET_RAW', 'SYS_MODULE'] })), /SYS_MODULE/);
    assert.throws(() => validatePolicyAllow(['everything']), /unknown policy rule "everything"/);
    validatePolicyAllow(['privileged', 'cap:net_admin']);
  });

  test('update cannot lift the limits', () => {
    assert.equal(enforceUpdatePolicy(DEFAULT_POLICY, { PidsLimit: -1 }).PidsLimit, DEFAULT_POLICY.defaultPidsLimit);
    assert.equal(enforceUpdatePolicy(DEFAULT_POLICY, { Memory: -1 }).Memory, DEFAULT_POLICY.defaultMemory);
    assert.equal(enforceUpdatePolicy(DEFAULT_POLICY, { Memory: 0 }).Memory, 0);
  });
});
