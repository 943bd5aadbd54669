/**
 * A server that drops off mid-deploy, over real sshd (SANDBOX runtime as docker): killed just after the
 * switch and back two seconds later, the deploy reconnects (a new connection each try), finishes the
 * rollback, writes the history and unlocks; a server that stays away is reported with the state it was
 * left in, and `fleet-deploy unlock` shows and mends it later. Also: rolling back three times in a row.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deploy } from '../helpers/deploy';
import { haveSshd } from '../../src/testing';
import { fleetCli, historyOf, lockExists, REPO, startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;

describeSshd('a server that drops off mid-deploy', () => {
  let fleet: TestFleet;
  let keyFile: string;
  const cli = (...args: string[]) => fleetCli(fleet, keyFile)(...args);
  beforeAll(async () => {
    fleet = await startFleet({ servers: 1, tenantsPerServer: 1, startWith: 'v1' });
    keyFile = join(fleet.root, 'key');
    writeFileSync(keyFile, fleet.key.privateKey, { mode: 0o600 });
  });
  afterAll(async () => fleet?.stop());
  const t = () => fleet.tenants[0]!;
  const sshd = () => fleet.sshds.get('srv-1')!;
  /** Kills the server's sshd (listener and connections) when the switch has run. */
  const killAfterSwitch = (then: () => void) => (e: { step: string; status: string }) => {
    if (e.step === 'update' && e.status === 'ok') {
      sshd().kill();
      then();
    }
  };

  test('killed after the switch, back 2 s later: reconnects, rolls back, records history, unlocks', async () => {
    let restarted: Promise<void> | undefined;
    const before = sshd().handshakes();
    const report = await deploy(fleet.registry, fleet.key, 'bad-1', {
      onStep: killAfterSwitch(() => {
        restarted = new Promise((r) => setTimeout(r, 2000)).then(() => sshd().restart());
      }),
      options: { recoveryWindowMs: 30_000 },
    });
    await restarted;
    const r = report.targets[0]!;
    expect([r.outcome, r.rollbackError]).toEqual(['rolled-back', undefined]);
    expect(r.steps.map((s) => `${s.step}:${s.ok}`)).toEqual([
      'connect:true',
      'prepare:true',
      'pull:true',
      'update:true',
      'health:false',
      'rollback:true',
      'rollback health:true',
      'finish:true',
    ]);
    expect(fleet.env(t())).toContain(`APP_IMAGE=${REPO}:v1\n`);
    expect(await fleet.health(t())).toBe('200 {"status":"ok","version":"v1"}');
    expect(historyOf(t()).at(-1)).toMatchObject({ outcome: 'rolled-back', from: 'v1', to: 'bad-1' });
    expect(lockExists(t())).toBe(false);
    expect(sshd().handshakes() - before).toBeGreaterThanOrEqual(2); // a new connection after the drop
  }, 60_000);

  test('killed after the switch and gone: the report says what was left; unlock shows and mends it later', async () => {
    const report = await deploy(fleet.registry, fleet.key, 'bad-2', {
      onStep: killAfterSwitch(() => undefined),
      options: { recoveryWindowMs: 3000 },
    });
    const r = report.targets[0]!;
    expect(r.outcome).toBe('failed');
    expect(r.error).toContain(
      `left on the server: the lock stays at ${t().dir}/.fleet/lock (release it: fleet-deploy unlock --select 'id=srv-1/t1-1'); no history entry was written; the switch to bad-2 was not rolled back, so the tenant may run bad-2 or v1`,
    );
    expect(lockExists(t())).toBe(true);
    expect(fleet.env(t())).toContain(`APP_IMAGE=${REPO}:bad-2\n`);

    await sshd().restart();
    const look = cli('unlock');
    expect(look.status).toBe(1);
    expect(look.stdout).toContain('cut off while switching v1 → bad-2: it may run either');
    expect(look.stdout).toMatch(/jest \(run test-run, deploying bad-2, since [^)]+\); last active \d+ s ago/);
    expect(look.stdout).toContain('kept: its holder may be at work');
    expect(lockExists(t())).toBe(true);

    const force = cli('unlock', '--force');
    expect(force.status).toBe(0);
    expect(force.stdout).toContain('released (forced: it looked in use), history noted');
    expect(lockExists(t())).toBe(false);
    expect(historyOf(t()).at(-1)).toMatchObject({
      outcome: 'failed',
      from: 'v1',
      to: 'bad-2',
      actor: 'op',
      error: 'deploy of test-run cut off during the switch; lock released by fleet-deploy unlock',
    });
    expect(cli('unlock').stdout).toMatch(/srv-1\/t1-1\s+free/);

    // and the tenant is mended by a deploy, as unlock said
    expect((await deploy(fleet.registry, fleet.key, 'v2')).targets[0]!.outcome).toBe('deployed');
  }, 60_000);

  test('a second Ctrl-C quits at once, names the locks it leaves and the command that releases them', async () => {
    const child = spawn(
      process.execPath,
      [
        'dist/cli.js',
        'deploy',
        '--version',
        'slow-7',
        '-r',
        join(fleet.root, 'registry.json'),
        '--key',
        keyFile,
      ],
      { env: { PATH: process.env.PATH ?? '', USER: 'op' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no switch within 30 s:\n${err}`)), 30_000);
      const poll = setInterval(() => {
        if (existsSync(join(t().dir, '.fleet', 'lock', 'switch'))) {
          clearInterval(poll);
          clearTimeout(timer);
          resolve();
        }
      }, 50);
    });
    child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(130);
    expect(err).toMatch(
      /Quit at once: this target keeps its deploy lock: srv-1\/t1-1\.\nRelease it \(this deploy is gone\): (npx )?fleet-deploy unlock --force --select 'id=srv-1\/t1-1'/,
    );
    expect(lockExists(t())).toBe(true);
    const r = cli('unlock', '--force', '--select', 'id=srv-1/t1-1');
    expect(r.status).toBe(0);
    expect(lockExists(t())).toBe(false);
    expect((await deploy(fleet.registry, fleet.key, 'v2')).targets[0]!.outcome).toMatch(/deployed|unchanged/);
  }, 60_000);

  test('rolling back three times goes v3 → v2 → v1, then says there is no earlier release', async () => {
    expect((await deploy(fleet.registry, fleet.key, 'v3')).targets[0]!.outcome).toBe('deployed');
    const rollback = async () =>
      (await deploy(fleet.registry, fleet.key, 'ignored', { options: { rollback: {} } })).targets[0]!;
    expect(await rollback()).toMatchObject({ outcome: 'deployed', next: { version: 'v2' } });
    expect(await rollback()).toMatchObject({ outcome: 'deployed', next: { version: 'v1' } });
    const third = await rollback();
    expect(third.outcome).toBe('failed');
    expect(third.error).toMatch(
      /^srv-1\/t1-1 has no earlier release in its history to roll back to \(running v1; known versions: /,
    );
    expect(fleet.env(t())).toContain(`APP_IMAGE=${REPO}:v1\n`);
    expect(lockExists(t())).toBe(false);
    expect(readFileSync(join(t().dir, '.env'), 'utf8')).not.toContain('bad');
  }, 60_000);
});
