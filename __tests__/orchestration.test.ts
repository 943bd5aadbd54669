/**
 * Orchestration with a scripted transport and a fake clock (doubles, see helpers/fakes.ts): the order of
 * round trips, rollback, the lock released on every path, failure budgets, concurrency limits, hooks
 * that run once, cancellation. The same engine runs against real sshd in __tests__/integration.
 */
import { deployFleet, prePullWave, type FleetOptions } from '../src/deploy/fleet';
import { planDeployment } from '../src/plan/plan';
import { parseRegistry, type Registry } from '../src/registry';
import { syntheticRegistry } from '../src/sandbox/synthetic';
import { FakeClock, fail, happyRules, ok, prepared, ScriptedConnector, type Rule } from './helpers/fakes';

const REPO = 'registry.example.com/acme/app';

function registry(servers: number, tenants: number, edit?: (r: any) => void): Registry {
  const file: any = syntheticRegistry({ servers, tenantsPerServer: tenants });
  file.defaults.tenant.health = {
    ...file.defaults.tenant.health,
    interval: '1s',
    deadline: '5s',
    successes: 2,
  };
  edit?.(file);
  return parseRegistry(JSON.stringify(file), 'synthetic.json');
}

const options = (extra: Partial<FleetOptions> = {}): FleetOptions => ({
  version: 'v2',
  actor: 'test',
  runId: 'run-1',
  lockWaitMs: 5000,
  commandTimeoutMs: 1000,
  pullTimeoutMs: 1000,
  pullAttempts: 2,
  recoveryWindowMs: 10_000,
  leaseRenewMs: 0, // a fake clock: no renewals in the background (lease.ts)
  concurrency: 4,
  perServer: 2,
  maxFailurePercent: 0,
  ...extra,
});

/** Health answers by the version the target's last `update` switched to (from the command log). */
function versionAware(c: ScriptedConnector, bad: (server: string, version: string) => boolean) {
  c.http = (server) => {
    const last = [...c.log].reverse().find((l) => l.server === server && l.verb === 'update');
    const version = /APP_IMAGE=\S+:([\w.-]+)/.exec(last?.command ?? '')?.[1] ?? 'v1';
    return bad(server, version)
      ? { status: 500, body: '{}' }
      : { status: 200, body: JSON.stringify({ version }) };
  };
}

async function run(
  reg: Registry,
  c: ScriptedConnector,
  opts: Partial<FleetOptions> = {},
  plan: { select?: string; waves?: string } = {},
  signal?: AbortSignal,
) {
  return deployFleet(planDeployment(reg, plan), options(opts), {
    connector: c,
    clock: new FakeClock(),
    urlGet: async () => ({ status: 200, body: '' }),
    signal,
  });
}

test('a clean deploy is four round trips: prepare, pull, update, finish', async () => {
  const c = new ScriptedConnector(() => happyRules(`${REPO}:v1`));
  versionAware(c, () => false);
  const report = await run(registry(1, 1), c);
  expect(report.targets[0]!.outcome).toBe('deployed');
  expect(c.log.map((l) => l.verb)).toEqual(['prepare', 'pull', 'update', 'finish']);
  expect(c.log[3]!.command).toContain('"outcome":"deployed"');
});

test('a failing health gate rolls back to the previous references and gates again', async () => {
  const c = new ScriptedConnector(() => happyRules(`${REPO}:v1`));
  versionAware(c, (_, v) => v === 'v2');
  const report = await run(registry(1, 1), c);
  const r = report.targets[0]!;
  expect(r.outcome).toBe('rolled-back');
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
  const updates = c.log.filter((l) => l.verb === 'update').map((l) => /APP_IMAGE=(\S+)/.exec(l.command)![1]);
  expect(updates).toEqual([`${REPO}:v2`, `${REPO}:v1`]);
});

test('cancelled while its gate waits: rolled back, the reason "cancelled", recorded as cancelled (not a health failure)', async () => {
  const c = new ScriptedConnector(() => happyRules(`${REPO}:v1`));
  versionAware(c, (_, v) => v === 'v2');
  const ac = new AbortController();
  const answer = c.http!;
  c.http = (server, ...rest) => {
    if (!ac.signal.aborted) ac.abort(); // the person presses Ctrl-C while the first probe is answered
    return answer(server, ...rest);
  };
  const r = (await run(registry(1, 1), c, {}, {}, ac.signal)).targets[0]!;
  expect([r.outcome, r.error]).toEqual(['rolled-back', 'cancelled']);
  const finish = c.log.find((l) => l.verb === 'finish')!.command;
  expect(finish).toContain('"outcome":"cancelled"');
  expect(finish).not.toContain('health gate failed');
});

