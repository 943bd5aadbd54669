/**
 * Concurrency, over real sshd with sandbox tenants: another writer appending to .env while deploys
 * switch it loses nothing; two deploys to one target (one waits, then fails naming the holder; the final
 * state is one whole deploy); a deploy killed with SIGTERM and with SIGKILL at each step leaves a
 * consistent state, and `fleet-deploy unlock` recovers what SIGKILL left.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deploy } from '../helpers/deploy';
import { DEPLOY_USER, haveSshd, stopProcesses } from '../../src/testing';
import { historyOf, startFleet, type TestFleet, type TestTenant } from '../helpers/testfleet';
import { envVersion, stateOf } from './lib/fleet';
import { scenario } from './lib/record';

const describeSshd = haveSshd ? describe : describe.skip;

/** Another writer: numbered appends to .env about every 2 ms until a file `stop` appears. */
const APPENDER = `i=0; while [ ! -e stop ]; do echo "EXTRA_$i=x" >> .env; i=$((i+1)); sleep 0.002; done; echo $i > count`;

describeSshd('concurrency', () => {
  let fleet: TestFleet;
  beforeAll(async () => {
    fleet = await startFleet({ servers: 1, tenantsPerServer: 2, startWith: 'v1' });
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
    if (fleet) rmSync(fleet.root, { recursive: true, force: true });
  });

  scenario(
    'concurrency',
    'another writer appends to .env during switches',
    'every appended line survives the switch (or the switch refuses and says why)',
    async () => {
      const t = fleet.tenants[0]!;
      // the other writer: an append a few milliseconds apart, numbered, until told to stop
      // (as the deploy user, as a server's other tool would be)
      const writer = spawn('runuser', ['-u', DEPLOY_USER, '--', 'sh', '-c', APPENDER], {
        cwd: t.dir,
        stdio: 'ignore',
      });
      const outcomes: string[] = [];
      try {
        for (const v of ['v2', 'v3', 'v4', 'v5', 'v6', 'v7']) {
          const r = (await deploy(fleet.registry, fleet.key, v)).targets[0]!;
          outcomes.push(r.outcome === 'deployed' ? 'deployed' : `${r.outcome}: ${r.error}`);
        }
      } finally {
        writeFileSync(join(t.dir, 'stop'), '');
        await new Promise((r) => writer.once('exit', r));
        stopProcesses([writer.pid!]);
      }
      const count = Number(readFileSync(join(t.dir, 'count'), 'utf8'));
      const env = readFileSync(join(t.dir, '.env'), 'utf8');
      const missing = [...Array(count).keys()].filter((i) => !env.includes(`\nEXTRA_${i}=x\n`));
      rmSync(join(t.dir, 'stop'));
      rmSync(join(t.dir, 'count'));
      const refused = outcomes.filter((o) => o !== 'deployed');
      for (const o of refused) expect(o).toMatch(/changing/);
      expect(missing).toEqual([]);
      expect(envVersion(t.dir)).toMatch(/^v[2-7]$/);
      expect(stateOf(t).locked).toBe(false);
      return {
        measured: 'no appended line lost across 6 switches',
        detail: `${count} appends; ${6 - refused.length} switched, ${refused.length} refused`,
      };
    },
  );

  /** The tenant's state is one whole release: .env whole, the history says it runs (or notes the cut). */
  async function expectOneRelease(t: TestTenant, from: string, to: string): Promise<string> {
    const env = envVersion(t.dir);
    expect([from, to]).toContain(env);
    expect(stateOf(t).locked).toBe(false);
    const last = historyOf(t).at(-1);
    if (last?.to === to && /cut off during the switch/.test(last.error ?? ''))
      return `${env} (cut off, noted)`;
    if (last?.to === to) expect(last.outcome === 'deployed' ? last.to : last.from).toBe(env);
    else expect(env).toBe(from); // the deploy left no entry: it never switched
    expect(await fleet.health(t)).toContain(`"version":"${env}"`);
    return env;
  }

  scenario(
    'concurrency',
    'two deploys to one target at once',
    'one waits, or fails naming the holder; the final state is one complete deploy, never a mix',
    async () => {
      const t = fleet.tenants[1]!;
      const select = `id=${t.server}/${t.id}`;
      const run = (version: string, actor: string) =>
        deploy(fleet.registry, fleet.key, version, {
          select,
          options: { actor, runId: `run-${actor}`, lockWaitMs: 500 },
        }).then((r) => r.targets[0]!);
      const results: string[] = [];
      for (const [a, b] of [
        ['v2', 'v3'],
        ['v4', 'v5'],
        ['v6', 'v7'],
      ] as const) {
        const before = envVersion(t.dir);
        const [ra, rb] = await Promise.all([run(a, 'alice'), run(b, 'bob')]);
        for (const [r, other] of [
          [ra, 'bob'],
          [rb, 'alice'],
        ] as const) {
          if (r.outcome !== 'deployed') {
            expect(r.outcome).toBe('failed');
            expect(r.error).toContain(other); // the holder, named
          }
        }
        const won = [ra, rb].filter((r) => r.outcome === 'deployed');
        expect(won.length).toBeGreaterThanOrEqual(1);
        const env = envVersion(t.dir);
        expect([a, b]).toContain(env);
        expect(stateOf(t).locked).toBe(false);
        expect(historyOf(t).at(-1)).toMatchObject({
          outcome: 'deployed',
          from: won.length === 2 ? expect.any(String) : before,
          to: env,
        });
        expect(await fleet.health(t)).toContain(`"version":"${env}"`);
        results.push(`${ra.outcome}/${rb.outcome}`);
      }
      return {
        measured:
          'each race: one deploy won (the other waited, or failed naming the holder); one whole release runs',
        cases: 3,
        detail: results.join(', '),
      };
    },
  );

  /** The bundled CLI deploying `version` to `t`, killed with `signal` once its progress says `after` is done. */
  async function killedDeploy(t: TestTenant, version: string, after: string, signal: NodeJS.Signals) {
    const cli = spawn(
      process.execPath,
      [
        'dist/cli.js',
        'deploy',
        '--version',
        version,
        '-r',
        join(fleet.root, 'registry.json'),
        '--key',
        fleet.key.file,
        '--select',
        `id=${t.server}/${t.id}`,
        '--lock-wait',
        '2s',
        '--recovery-window',
        '2s',
      ],
      { env: { PATH: process.env.PATH ?? '', USER: 'op' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let sent = false;
    const watch = (b: Buffer) => {
      out += b.toString();
      if (!sent && new RegExp(`  ${after}  ok`).test(out)) {
        sent = true;
        cli.kill(signal);
      }
    };
    cli.stdout.on('data', watch);
    cli.stderr.on('data', watch);
    const code = await new Promise<number | null>((r) => cli.once('close', (c) => r(c)));
    stopProcesses([cli.pid!]);
    return { code, out, sent };
  }

  const unlockForce = (t: TestTenant) =>
    spawnSync(
      process.execPath,
      [
        'dist/cli.js',
        'unlock',
        '--force',
        '-r',
        join(fleet.root, 'registry.json'),
        '--key',
        fleet.key.file,
        '--select',
        `id=${t.server}/${t.id}`,
      ],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', USER: 'op' }, timeout: 60_000 },
    );

  /** Each step and the progress line that says the one before it ended. */
  const STEPS = [
    ['prepare', 'connect'],
    ['pull', 'prepare'],
    ['update', 'pull'],
    ['health', 'update'],
    ['finish', 'health'],
  ] as const;

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    scenario(
      'concurrency',
      `a deploy (the bundled CLI) killed with ${signal} at each step: prepare, pull, update, health, finish`,
      signal === 'SIGKILL'
        ? 'the state stays one whole release (.env whole, matching the history or a noted cut-off switch); unlock --force releases what the kill left'
        : 'the deploy stops cleanly: lock released, .env whole and matching the history (rolled back after the switch)',
      async () => {
        const t = fleet.tenants[1]!;
        const seen: string[] = [];
        let locksLeft = 0;
        for (const [i, [step, after]] of STEPS.entries()) {
          const from = envVersion(t.dir);
          const to = `${signal === 'SIGTERM' ? 'term' : 'kill'}-${i + 1}`;
          const r = await killedDeploy(t, to, after, signal);
          expect(r.sent || r.code === 0).toBe(true);
          if (stateOf(t).locked) {
            locksLeft++;
            if (signal === 'SIGTERM') throw new Error(`SIGTERM at ${step} left the lock:\n${r.out}`);
            const u = unlockForce(t);
            expect(u.status).toBe(0);
            expect(u.stdout).toContain('released');
          }
          seen.push(`${step}: ${await expectOneRelease(t, from, to)}`);
        }
        return {
          measured:
            signal === 'SIGKILL'
              ? 'state one whole release after each of the 5 kills; every lock left released by unlock --force'
              : 'each of the 5 stops left .env whole, matching the history, and no lock',
          faults: STEPS.length,
          detail: `${seen.join('; ')}; ${locksLeft} locks left`,
        };
      },
      180_000,
    );
  }
});
