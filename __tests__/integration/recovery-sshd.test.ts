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
  /** Waits (at most 20 s) until the server's clock is past the lock's lease. */
  const leaseRunsOut = async () => {
    const lease = () => Number(readFileSync(join(t().dir, '.fleet', 'lock', 'lease'), 'utf8'));
    for (let i = 0; i < 200 && Date.now() / 1000 < lease() + 1; i++)
      await new Promise((w) => setTimeout(w, 100));
  };
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

  test('killed after the switch and gone: one recovery window for the server; its lease runs out and the next deploy takes over and mends it', async () => {
    const tries: string[] = []; // each connection tried, after which step event
    let last = '';
    const report = await deploy(fleet.registry, fleet.key, 'bad-2', {
      onStep: (e: { step: string; status: string }) => {
        last = `${e.step}:${e.status}`;
        killAfterSwitch(() => undefined)(e);
      },
      wrap: (c) => ({ connect: (server) => (tries.push(last), c.connect(server)) }),
      options: { recoveryWindowMs: 3000 },
    });
    const r = report.targets[0]!;
    expect(r.outcome).toBe('failed');
    // the rollback spent the server's recovery window; the finish step after it tried no connection
    expect(r.steps.map((s) => `${s.step}:${s.ok}`)).toEqual([
      'connect:true',
      'prepare:true',
      'pull:true',
      'update:true',
      'health:false',
      'rollback:false',
      'finish:false',
    ]);
    expect(tries.filter((t) => t === 'rollback:fail' || t.startsWith('finish'))).toEqual([]);
    expect(r.rollbackError).toMatch(/srv-1 stayed unreachable (for its recovery window \(3 s|until .*lease)/);
    expect(r.error).toContain(
      `left on the server: the lock stays at ${t().dir}/.fleet/lock until its lease runs out (`,
    );
    expect(r.error).toContain(
      "the next deploy then takes it over and mends what was left, no person needed (or release it now: fleet-deploy unlock --select 'id=srv-1/t1-1' --force); no history entry was written; the switch to bad-2 was not rolled back",
    );
    expect(lockExists(t())).toBe(true);
    expect(fleet.env(t())).toContain(`APP_IMAGE=${REPO}:bad-2\n`);

    // back, and its lease runs out (5 s: the 3 s window and 2 s of margin, on the server's clock)
    await sshd().restart();
    await leaseRunsOut();
    const next = (await deploy(fleet.registry, fleet.key, 'v2')).targets[0]!;
    expect(next.outcome).toBe('deployed');
    const takeover = next.steps.find((s) => s.step === 'take over');
    expect(takeover?.detail).toMatch(
      /^took over the lock of jest \(run test-run, deploying bad-2, since [^)]+\): its lease ran out \d+ s ago; it was cut off switching v1 → bad-2: switched back to v1 \(reverted\), history noted$/,
    );
    expect(historyOf(t()).slice(-2)).toMatchObject([
      {
        outcome: 'failed',
        from: 'v1',
        to: 'bad-2',
        actor: 'jest',
        error:
          'cut off during the switch to bad-2; its lease ran out and run test-run took the lock over and switched back to v1',
      },
      { outcome: 'deployed', from: 'v1', to: 'v2' },
    ]);
    expect(fleet.env(t())).toContain(`APP_IMAGE=${REPO}:v2\n`);
    expect(await fleet.health(t())).toBe('200 {"status":"ok","version":"v2"}');
    expect(lockExists(t())).toBe(false);
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

  test('one recovery window per server: the finish after a rollback that spent it tries no connection', async () => {
    // No lease renewals here, so nothing but the server's window bounds the recovery steps.
    const tries: string[] = [];
    let last = '';
    const report = await deploy(fleet.registry, fleet.key, 'bad-3', {
      onStep: (e: { step: string; status: string }) => {
        last = `${e.step}:${e.status}`;
        killAfterSwitch(() => undefined)(e);
      },
      wrap: (c) => ({ connect: (server) => (tries.push(last), c.connect(server)) }),
      options: { recoveryWindowMs: 3000, leaseRenewMs: 0 },
    });
    const r = report.targets[0]!;
    expect(r.steps.slice(-2).map((s) => `${s.step}:${s.ok}`)).toEqual(['rollback:false', 'finish:false']);
    expect(tries.filter((x) => x.startsWith('rollback')).length).toBeGreaterThan(1); // it did try in its window
    expect(tries.filter((x) => x === 'rollback:fail' || x.startsWith('finish'))).toEqual([]);
    expect(r.rollbackError).toMatch(/^srv-1 stayed unreachable for its recovery window \(3 s, ended /);
    await sshd().restart();
    await leaseRunsOut();
    const next = (await deploy(fleet.registry, fleet.key, 'v3')).targets[0]!;
    expect([next.outcome, next.steps.find((s) => s.step === 'take over')?.detail]).toEqual([
      'deployed',
      expect.stringMatching(/: switched back to v\d \(reverted\), history noted$/),
    ]);
  }, 60_000);

  test('a live lease is renewed and never taken over: a second deploy waits for it', async () => {
    // A holds the lock longer than its lease (3 s: a 1 s window) — a failing gate and a rollback — so
    // only its renewals keep B from taking the lock over while A works.
    let b: ReturnType<typeof deploy> | undefined;
    const a = await deploy(fleet.registry, fleet.key, 'slow-8', {
      onStep: (e: { step: string; status: string }) => {
        if (e.step === 'update' && e.status === 'ok' && !b)
          b = deploy(fleet.registry, fleet.key, 'v4', {
            options: { recoveryWindowMs: 1000, lockWaitMs: 30_000 },
          });
      },
      options: { recoveryWindowMs: 1000 },
    });
    const second = (await b!).targets[0]!;
    const first = a.targets[0]!;
    expect(first.outcome).toBe('rolled-back');
    expect(first.steps.at(-1)).toMatchObject({
      step: 'finish',
      ok: true,
      detail: expect.stringMatching(/unlocked$/),
    });
    expect(second.outcome).toBe('deployed');
    expect(second.steps.map((s) => s.step)).not.toContain('take over');
    expect(historyOf(t()).slice(-2)).toMatchObject([
      { outcome: 'rolled-back', to: 'slow-8' },
      { outcome: 'deployed', to: 'v4' },
    ]);
  }, 60_000);
});