describe('the crash watch: a container that keeps restarting fails the gate at once', () => {
  const ID = 'a'.repeat(64);
  /** The containers as the engine tells them: `restarts(n)` for the n-th look (1, 2, …). */
  const LOGS = 'starting\n\u001b[31mboom: exit 3\u001b[0m\n::warning::x\n@@logs-exit 0\n';
  /** `logs`: what each read of the log lines answers, in turn (the last one from then on). */
  const watched = (restarts: (n: number) => number, status = 'stopped', logs = [LOGS]) => {
    let n = 0;
    let read = 0;
    return [
      {
        match: 'containerRuns' as const,
        reply: () => ok(`${ID} ${status} ${restarts(++n)} 3 unless-stopped\n`),
      },
      { match: 'containerLogs' as const, reply: () => ok(logs[Math.min(read++, logs.length - 1)]) },
    ];
  };

  test('restarted twice since the switch: failed on that probe (not at the deadline), rolled back, exit code and log lines said', async () => {
    const c = new ScriptedConnector(() => [...watched((n) => 2 * n), ...happyRules(`${REPO}:v1`)]);
    versionAware(c, (_, v) => v === 'v2');
    const r = (await run(registry(1, 1), c)).targets[0]!;
    expect(r.outcome).toBe('rolled-back');
    expect(r.error).toMatch(
      /^health gate failed: container aaaaaaaaaaaa restarted 2 times in \d+\.\d s; last exit code 3; last log lines: starting \| boom: exit 3 \| \u200b::warning::x$/,
    );
    // one look after the first failed probe was enough; the rollback's gate does not watch
    expect(c.log.filter((l) => l.verb === 'containerRuns')).toHaveLength(1);
    expect(r.steps.find((s) => s.step === 'health')?.detail).toBe(r.error);
  });

  test("the engine's own error while it reads a restarting container is not taken for its log lines: read again", async () => {
    const engineError =
      'Error response from daemon: read /proc/32334/cgroup: no such process\n@@logs-exit 1\n';
    const rules = watched((n) => 2 * n, 'stopped', [engineError, LOGS]); // made once: it counts the reads
    const c = new ScriptedConnector(() => [...rules, ...happyRules(`${REPO}:v1`)]);
    versionAware(c, (_, v) => v === 'v2');
    const r = (await run(registry(1, 1), c)).targets[0]!;
    expect(r.error).toMatch(
      /; last exit code 3; last log lines: starting \| boom: exit 3 \| \u200b::warning::x$/,
    );
    expect(c.log.filter((l) => l.verb === 'containerLogs')).toHaveLength(2);
    // an engine that never gives them: no log lines said, and never its error
    const always = watched((n) => 2 * n, 'stopped', [engineError]);
    const never = new ScriptedConnector(() => [...always, ...happyRules(`${REPO}:v1`)]);
    versionAware(never, (_, v) => v === 'v2');
    const e = (await run(registry(1, 1), never)).targets[0]!.error!;
    expect(e).toMatch(/restarted 2 times in \d+\.\d s; last exit code 3$/);
    expect(never.log.filter((l) => l.verb === 'containerLogs')).toHaveLength(3);
  });

  test('a container that restarted once and then answers is judged by the gate as before: deployed', async () => {
    const c = new ScriptedConnector(() => [...watched(() => 1, 'running'), ...happyRules(`${REPO}:v1`)]);
    let probes = 0;
    c.http = () => (++probes === 1 ? { status: 502, body: '' } : { status: 200, body: '{"version":"v2"}' });
    const r = (await run(registry(1, 1), c)).targets[0]!;
    expect([r.outcome, r.error]).toEqual(['deployed', undefined]);
    expect(c.log.filter((l) => l.verb === 'containerRuns')).toHaveLength(1);
  });

  test("a container that ran before the switch counts from the gate's first look, not from its old count", async () => {
    // prepare saw the container (an unchanged service): its 7 old restarts are not this release's
    const before = `sha256:old running ${ID}`;
    const c = new ScriptedConnector(() => [
      { match: 'prepare', reply: prepared(`${REPO}:v1`, [before]) },
      ...watched((n) => (n === 1 ? 7 : 8), 'running'),
      ...happyRules(`${REPO}:v1`),
    ]);
    let probes = 0;
    c.http = () => (++probes <= 2 ? { status: 502, body: '' } : { status: 200, body: '{"version":"v2"}' });
    const r = (await run(registry(1, 1), c)).targets[0]!;
    expect([r.outcome, r.error]).toEqual(['deployed', undefined]);
  });

  test('a healthy release never pays for the watch: no look at the containers', async () => {
    const c = new ScriptedConnector(() => [...watched((n) => 9 * n), ...happyRules(`${REPO}:v1`)]);
    versionAware(c, () => false);
    expect((await run(registry(1, 1), c)).targets[0]!.outcome).toBe('deployed');
    expect(c.log.map((l) => l.verb)).toEqual(['prepare', 'pull', 'update', 'finish']);
  });
});

test('when the rollback also fails, the outcome is failed with both reasons', async () => {
  const c = new ScriptedConnector(() => happyRules(`${REPO}:v1`));
  versionAware(c, () => true);
  const r = (await run(registry(1, 1), c)).targets[0]!;
  expect(r.outcome).toBe('failed');
  expect(r.error).toMatch(/^health gate failed: not healthy within 5 s/);
  expect(r.rollbackError).toMatch(/^health gate failed: not healthy within 5 s/);
});

describe('the lock is released on every path after it was taken', () => {
  const finishes = (c: ScriptedConnector) => c.log.filter((l) => l.command.includes('@@unlock')).length;

  test.each<[string, Rule[]]>([
    ['low disk', [{ match: 'prepare', reply: ok('free_kb=100\n@@env\n@@running\n@@history\n@@end') }]],
    ['pull fails', [{ match: 'pull', reply: fail(1, 'manifest unknown') }]],
    ['compose up fails', [{ match: 'update', reply: fail(1, 'no such service') }]],
    ['switch fails', [{ match: 'update', reply: fail(30, 'read-only file system') }]],
    [
      'prepare fails after taking the lock',
      [{ match: 'prepare', reply: fail(1, 'docker: cannot connect to the engine') }],
    ],
    ['the connection drops during up', [{ match: 'update', reply: fail(null, 'the connection was lost') }]],
  ])('%s', async (_, override) => {
    const c = new ScriptedConnector(() => [...override, ...happyRules(`${REPO}:v1`)]);
    versionAware(c, () => false);
    const r = (await run(registry(1, 1), c)).targets[0]!;
    expect(['failed', 'rolled-back']).toContain(r.outcome);
    expect(finishes(c)).toBe(1);
    expect(r.steps.at(-1)).toMatchObject({ step: 'finish', ok: true });
  });

  test('a lock held by someone else is never released by us', async () => {
    const held = ok('free_kb=4096000\n@@lock\n{"token":"theirs"}\n@@age 12');
    const c = new ScriptedConnector(() => [
      { match: 'prepare', reply: { ...held, code: 20 } },
      ...happyRules(),
    ]);
    const r = (await run(registry(1, 1), c, { lockWaitMs: 3000 })).targets[0]!;
    expect(r.outcome).toBe('failed');
    expect(r.error).toMatch(
      /is locked by another deploy: an unknown holder; last active 12 s ago; waited 3 s; it has no lease \(a restore's, or an older fleet-deploy's\): if that deploy is gone, release it: fleet-deploy unlock --select 'id=eu-1\/t00000'$/,
    );
    expect(finishes(c)).toBe(0);
    expect(c.log.length).toBeGreaterThan(1); // it waited and retried
  });

  test("a refused connection fails the server's targets, connecting once", async () => {
    const c = new ScriptedConnector(happyRules, () => new Error('cannot connect to x: ECONNREFUSED'));
    const report = await run(registry(1, 3), c);
    expect(report.targets.map((t) => t.outcome)).toEqual(['failed', 'failed', 'failed']);
    expect(report.targets[0]!.error).toBe('cannot connect to x: ECONNREFUSED');
    expect(c.connects).toBe(1);
    expect(finishes(c)).toBe(0);
  });
});

test('unchanged: same references and the pulled image is the one running: no update, no history', async () => {
  const c = new ScriptedConnector(() => [
    { match: 'prepare', reply: prepared(`${REPO}:v2`, ['sha256:new']) },
    ...happyRules(),
  ]);
  const r = (await run(registry(1, 1), c)).targets[0]!;
  expect(r.outcome).toBe('unchanged');
  expect(c.log.some((l) => l.verb === 'update')).toBe(false);
  expect(c.log.at(-1)!.command).not.toContain('history.jsonl');
});

