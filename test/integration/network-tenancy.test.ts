/**
 * Networks are tenant-scoped: each tenant has its own predefined networks (its own default
 * bridge), network names are per tenant, another tenant's network or container is "not
 * found", and packets and names do not cross from one tenant's networks to another's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { docker, dockerOk } from '../support/docker-cli.js';
import { startTenantBerth, type TenantBerth } from '../support/tenants.js';
import { BUSYBOX_IMAGE, busyboxImageTar } from '../support/test-images.js';

describe('networks per tenant', () => {
  let t: TenantBerth;
  let acme: NodeJS.ProcessEnv;
  let globex: NodeJS.ProcessEnv;

  before(async () => {
    t = await startTenantBerth();
    acme = await t.createTenant('acme');
    globex = await t.createTenant('globex');
    const tar = await busyboxImageTar();
    await dockerOk(acme, ['load', '-i', tar]);
    await dockerOk(globex, ['load', '-i', tar]);
  });
  after(async () => {
    await t?.stop();
  });

  test('each tenant has its own networks; nothing crosses between tenants', async () => {
    const acmeBridge = (await dockerOk(acme, ['network', 'inspect', '--format', '{{.Id}} {{(index .IPAM.Config 0).Subnet}}', 'bridge'])).trim();
    const globexBridge = (await dockerOk(globex, ['network', 'inspect', '--format', '{{.Id}} {{(index .IPAM.Config 0).Subnet}}', 'bridge'])).trim();
    assert.notEqual(acmeBridge.split(' ')[0], globexBridge.split(' ')[0], 'one default bridge per tenant');
    assert.notEqual(acmeBridge.split(' ')[1], globexBridge.split(' ')[1], 'on different subnets');

    await dockerOk(acme, ['network', 'create', 'app']);
    await dockerOk(globex, ['network', 'create', 'app']);
    const acmeNet = (await dockerOk(acme, ['network', 'inspect', '--format', '{{.Id}}', 'app'])).trim();
    await dockerOk(acme, ['run', '-d', '--name', 'acme-web', '--network', 'app', '--network-alias', 'web', BUSYBOX_IMAGE, 'sh', '-c', 'while true; do echo acme-secret | nc -l -p 80; done']);
    const acmeIp = (await dockerOk(acme, ['inspect', '--format', '{{(index .NetworkSettings.Networks "app").IPAddress}}', 'acme-web'])).trim();
    const acmeId = (await dockerOk(acme, ['inspect', '--format', '{{.Id}}', 'acme-web'])).trim();

    const own = await docker(acme, ['run', '--rm', '--network', 'app', BUSYBOX_IMAGE, 'sh', '-c', 'nc -w 3 web 80 </dev/null']);
    assert.match(own.stdout, /acme-secret/, 'control: the owner reaches its service by alias');

    const inspectForeign = await docker(globex, ['network', 'inspect', acmeNet]);
    assert.notEqual(inspectForeign.code, 0);
    assert.doesNotMatch(inspectForeign.stdout + inspectForeign.stderr, /acme/);
    const joinForeign = await docker(globex, ['run', '--rm', '--network', `container:${acmeId}`, BUSYBOX_IMAGE, 'true']);
    assert.notEqual(joinForeign.code, 0);
    assert.match(joinForeign.stderr, /No such container/);
    const connectForeign = await docker(globex, ['network', 'connect', acmeNet, 'acme-web']);
    assert.notEqual(connectForeign.code, 0);

    for (const network of ['app', 'bridge']) {
      const probe = await docker(globex, ['run', '--rm', '--network', network, BUSYBOX_IMAGE, 'sh', '-c', `nslookup web; nslookup acme-web; nc -w 2 ${acmeIp} 80 </dev/null; echo done`]);
      assert.match(probe.stdout, /done/);
      assert.doesNotMatch(probe.stdout, /acme-secret/, `globex on its ${network} network cannot reach acme's container`);
      assert.doesNotMatch(probe.stdout, new RegExp(`Address: ${acmeIp.replace(/\./g, '\\.')}$`, 'm'), `acme's names do not resolve for globex on ${network}`);
    }
    await dockerOk(acme, ['rm', '-f', 'acme-web']);
    await dockerOk(acme, ['network', 'rm', 'app']);
    await dockerOk(globex, ['network', 'rm', 'app']);
  });
});
