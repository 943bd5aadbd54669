/**
 * `fleet-deploy status` over real sshd, with the SANDBOX runtime (the docker double) as the engine:
 * versions and previous releases from the history, paused / stopped containers, drift (an .env edited
 * by hand, a target off its wave's majority), locks judged by their lease on the server's clock (a live
 * one whose directory is old, one that ran out, one without a lease judged by its age), and one
 * connection per server.
 */
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cli } from '../helpers/cli';
import { deploy } from '../helpers/deploy';
import { asDeployUser, handOver, haveSshd } from '../../src/testing';
import { startFleet, type TestFleet, type TestTenant } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;

describeSshd('status over sshd', () => {
  let fleet: TestFleet;
  let keyFile: string;
  const run = (...args: string[]) =>
    cli([...args, '-r', join(fleet.root, 'registry.json'), '--key', keyFile], {}, { USER: 'op' });
  /** The sandbox runtime as the deploy user runs it on that tenant's server. */
  const docker = (t: TestTenant, ...args: string[]) =>
    asDeployUser([process.execPath, resolve('dist/sandbox/runtime.js'), ...args], {
      cwd: t.dir,
      env: { FLEET_SANDBOX_STATE: join(fleet.sshds.get(t.server)!.dir, 'sandbox') },
    }).trim();
  const container = (t: TestTenant) =>
    docker(t, 'ps', '-aq', '--filter', `label=com.docker.compose.project=${t.id}`);

  beforeAll(async () => {
    fleet = await startFleet({ servers: 2, tenantsPerServer: 3, startWith: 'v1' });
    keyFile = join(fleet.root, 'key');
    writeFileSync(keyFile, fleet.key.privateKey, { mode: 0o600 });
    const report = await deploy(fleet.registry, fleet.key, 'v2');
    expect(report.targets.map((t) => t.outcome)).toEqual(Array(6).fill('deployed'));
  }, 90_000);
  afterAll(async () => fleet?.stop());

  test('all alike: running v2, previous v1, last deploy by jest, healthy probe, no drift', async () => {
    const r = await run('status', '--format', 'json');
    expect(r.code).toBe(0);
    const statuses = JSON.parse(r.stdout);
    expect(statuses).toHaveLength(6);
    for (const s of statuses) {
      expect(s).toMatchObject({
        state: 'running',
        version: 'v2',
        previous: 'v1',
        lastDeploy: { outcome: 'deployed', actor: 'jest', to: 'v2' },
        probe: { ok: true },
        drift: [],
      });
      expect(s.digests[0]).toMatch(/^registry\.test\/acme\/app@sha256:[a-f0-9]{64}$/);
    }
  }, 30_000);

  test('paused, stopped, drift and an interrupted deploy; one connection per server', async () => {
    const [a, b, c, d, e, f] = fleet.tenants as [
      TestTenant,
      TestTenant,
      TestTenant,
      TestTenant,
      TestTenant,
      TestTenant,
    ];
    docker(a, 'pause', container(a));
    docker(b, 'stop', container(b));
    // someone edited .env by hand (and did not deploy): it names v3 now
    writeFileSync(join(c.dir, '.env'), fleet.env(c).replace(':v2', ':v3'));
    // a deploy that died holding the lock three hours ago
    mkdirSync(join(d.dir, '.fleet', 'lock'));
    writeFileSync(
      join(d.dir, '.fleet', 'lock', 'owner'),
      JSON.stringify({ token: 'x', run: 'ci-run-7', actor: 'alice', since: '2020-01-01T00:00:00Z' }),
    );
    const old = Date.now() / 1000 - 3 * 3600;
    utimesSync(join(d.dir, '.fleet', 'lock'), old, old);
    // leases (the server's clock is this machine's): e's lock dir is hours old but its lease runs 10 min
    // more (a deploy at work, quiet in a long step); f's was touched now but its lease ran out 30 s ago
    const lock = (t: TestTenant, owner: object, leaseS: number, mtime: number) => {
      mkdirSync(join(t.dir, '.fleet', 'lock'));
      writeFileSync(join(t.dir, '.fleet', 'lock', 'owner'), JSON.stringify({ token: 'y', ...owner }));
      writeFileSync(join(t.dir, '.fleet', 'lock', 'lease'), `${leaseS}\n`);
      utimesSync(join(t.dir, '.fleet', 'lock'), mtime, mtime);
    };
    const nowS = Math.floor(Date.now() / 1000);
    lock(e, { run: 'ci-run-8', actor: 'bob' }, nowS + 600, old);
    lock(f, { run: 'ci-run-9', actor: 'carol' }, nowS - 30, Date.now() / 1000);
    handOver(fleet.root);
    const before = [...fleet.sshds.values()].map((s) => s.handshakes());

    const r = await run('status', '--format', 'json', '--fail-on-drift');
    const after = [...fleet.sshds.values()].map((s) => s.handshakes());
    expect(after.map((n, i) => n - before[i]!)).toEqual([1, 1]);
    expect(r.code).toBe(3);
    const byId = Object.fromEntries(JSON.parse(r.stdout).map((s: any) => [s.id, s]));
    expect(byId[`${a.server}/${a.id}`]).toMatchObject({ state: 'paused', drift: [] });
    expect(byId[`${b.server}/${b.id}`]).toMatchObject({ state: 'stopped', drift: [] });
    expect(byId[`${c.server}/${c.id}`].version).toBe('v3');
    expect(byId[`${c.server}/${c.id}`].drift).toEqual([
      '.env sets APP_IMAGE=registry.test/acme/app:v3, the last release set registry.test/acme/app:v2',
      'runs v3 where most of wave 1 (5/6) runs v2',
    ]);
    expect(byId[`${d.server}/${d.id}`].lock).toMatchObject({
      actor: 'alice',
      run: 'ci-run-7',
      interrupted: true,
    });
    expect(byId[`${d.server}/${d.id}`].lock.lease).toBeUndefined();
    const live = byId[`${e.server}/${e.id}`].lock;
    expect(live).toMatchObject({
      actor: 'bob',
      interrupted: false,
      lease: { until: new Date((nowS + 600) * 1000).toISOString() },
    });
    expect(live.lease.leftS).toBeGreaterThan(500);
    expect(live.lease.leftS).toBeLessThanOrEqual(600);
    const gone = byId[`${f.server}/${f.id}`].lock;
    expect(gone).toMatchObject({ actor: 'carol', interrupted: true });
    expect(gone.lease.leftS).toBeLessThanOrEqual(-30);

    const table = await run('status');
    expect(table.stdout).toMatch(new RegExp(`${a.server}/${a.id} +paused +v2`));
    expect(table.stdout).toMatch(new RegExp(`${b.server}/${b.id} +stopped +v2`));
    expect(table.stdout).toContain('INTERRUPTED deploy by alice, ci-run-7 (3h old, no lease)');
    expect(table.stdout).toMatch(
      /locked by bob, ci-run-8: a deploy at work, its lease runs \d+[sm] more \(until \S+Z, server clock\)/,
    );
    expect(table.stdout).toMatch(
      /INTERRUPTED deploy by carol, ci-run-9: its lease ran out \d+s ago \(the next deploy takes the lock over\)/,
    );
    docker(a, 'unpause', container(a));
  }, 60_000);
});