describe('a hibernated tenant (its containers paused or stopped before the deploy)', () => {
  const paused = ['sha256:old paused aaaaaaaaaaaa', 'sha256:old paused bbbbbbbbbbbb'].join('\n');
  const asleep = (running: string) => ({
    match: 'prepare' as const,
    reply: prepared(`${REPO}:v1`, [running]),
  });

  test('paused: woken for the switch, gated, paused again after the post-deploy hooks; the step says so', async () => {
    const c = new ScriptedConnector(() => [
      asleep(paused),
      { match: 'hibernate', reply: ok() },
      ...happyRules(`${REPO}:v1`),
    ]);
    versionAware(c, () => false);
    const r = (await run(registry(1, 1), c)).targets[0]!;
    expect(r.outcome).toBe('deployed');
    expect(c.log.map((l) => l.verb)).toEqual(['prepare', 'pull', 'update', 'hibernate', 'finish']);
    expect(c.log[2]!.command).toContain(
      'docker unpause aaaaaaaaaaaa bbbbbbbbbbbb >/dev/null && docker compose',
    );
    expect(c.log[3]!.command).toMatch(/ docker pause \$ids >\/dev\/null; }$/);
    expect(r.steps.at(-2)).toMatchObject({
      step: 'hibernate',
      ok: true,
      detail: 'paused again, as before the deploy',
    });
  });

  test('stopped, "wake": deployed and left running, said in the step; no extra round trip', async () => {
    const reg = registry(1, 1, (f) => (f.defaults.tenant.hibernated = 'wake'));
    const c = new ScriptedConnector(() => [
      asleep('sha256:old exited cccccccccccc'),
      ...happyRules(`${REPO}:v1`),
    ]);
    versionAware(c, () => false);
    const r = (await run(reg, c)).targets[0]!;
    expect(c.log.map((l) => l.verb)).toEqual(['prepare', 'pull', 'update', 'finish']);
    expect(c.log[2]!.command).not.toContain('unpause');
    expect(r.steps.find((s) => s.step === 'hibernate')?.detail).toBe(
      'was stopped; left running (hibernated: "wake")',
    );
  });

  test('a release that fails its gate is rolled back, and the previous one goes back to sleep', async () => {
    const c = new ScriptedConnector(() => [
      asleep(paused),
      { match: 'hibernate', reply: ok() },
      ...happyRules(`${REPO}:v1`),
    ]);
    versionAware(c, (_, v) => v === 'v2');
    const r = (await run(registry(1, 1), c)).targets[0]!;
    expect(r.outcome).toBe('rolled-back');
    // (each failed probe also reads the containers' states: the crash watch, tested below)
    expect(c.log.map((l) => l.verb).filter((v) => v !== 'containerRuns')).toEqual([
      'prepare',
      'pull',
      'update',
      'update',
      'hibernate',
      'finish',
    ]);
  });

  test('a tenant with a container running is not hibernated: no hibernate step', async () => {
    const c = new ScriptedConnector(() => [
      asleep('sha256:old paused aaaaaaaaaaaa\nsha256:old running bbbbbbbbbbbb'),
      ...happyRules(`${REPO}:v1`),
    ]);
    versionAware(c, () => false);
    const r = (await run(registry(1, 1), c)).targets[0]!;
    expect(r.steps.some((s) => s.step === 'hibernate')).toBe(false);
  });
});

test('budget by count: the wave that passes it stops the rollout', async () => {
  const c = new ScriptedConnector(() => happyRules(`${REPO}:v1`));
  const reg = registry(4, 3);
  const badIds = new Set(['t00001', 't00004']);
  c.rules = () => [
    {
      match: 'update',
      reply: (cmd) => ([...badIds].some((id) => cmd.includes(`/${id} `)) ? fail(1, 'boom') : ok()),
    },
    ...happyRules(`${REPO}:v1`),
  ];
  versionAware(c, () => false);
  const report = await run(reg, c, { maxFailures: 1, concurrency: 12 }, { waves: '50%,100%' });
  expect(report.waves.map((w) => w.counts)).toEqual([
    expect.objectContaining({ failed: 2, deployed: 4 }),
    expect.objectContaining({ skipped: 6 }),
  ]);
  expect(report.stopped).toBe(
    'wave 1 exceeded the failure budget: 2 of 6 targets failed or rolled back (more than 1 allowed)',
  );
});

test('concurrency and per-server limits hold; one connection per server', async () => {
  const c = new ScriptedConnector(() => happyRules(`${REPO}:v1`));
  versionAware(c, () => false);
  const report = await run(registry(3, 6), c, { concurrency: 5, perServer: 2 });
  expect(report.totals.deployed).toBe(18);
  expect(c.maxPerServer).toBeLessThanOrEqual(2);
  expect(c.maxActive).toBeLessThanOrEqual(5);
  expect(c.maxActive).toBeGreaterThan(1);
  expect(c.connects).toBe(3);
});

test('a hook marked once runs on the first target of the rollout only; others on every target', async () => {
  const reg = registry(2, 2, (f) => {
    f.defaults.tenant.hooks = { preDeploy: [{ run: 'npm run migrate', once: true }, 'echo pre'] };
  });
  const c = new ScriptedConnector(() => [
    { match: 'runUserCommand', reply: ok() },
    ...happyRules(`${REPO}:v1`),
  ]);
  versionAware(c, () => false);
  const report = await run(reg, c, { concurrency: 1 });
  expect(report.totals.deployed).toBe(4);
  expect(c.log.filter((l) => l.command.includes("sh -c 'npm run migrate'"))).toHaveLength(1);
  expect(c.log.filter((l) => l.command.includes("sh -c 'echo pre'"))).toHaveLength(4);
  expect(c.log.find((l) => l.command.includes('migrate'))!.command).toMatch(
    /FLEET_VERSION=v2 FLEET_PREVIOUS_VERSION=v1 FLEET_TARGET=\S+ sh -c/,
  );
});

test('cancelled before it starts: every target is skipped as cancelled, nothing is contacted', async () => {
  const c = new ScriptedConnector(() => happyRules());
  const ac = new AbortController();
  ac.abort();
  const report = await run(registry(2, 2), c, {}, {}, ac.signal);
  expect(report.targets.every((t) => t.outcome === 'skipped' && t.error === 'cancelled')).toBe(true);
  expect(c.connects).toBe(0);
});

