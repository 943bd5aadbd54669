/**
 * Hibernated tenants over real sshd, with the SANDBOX runtime (the docker double) as the engine: a deploy
 * to a paused or stopped tenant deploys, gates, and puts it back ("restore", the default) or leaves it
 * running ("wake"), and says so in the step's detail. The deploy records Compose's config hash, and
 * status reports a tenant whose containers were recreated with another configuration.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cli } from '../helpers/cli';
import { deploy } from '../helpers/deploy';
import { asDeployUser, freePort, haveSshd } from '../../src/testing';
import { historyOf, startFleet, type TestFleet, type TestTenant } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;

describeSshd('hibernated tenants over sshd', () => {
  let fleet: TestFleet;
  let keyFile: string;
  let a: TestTenant, b: TestTenant, c: TestTenant, d: TestTenant;
  const docker = (t: TestTenant, ...args: string[]) =>
    asDeployUser([process.execPath, resolve('dist/sandbox/runtime.js'), ...args], {
      cwd: t.dir,
      env: { FLEET_SANDBOX_STATE: join(fleet.sshds.get(t.server)!.dir, 'sandbox') },
    }).trim();
  const container = (t: TestTenant) =>
    docker(t, 'ps', '-aq', '--filter', `label=com.docker.compose.project=${t.id}`);
  const state = (t: TestTenant) => docker(t, 'inspect', '--format', '{{.State.Status}}', container(t));

  beforeAll(async () => {
    fleet = await startFleet({
      servers: 1,
      tenantsPerServer: 4,
      startWith: 'v1',
      edit: (r) => (r.servers[0].tenants[2].hibernated = 'wake'),
    });
    [a, b, c, d] = fleet.tenants as [TestTenant, TestTenant, TestTenant, TestTenant];
    keyFile = join(fleet.root, 'key');
    writeFileSync(keyFile, fleet.key.privateKey, { mode: 0o600 });
  }, 60_000);
  afterAll(async () => fleet?.stop());

  test('paused and stopped tenants are deployed, gated and put back; "wake" leaves one running', async () => {
    docker(a, 'pause', container(a));
    docker(b, 'stop', container(b));
    docker(c, 'pause', container(c));
    const report = await deploy(fleet.registry, fleet.key, 'v2');
    const byId = Object.fromEntries(report.targets.map((t) => [t.tenant, t]));
    expect(report.targets.map((t) => t.outcome)).toEqual(Array(4).fill('deployed'));
    const hibernateStep = (t: TestTenant) => byId[t.id]!.steps.find((s) => s.step === 'hibernate');
    expect(hibernateStep(a)).toMatchObject({ ok: true, detail: 'paused again, as before the deploy' });
    expect(hibernateStep(b)).toMatchObject({ ok: true, detail: 'stopped again, as before the deploy' });
    expect(hibernateStep(c)).toMatchObject({
      ok: true,
      detail: 'was paused; left running (hibernated: "wake")',
    });
    expect(hibernateStep(d)).toBeUndefined(); // it was running: nothing to put back
    expect([state(a), state(b), state(c), state(d)]).toEqual(['paused', 'exited', 'running', 'running']);
    for (const t of [a, b, c, d]) expect(fleet.env(t)).toContain(`APP_IMAGE=registry.test/acme/app:v2`);
    // the release passed its gate before it went back to sleep; a woken one answers with it
    expect(await fleet.health(c)).toBe('200 {"status":"ok","version":"v2"}');
  }, 60_000);

  test('the deploy records the config hash; status reports containers recreated with another config', async () => {
    const entry = historyOf(d).at(-1);
    expect(entry.configHash).toMatch(/^[a-f0-9]{64}$/);
    const run = (...args: string[]) =>
      cli([...args, '-r', join(fleet.root, 'registry.json'), '--key', keyFile], {}, { USER: 'op' });
    const before = JSON.parse((await run('status', '--format', 'json', '-s', `tenant=${d.id}`)).stdout);
    expect(before[0].drift).toEqual([]);
    // someone changed the service's configuration on the server and ran `compose up -d` by hand
    writeFileSync(join(d.dir, '.env'), fleet.env(d).replace(/APP_PORT=\d+/, `APP_PORT=${await freePort()}`));
    docker(d, 'compose', 'up', '-d');
    const after = JSON.parse((await run('status', '--format', 'json', '-s', `tenant=${d.id}`)).stdout);
    expect(after[0].drift).toEqual(['its Compose config differs from the deployed one (config-hash label)']);
  }, 60_000);
});