test('pruning removes the images of releases beyond keepReleases, from the history, never the previous one', async () => {
  const line = (from: string, to: string, outcome = 'deployed') =>
    JSON.stringify({
      outcome,
      fromRefs: { APP_IMAGE: `${REPO}:${from}` },
      toRefs: { APP_IMAGE: `${REPO}:${to}` },
    });
  const history = [line('v1', 'v2'), line('v2', 'v3'), line('v3', 'bad', 'rolled-back'), line('v3', 'v4')];
  const c = new ScriptedConnector(() => [
    { match: 'prepare', reply: prepared(`${REPO}:v4`, ['sha256:old'], history) },
    ...happyRules(),
  ]);
  versionAware(c, () => false);
  const report = await run(registry(1, 1), c); // deploys v2, a release it ran before
  expect(report.targets[0]!.outcome).toBe('deployed');
  const finish = c.log.at(-1)!.command;
  // releases newest first: v2 (this deploy), v4, v3, v2, v1 → keep 3 distinct (v2, v4, v3) and the previous (v4): remove v1
  expect(finish).toContain(`image rm -- ${REPO}:v1 >/dev/null`);
  expect(finish).not.toContain(`${REPO}:bad`);
  expect(finish).not.toContain(`${REPO}:v3 `);
});

test('a once hook runs once while the other targets wait for it; if it fails, they fail too', async () => {
  const reg = registry(1, 3, (f) => {
    f.defaults.tenant.hooks = { preDeploy: [{ run: 'npm run migrate', once: true }] };
  });
  let release!: () => void;
  const migrating = new Promise<void>((r) => (release = r));
  let updatesDuringMigration = 0;
  let migrationDone = false;
  const c = new ScriptedConnector(() => [
    {
      match: /npm run migrate/,
      reply: async () => {
        await migrating;
        migrationDone = true;
        return fail(1, 'migration 42 failed');
      },
    },
    {
      match: 'update',
      reply: () => {
        if (!migrationDone) updatesDuringMigration++;
        return ok();
      },
    },
    ...happyRules(`${REPO}:v1`),
  ]);
  versionAware(c, () => false);
  const done = run(reg, c, { concurrency: 3, perServer: 3 });
  await new Promise((r) => setTimeout(r, 50));
  release();
  const report = await done;
  expect(updatesDuringMigration).toBe(0);
  expect(c.log.filter((l) => l.command.includes('npm run migrate'))).toHaveLength(1);
  expect(report.targets.map((t) => t.outcome)).toEqual(['failed', 'failed', 'failed']);
  expect(report.targets.map((t) => t.error).sort()).toEqual([
    'pre-deploy hook failed: exit code 1: migration 42 failed',
    'the once-per-rollout hook failed on another target: pre-deploy hook failed: exit code 1: migration 42 failed',
    'the once-per-rollout hook failed on another target: pre-deploy hook failed: exit code 1: migration 42 failed',
  ]);
});

describe('one pull per server and image: tenants of a server deploying the same images share one pull', () => {
  const pullStep = (r: { steps: { step: string; ok: boolean; detail?: string }[] }) =>
    r.steps.find((s) => s.step === 'pull');

  test('three tenants of each of two servers: one pull per server; the others wait for it, their step marked shared', async () => {
    const c = new ScriptedConnector(() => happyRules(`${REPO}:v1`));
    versionAware(c, () => false);
    const report = await run(registry(2, 3), c, { concurrency: 6, perServer: 3 });
    expect(report.targets.map((r) => r.outcome)).toEqual(Array(6).fill('deployed'));
    expect(c.log.filter((l) => l.verb === 'pull').map((l) => l.server)).toEqual(['eu-1', 'us-2']);
    const details = report.targets.map((r) => pullStep(r)?.detail);
    expect(details.filter((d) => d?.startsWith('shared: pulled once on this server, by '))).toHaveLength(4);
    // every target still has its release's image IDs and digests, for its history
    for (const r of report.targets)
      expect(r.next).toMatchObject({ imageIds: ['sha256:new'], digests: ['r/app@sha256:d1'] });
  });

  test('a failed shared pull fails each target that waited for it, with the same error; nothing is switched', async () => {
    const c = new ScriptedConnector(() => [
      { match: 'pull', reply: fail(1, 'manifest unknown') },
      ...happyRules(`${REPO}:v1`),
    ]);
    const report = await run(registry(1, 3), c, { concurrency: 3, perServer: 3, pullAttempts: 1 });
    expect(report.targets.map((r) => r.outcome)).toEqual(['failed', 'failed', 'failed']);
    expect(new Set(report.targets.map((r) => r.error)).size).toBe(1);
    expect(report.targets[0]!.error).toMatch(/manifest unknown/);
    expect(c.log.filter((l) => l.verb === 'pull')).toHaveLength(1);
    expect(c.log.filter((l) => l.verb === 'update')).toHaveLength(0);
  });

  test('sharePulls off: each target pulls for itself', async () => {
    const c = new ScriptedConnector(() => happyRules(`${REPO}:v1`));
    versionAware(c, () => false);
    await run(registry(1, 3), c, { concurrency: 3, perServer: 3, sharePulls: false });
    expect(c.log.filter((l) => l.verb === 'pull')).toHaveLength(3);
  });
});

describe("pre-pull: the next wave's images pulled on their servers while a wave gates", () => {
  const twoWaves = { waves: '1,100%' };
  const verbsOn = (c: ScriptedConnector, server: string) =>
    c.log.filter((l) => l.server === server).map((l) => l.verb);

  test("wave 2's server pulls its images once wave 1 is past its pull, before its own deploy; the deploy is unchanged", async () => {
    const c = new ScriptedConnector(() => [
      { match: 'prePull', reply: ok('@@prepulled\n') },
      ...happyRules(`${REPO}:v1`),
    ]);
    versionAware(c, () => false);
    const report = await run(registry(2, 1), c, { prePull: true }, twoWaves);
    expect(report.targets.map((r) => [r.server, r.wave, r.outcome])).toEqual([
      ['eu-1', 1, 'deployed'],
      ['us-2', 2, 'deployed'],
    ]);
    expect(verbsOn(c, 'eu-1')).toEqual(['prepare', 'pull', 'update', 'finish']);
    expect(verbsOn(c, 'us-2')).toEqual(['prePull', 'prepare', 'pull', 'update', 'finish']);
    const first = c.log.findIndex((l) => l.verb === 'prePull');
    expect(first).toBeGreaterThan(c.log.findIndex((l) => l.server === 'eu-1' && l.verb === 'pull'));
    expect(c.log[first]!.command).toContain(`pull -q ${REPO}:v2`);
    expect(c.log[first]!.command).not.toContain('.fleet/lock'); // it holds no lock and touches none
    expect(report.prePulls).toEqual([
      { wave: 2, server: 'us-2', refs: [`${REPO}:v2`], status: 'pulled', ms: expect.any(Number) },
    ]);
  });

  test('prePullWaves: 1 pulls wave 3 once wave 2 is past its pulls; Infinity pulls waves 2 and 3 once wave 1 is', async () => {
    const at = (c: ScriptedConnector, server: string, verb: string) =>
      c.log.findIndex((l) => l.server === server && l.verb === verb);
    const threeWaves = { waves: '1,2,100%' };
    for (const [ahead, startsAfter] of [
      [1, ['pull on wave 1', 'pull on wave 2']],
      [Number.POSITIVE_INFINITY, ['pull on wave 1', 'pull on wave 1']],
    ] as const) {
      const c = new ScriptedConnector(() => [
        { match: 'prePull', reply: ok('@@prepulled\n') },
        ...happyRules(`${REPO}:v1`),
      ]);
      versionAware(c, () => false);
      const report = await run(registry(3, 1), c, { prePull: true, prePullWaves: ahead }, threeWaves);
      expect(report.targets.map((r) => r.outcome)).toEqual(['deployed', 'deployed', 'deployed']);
      const servers = [1, 2, 3].map((w) => report.targets.find((r) => r.wave === w)!.server);
      expect(report.prePulls!.map((p) => [p.wave, p.server])).toEqual([
        [2, servers[1]],
        [3, servers[2]],
      ]);
      // each pre-pull starts after the pulls of the wave it runs beside, and before its own wave starts
      for (const [k, w] of [2, 3].entries()) {
        const prePull = at(c, servers[w - 1]!, 'prePull');
        const beside = startsAfter[k] === 'pull on wave 1' ? servers[0]! : servers[1]!;
        expect([ahead, w, prePull > at(c, beside, 'pull')]).toEqual([ahead, w, true]);
        expect(prePull).toBeLessThan(at(c, servers[w - 1]!, 'prepare'));
      }
      if (ahead === Number.POSITIVE_INFINITY)
        expect(at(c, servers[2]!, 'prePull')).toBeLessThan(at(c, servers[1]!, 'pull'));
      else expect(at(c, servers[2]!, 'prePull')).toBeGreaterThan(at(c, servers[1]!, 'pull'));
    }
  });

  test("the next wave's pre-pull starts at the wave's first pull that succeeds, not after its slowest", async () => {
    const order: string[] = [];
    let pulls = 0;
    const prePulled = () => order.some((o) => o.startsWith('prePull'));
    const c = new ScriptedConnector((server) => [
      {
        match: 'prePull',
        reply: async () => (order.push(`prePull ${server}`), ok('@@prepulled\n')),
      },
      {
        match: 'pull',
        reply: async () => {
          // wave 1's second pull is slow: it ends once a pre-pull has begun (or after a bound, so the
          // test fails rather than hangs when none begins)
          if (++pulls === 2)
            for (let i = 0; i < 500 && !prePulled(); i++) await new Promise((r) => setImmediate(r));
          order.push(`pull ${server}`);
          return ok('sha256:new|["r/app@sha256:d1"]\n');
        },
      },
      ...happyRules(`${REPO}:v1`),
    ]);
    versionAware(c, () => false);
    const report = await run(registry(3, 1), c, { prePull: true, concurrency: 3 }, { waves: '2,100%' });
    expect(report.targets.map((r) => r.outcome)).toEqual(['deployed', 'deployed', 'deployed']);
    const [a, b] = report.targets.filter((r) => r.wave === 1).map((r) => r.server);
    const later = report.targets.find((r) => r.wave === 2)!.server;
    expect(order.slice(0, 3).sort()).toEqual([`prePull ${later}`, `pull ${a}`, `pull ${b}`].sort());
    expect(order.indexOf(`prePull ${later}`)).toBe(1); // after the first pull, before the slow one ended
  });

  test('a wave whose every pull failed starts no pre-pull of the next', async () => {
    const c = new ScriptedConnector(() => [
      { match: 'prePull', reply: ok('@@prepulled\n') },
      { match: 'pull', reply: fail(1, 'manifest unknown') },
      ...happyRules(`${REPO}:v1`),
    ]);
    const report = await run(registry(3, 1), c, { prePull: true, pullAttempts: 1 }, { waves: '2,100%' });
    expect(report.targets.filter((r) => r.wave === 1).map((r) => r.outcome)).toEqual(['failed', 'failed']);
    expect(c.log.filter((l) => l.verb === 'prePull')).toEqual([]);
    expect(report.prePulls ?? []).toEqual([]);
  });

  test('prePullWaves Infinity: a server with tenants in two later waves pre-pulls its images once', async () => {
    const c = new ScriptedConnector(() => [
      { match: 'prePull', reply: ok('@@prepulled\n') },
      ...happyRules(`${REPO}:v1`),
    ]);
    versionAware(c, () => false);
    const waves = { waves: '1,2,3,100%' };
    const report = await run(registry(2, 2), c, { prePull: true, prePullWaves: Infinity }, waves);
    expect(report.targets.map((r) => r.outcome)).toEqual(Array(4).fill('deployed'));
    const first = report.targets.find((r) => r.wave === 1)!.server;
    const other = report.targets.find((r) => r.server !== first)!.server;
    // the other server's two tenants are in two of waves 2-4: two jobs, one pre-pull
    expect(new Set(report.targets.filter((r) => r.server === other).map((r) => r.wave)).size).toBe(2);
    expect(c.log.filter((l) => l.verb === 'prePull').map((l) => l.server)).toEqual([other]);
    expect(report.prePulls!.map((p) => [p.server, p.status])).toEqual([[other, 'pulled']]);
  });

  test('a disk too full for it stops the pre-pull on that server with a warning; the deploy goes on and pulls as usual', async () => {
    const c = new ScriptedConnector(() => [
      { match: 'prePull', reply: ok('@@low-disk 12\n') },
      ...happyRules(`${REPO}:v1`),
    ]);
    versionAware(c, () => false);
    const report = await run(registry(2, 1), c, { prePull: true, prePullMinFreeMb: 500 }, twoWaves);
    expect(report.targets.map((r) => r.outcome)).toEqual(['deployed', 'deployed']);
    expect(report.prePulls).toEqual([
      expect.objectContaining({
        status: 'skipped',
        detail: expect.stringMatching(
          /^only 12 MiB free on the filesystem of .*, under the pre-pull's 500 MiB: pre-pull stopped on us-2/,
        ),
      }),
    ]);
    expect(c.log.find((l) => l.verb === 'prePull')!.command).toContain('-ge 500 ]');
  });

  test('a server that pulled the same images in an earlier wave gets no pre-pull (nothing to say either)', async () => {
    const c = new ScriptedConnector(() => [
      { match: 'prePull', reply: ok('@@prepulled\n') },
      ...happyRules(`${REPO}:v1`),
    ]);
    versionAware(c, () => false);
    const report = await run(registry(1, 2), c, { prePull: true }, twoWaves);
    expect(report.targets.map((r) => r.outcome)).toEqual(['deployed', 'deployed']);
    expect(c.log.filter((l) => l.verb === 'prePull')).toHaveLength(0);
    expect(report.prePulls).toEqual([]);
  });

  test('a failed pre-pull is a warning, not a failure', async () => {
    const c = new ScriptedConnector(() => [
      { match: 'prePull', reply: fail(1, 'registry down') },
      ...happyRules(`${REPO}:v1`),
    ]);
    versionAware(c, () => false);
    const report = await run(registry(2, 1), c, { prePull: true }, twoWaves);
    expect(report.targets.map((r) => r.outcome)).toEqual(['deployed', 'deployed']);
    expect(report.prePulls).toEqual([
      expect.objectContaining({ status: 'failed', detail: 'exit code 1: registry down' }),
    ]);
  });

  test('a rollout stopped by wave 1: the pre-pulled server runs nothing new (no prepare, no switch)', async () => {
    const c = new ScriptedConnector(() => [
      { match: 'prePull', reply: ok('@@prepulled\n') },
      ...happyRules(`${REPO}:v1`),
    ]);
    versionAware(c, (_, v) => v === 'v2');
    const report = await run(registry(2, 1), c, { prePull: true }, twoWaves);
    expect(report.targets.map((r) => r.outcome)).toEqual(['rolled-back', 'skipped']);
    expect(verbsOn(c, 'us-2')).toEqual(['prePull']);
  });

  test('off (the engine default; the CLI and action turn it on): nothing is pre-pulled', async () => {
    const c = new ScriptedConnector(() => happyRules(`${REPO}:v1`));
    versionAware(c, () => false);
    const report = await run(registry(2, 1), c, {}, twoWaves);
    expect(c.log.filter((l) => l.verb === 'prePull')).toHaveLength(0);
    expect(report.prePulls).toBeUndefined();
  });
});

describe("pre-pull of one wave only (the reusable workflow's prepull-N job, beside gate N-1)", () => {
  const plan = planDeployment(registry(3, 1), { waves: '1,2,100%' });
  /** The one server of each wave (the plan orders them by its own rules). */
  const serverOf = (wave: number) => plan.plan[wave - 1]!.targets[0]!.server.name;
  const prePullOnly = (c: ScriptedConnector, wave: number, events: unknown[] = []) =>
    prePullWave(plan, wave, options({ prePull: true }), {
      connector: c,
      clock: new FakeClock(),
      onPrePull: (e) => events.push(e),
    });

  test("wave 2: only wave 2's server, only the pre-pull script: nothing locked, deployed or touched elsewhere", async () => {
    const c = new ScriptedConnector(() => [{ match: 'prePull', reply: ok('@@prepulled\n') }]);
    const seen: unknown[] = [];
    const events = await prePullOnly(c, 2, seen);
    expect(plan.plan.map((w) => w.targets.length)).toEqual([1, 1, 1]);
    expect(c.log.map((l) => [l.server, l.verb])).toEqual([[serverOf(2), 'prePull']]);
    expect(c.log[0]!.command).toContain(`pull -q ${REPO}:v2`);
    expect(c.log[0]!.command).not.toContain('.fleet/lock');
    expect(c.connects).toBe(1);
    expect(events).toEqual([
      { wave: 2, server: serverOf(2), refs: [`${REPO}:v2`], status: 'pulled', ms: expect.any(Number) },
    ]);
    expect(seen).toEqual(events);
  });

  test('Compose v1 tenants: the job asks no engine API version (no switch of this job would use it)', async () => {
    const v1Plan = planDeployment(
      registry(
        3,
        1,
        (r) => (r.defaults.tenant.compose = { ...r.defaults.tenant.compose, command: 'docker-compose' }),
      ),
      { waves: '1,2,100%' },
    );
    const c = new ScriptedConnector(() => [
      { match: 'prePull', reply: ok('@@prepulled\n') },
      { match: 'engineApiVersion', reply: ok('1.41\n') },
    ]);
    await prePullWave(v1Plan, 2, options({ prePull: true }), { connector: c, clock: new FakeClock() });
    expect(c.log.map((l) => l.verb)).toEqual(['prePull']);
  });

  test('wave 1 (nothing runs before it) and a wave the plan lacks: nothing connected, nothing pulled', async () => {
    const c = new ScriptedConnector(() => []);
    expect(await prePullOnly(c, 1)).toEqual([]);
    expect(await prePullOnly(c, 4)).toEqual([]);
    expect(c.connects).toBe(0);
  });

  test('a server that cannot be reached, or a pull that fails, is an event, never a throw', async () => {
    const c = new ScriptedConnector(
      () => [{ match: 'prePull', reply: fail(1, 'registry down') }],
      (server) => (server === serverOf(2) ? new Error('connection refused') : undefined),
    );
    const refused = await prePullOnly(c, 2);
    expect(refused).toEqual([expect.objectContaining({ server: serverOf(2), status: 'failed' })]);
    expect(refused[0]!.detail).toContain('connection refused');
    expect(await prePullOnly(c, 3)).toEqual([
      expect.objectContaining({
        wave: 3,
        server: serverOf(3),
        status: 'failed',
        detail: 'exit code 1: registry down',
      }),
    ]);
  });
});

describe('a version per image and the registry login (scripted transport)', () => {
  const twoImages = (r: any) =>
    (r.defaults.tenant.images = [
      { variable: 'APP_IMAGE', repository: REPO },
      { variable: 'WORKER_IMAGE', repository: 'ghcr.io/acme/worker' },
    ]);
  const digest = `sha256:${'d'.repeat(64)}`;
  const PASSWORD = 'hunter2-s3cret';
  const GHCR_TOKEN = 'ghs_run-token';
  const HUB_TOKEN = 'dckr_pat_hub';
  /** A login per host: the tenants' own registry, GHCR, and Docker Hub (which no image here names). */
  const registryLogin = {
    logins: [
      { host: 'registry.example.com', username: 'bot', password: PASSWORD },
      { host: 'ghcr.io', username: 'gh-actor', password: GHCR_TOKEN },
      { host: 'docker.io', username: 'hub', password: HUB_TOKEN },
    ],
    keep: false,
  };

  test('each image at its own version; the release is labelled with the first image’s', async () => {
    const c = new ScriptedConnector(() => happyRules(`${REPO}:v1`));
    versionAware(c, () => false);
    const report = await run(registry(1, 1, twoImages), c, { versions: { WORKER_IMAGE: digest } });
    const r = report.targets[0]!;
    expect(r.outcome).toBe('deployed');
    expect(r.next).toMatchObject({
      version: 'v2',
      refs: { APP_IMAGE: `${REPO}:v2`, WORKER_IMAGE: `ghcr.io/acme/worker@${digest}` },
    });
    expect(c.log.find((l) => l.verb === 'pull')!.command).toContain(
      `docker pull -q ghcr.io/acme/worker@${digest}`,
    );
  });

  test('the password goes on the pull’s stdin only: in no command, history line or lock owner', async () => {
    const c = new ScriptedConnector(() => happyRules(`${REPO}:v1`));
    versionAware(c, () => false);
    const report = await run(registry(1, 1, twoImages), c, { registry: registryLogin });
    expect(report.targets[0]!.outcome).toBe('deployed');
    const pull = c.log.find((l) => l.verb === 'pull')!;
    // Each host its own login and password, in order; Docker Hub, which no image names, gets nothing.
    expect(pull.stdin).toBe(`${PASSWORD}\n${GHCR_TOKEN}\n`);
    expect(pull.command).toContain('--username bot --password-stdin registry.example.com');
    expect(pull.command).toContain('--username gh-actor --password-stdin ghcr.io');
    expect(pull.command).not.toContain('docker.io');
    expect(c.log.filter((l) => l.stdin !== undefined).map((l) => l.verb)).toEqual(['pull']);
    for (const secret of [PASSWORD, GHCR_TOKEN, HUB_TOKEN]) {
      expect(JSON.stringify(c.log.map((l) => l.command))).not.toContain(secret);
      expect(JSON.stringify(report)).not.toContain(secret);
    }
  });

  test('a stack of one registry logs in there only: the GHCR token never goes to another host', async () => {
    const c = new ScriptedConnector(() => happyRules(`${REPO}:v1`));
    versionAware(c, () => false);
    const ghcrOnly = { logins: [registryLogin.logins[1]!], keep: false };
    const report = await run(registry(1, 1), c, { registry: ghcrOnly });
    expect(report.targets[0]!.outcome).toBe('deployed');
    const pull = c.log.find((l) => l.verb === 'pull')!;
    // registry.example.com has no credentials given: no login at all, no stdin.
    expect(pull.command).not.toContain('login');
    expect(pull.stdin).toBeUndefined();
  });

  test('a refused login fails the target at once (not tried again), with the password cut from what it says', async () => {
    const c = new ScriptedConnector(() => [
      { match: 'prepare', reply: prepared(`${REPO}:v1`) },
      { match: 'pull', reply: fail(40, `registry login to ghcr.io as bot failed: bad password ${PASSWORD}`) },
      { match: 'finish', reply: ok('@@unlock released\n') },
    ]);
    const report = await run(registry(1, 1), c, { registry: registryLogin });
    const r = report.targets[0]!;
    expect(r.outcome).toBe('failed');
    expect(r.error).toBe('exit code 40: registry login to ghcr.io as bot failed: bad password ***');
    expect(c.log.find((l) => l.verb === 'pull')!.stdin).toBe(`${PASSWORD}\n`);
    expect(c.log.filter((l) => l.verb === 'pull')).toHaveLength(1);
    expect(JSON.stringify(c.log.map((l) => l.command))).not.toContain(PASSWORD);
  });

  test('a pull refused for want of credentials says how to give them', async () => {
    const c = new ScriptedConnector(() => [
      { match: 'prepare', reply: prepared(`${REPO}:v1`) },
      { match: 'pull', reply: fail(1, 'Error response from daemon: unauthorized: authentication required') },
      { match: 'finish', reply: ok('@@unlock released\n') },
    ]);
    const report = await run(registry(1, 1), c);
    expect(report.targets[0]!.error).toContain(
      'the registry wants credentials: set FLEET_REGISTRY_HOST, FLEET_REGISTRY_USERNAME and FLEET_REGISTRY_PASSWORD for the CLI, or the registry-host, registry-username and registry-password inputs, for the host of that image',
    );
  });
});

describe('the pre-deploy backup and the database dump', () => {
  const withDump = () =>
    registry(1, 1, (f) => {
      f.defaults.tenant.backup = {
        keepDays: 7,
        dump: { command: 'docker compose exec -T db pg_dump -U app app', file: 'app.sql' },
      };
    });
  const deployWith = async (prepare: Rule['reply']) => {
    const c = new ScriptedConnector(() => [
      { match: 'prepare', reply: prepare },
      { match: 'backup', reply: ok(`@@backup 2024-05-01T12-00-00-000Z 100 ${'c'.repeat(64)}\n`) },
      { match: 'hibernate', reply: ok() },
      ...happyRules(`${REPO}:v1`).slice(1),
    ]);
    versionAware(c, () => false);
    const report = await run(withDump(), c);
    const backup = c.log.find((l) => l.verb === 'backup')!.command;
    return { target: report.targets[0]!, backup };
  };
  const stateful = (states: string[]) =>
    ok(
      [
        'free_kb=4096000',
        '@@project app',
        '@@env',
        `APP_IMAGE=${REPO}:v1`,
        '@@running',
        ...states.map((s, i) => `sha256:old ${s} ${String(i).padStart(12, 'c')}`),
        '@@history',
        '@@end',
      ].join('\n'),
    );

  test('a container runs: the dump is taken, with the compose files and project in its environment', async () => {
    const { target, backup } = await deployWith(stateful(['running', 'exited']));
    expect(target.outcome).toBe('deployed');
    expect(target.steps.find((s) => s.step === 'backup')!.detail).toBe(
      `backup 2024-05-01T12-00-00-000Z (sha256 ${'c'.repeat(64)})`,
    );
    expect(backup).toContain("pg_dump -U app app') > .fleet/dump/app.sql");
    expect(backup).toContain('COMPOSE_FILE=docker-compose.yml COMPOSE_PROJECT_NAME=t00000 sh -c ');
  });

  test.each([
    ['a first deploy (no container)', []],
    ['a stopped tenant', ['exited', 'exited']],
    ['a paused tenant', ['paused']],
  ])('%s: the files are archived without the dump, and the step says so', async (_, states) => {
    const { target, backup } = await deployWith(stateful(states));
    expect([target.outcome, target.error]).toEqual(['deployed', undefined]);
    expect(target.steps.find((s) => s.step === 'backup')!.detail).toBe(
      `backup 2024-05-01T12-00-00-000Z (sha256 ${'c'.repeat(64)}) without the database dump (no container was running)`,
    );
    expect(backup).not.toContain('pg_dump');
    expect(backup).not.toContain('.fleet/dump');
  });

  test.each([
    ['no slot runs', [], false],
    ['the blue slot runs (nothing in place)', ['a'], true],
  ])('blue-green, %s: the dump only when something runs', async (_, blue, dumped) => {
    const reg = registry(1, 1, (f) => {
      f.defaults.tenant.backup = {
        keepDays: 7,
        dump: { command: 'docker compose exec -T db pg_dump -U app app', file: 'app.sql' },
      };
      f.defaults.tenant.strategy = {
        kind: 'blue-green',
        slots: { blue: { port: 8081 }, green: { port: 8082 } },
        proxy: { kind: 'caddy' },
      };
    });
    const slots = [
      '@@active',
      'blue',
      '@@env blue',
      `APP_IMAGE=${REPO}:v1`,
      '@@running blue',
      ...blue.map((c) => c.repeat(64)),
      '@@env green',
      '@@running green',
      '@@running legacy',
      '@@proxy',
      '[{"dial":"127.0.0.1:8081"}]',
    ].join('\n');
    const c = new ScriptedConnector(() => [
      { match: 'prepare', reply: prepared(`${REPO}:v1`, []) },
      { match: /@@active/, reply: ok(slots) },
      { match: 'backup', reply: ok('@@backup 2024-05-01T12-00-00-000Z 100\n') },
      ...happyRules(`${REPO}:v1`).slice(1),
    ]);
    const report = await run(reg, c);
    const backup = c.log.find((l) => l.verb === 'backup')!.command;
    expect(backup.includes('pg_dump')).toBe(dumped);
    expect(report.targets[0]!.steps.find((s) => s.step === 'backup')!.detail).toBe(
      `backup 2024-05-01T12-00-00-000Z${dumped ? '' : ' without the database dump (no container was running)'}`,
    );
  });
});

describe("Compose v1: the engine's API version asked once per server and run, before the switches that use it", () => {
  const composeV1 = (r: any) =>
    (r.defaults.tenant.compose = { ...r.defaults.tenant.compose, command: 'docker-compose' });
  const rules = (): Rule[] => [
    { match: 'engineApiVersion', reply: ok('1.41\n') },
    { match: 'prePull', reply: ok('@@prepulled\n') },
    ...happyRules(`${REPO}:v1`),
  ];
  const verbsOn = (c: ScriptedConnector, server: string) =>
    c.log.filter((l) => l.server === server).map((l) => l.verb);

  test("one ask per server for all its tenants; every switch runs with the answer; a later wave's server asks beside its pre-pull", async () => {
    const c = new ScriptedConnector(rules);
    versionAware(c, () => false);
    const report = await run(
      registry(2, 2, composeV1),
      c,
      { prePull: true, perServer: 2 },
      { waves: '1,100%' },
    );
    expect(report.targets.map((r) => r.outcome)).toEqual(Array(4).fill('deployed'));
    const first = report.targets.find((r) => r.wave === 1)!.server;
    const other = report.targets.find((r) => r.server !== first)!.server;
    for (const server of [first, other])
      expect(verbsOn(c, server).filter((v) => v === 'engineApiVersion')).toHaveLength(1);
    const updates = c.log.filter((l) => l.verb === 'update');
    expect(updates).toHaveLength(4);
    for (const u of updates)
      expect(u.command).toContain('then export COMPOSE_API_VERSION=1.41; fi; } && docker-compose');
    // wave 1's server asked beside its first pull (sent before it), not in line before its first switch
    const first1 = verbsOn(c, first);
    expect(first1.indexOf('engineApiVersion')).toBeLessThan(first1.indexOf('pull'));
    // the server whose tenants are all in wave 2 asked after its pre-pull, before its deploys began
    const on = verbsOn(c, other);
    expect(on.indexOf('engineApiVersion')).toBe(on.indexOf('prePull') + 1);
    expect(on.indexOf('engineApiVersion')).toBeLessThan(on.indexOf('prepare'));
  });

  test('a rollback runs without it: the way back never relies on the version asked', async () => {
    const c = new ScriptedConnector(rules);
    versionAware(c, (_server, version) => version === 'v2');
    const report = await run(registry(1, 1, composeV1), c);
    expect(report.targets.map((r) => r.outcome)).toEqual(['rolled-back']);
    const [forward, back] = c.log.filter((l) => l.verb === 'update').map((l) => l.command);
    expect(forward).toContain('export COMPOSE_API_VERSION=1.41');
    expect(back).toContain(`APP_IMAGE=${REPO}:v1`);
    expect(back).not.toContain('COMPOSE_API_VERSION');
  });

  test('an engine that does not say (or says something else) leaves Compose to ask it; an unchanged deploy asks nothing', async () => {
    const c = new ScriptedConnector(() => [
      { match: 'engineApiVersion', reply: ok('1.41; reboot\n') },
      ...happyRules(`${REPO}:v1`),
    ]);
    versionAware(c, () => false);
    const report = await run(registry(1, 2, composeV1), c, { perServer: 2 });
    expect(report.targets.map((r) => r.outcome)).toEqual(['deployed', 'deployed']);
    expect(c.log.filter((l) => l.verb === 'engineApiVersion')).toHaveLength(1);
    for (const u of c.log.filter((l) => l.verb === 'update'))
      expect(u.command).not.toContain('COMPOSE_API_VERSION');

    const same = new ScriptedConnector(() => [
      { match: 'prepare', reply: prepared(`${REPO}:v2`, ['sha256:new']) },
      ...rules(),
    ]);
    const again = await run(registry(1, 2, composeV1), same, { perServer: 2 });
    expect(again.targets.map((r) => r.outcome)).toEqual(['unchanged', 'unchanged']);
    expect(same.log.filter((l) => l.verb === 'engineApiVersion')).toHaveLength(0);
  });
});
