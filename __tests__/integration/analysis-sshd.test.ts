/**
 * Analysis between waves, end to end: a fleet of real sshd servers whose tenants (the SANDBOX runtime)
 * expose a heartbeat metric, scraped every second by a real Prometheus. A "silent…" release passes every
 * tenant's health gate but stops its heartbeats: only the analysis sees it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBundledAction } from '../helpers/run';
import { deploy } from '../helpers/deploy';
import { havePrometheus, startPrometheus, waitForSeries, type TestPrometheus } from '../helpers/prometheus';
import { historyOf, startFleet, type TestFleet } from '../helpers/testfleet';
import { freePort, haveSshd } from '../../src/testing';
import { parseRegistry } from '../../src/registry';
import type { Analysis } from '../../src/analysis';
import { renderReport } from '../../src/report/render';
import { renderSummary } from '../../src/report/summary';

const run = haveSshd && havePrometheus ? describe : describe.skip;
if (!havePrometheus) console.warn('skipped: the analysis tests need prometheus (npm run setup installs it)');

const HEARTBEAT_DROP = '1 - avg(sandbox_heartbeat_ok{tenant=~"{tenants}"})';

run('analysis between waves, with a real Prometheus', () => {
  let fleet: TestFleet;
  let prom: TestPrometheus;
  /** The registry's `rollout.analysis`, read through the registry parser as a user's file is. */
  const analysis = (raw: Record<string, unknown>): Analysis => {
    const file = { ...JSON.parse(fleet.registryText), rollout: { analysis: raw } };
    return parseRegistry(JSON.stringify(file), join(fleet.root, 'registry.json')).analysis!;
  };
  const heartbeat = (extra: Record<string, unknown> = {}) => ({
    name: 'heartbeat-drop',
    prometheus: { url: prom.url, query: HEARTBEAT_DROP },
    failureCondition: 'value > 0.03',
    // A restarting tenant misses a scrape: its series is stale (no data) for a second.
    inconclusiveLimit: 3,
    ...extra,
  });
  const version = (id: string) => /:(\S+)\n/.exec(fleet.env(fleet.tenants.find((t) => t.id === id)!))?.[1];
  const go = (v: string, a: Analysis) =>
    deploy(fleet.registry, fleet.key, v, { waves: '1,100%', options: { analysis: a } });

  beforeAll(async () => {
    fleet = await startFleet({ servers: 2, tenantsPerServer: 2, startWith: 'v1' });
    prom = await startPrometheus(fleet.tenants.map((t) => ({ tenant: t.id, port: t.port })));
    await waitForSeries(prom, 'sandbox_heartbeat_ok', 4);
  }, 60_000);
  afterAll(async () => {
    await prom?.stop();
    await fleet?.stop();
  });

  test("the canary's heartbeats drop: the rollout stops and the canary wave is rolled back", async () => {
    const report = await go('silent-1', analysis({ soak: '6s', interval: '1s', checks: [heartbeat()] }));
    const [canary, ...rest] = report.targets;
    expect(canary).toMatchObject({ id: 'srv-1/t1-1', wave: 1, outcome: 'rolled-back' });
    expect(canary!.error).toContain('analysis after wave 1 failed: check "heartbeat-drop" failed: value 1');
    expect(rest.map((r) => r.outcome)).toEqual(['skipped', 'skipped', 'skipped']);
    expect(version('t1-1')).toBe('v1');
    const a = report.analysis![0]!;
    expect(a).toMatchObject({ wave: 1, outcome: 'failed', decision: 'stop' });
    expect(a.checks[0]).toMatchObject({
      name: 'heartbeat-drop',
      outcome: 'failed',
      failureCondition: 'value > 0.03',
      what: `1 - avg(sandbox_heartbeat_ok{tenant=~"t1-1"}) @ ${prom.url}`,
    });
    expect(report.stopped).toMatch(
      /^analysis after wave 1 failed: check "heartbeat-drop" failed: value 1; .*failureCondition: value > 0\.03; query: 1 - avg\(sandbox_heartbeat_ok\{tenant=~"t1-1"\}\)/,
    );
    // The tenant's history on its server records the rollback and why.
    expect(historyOf(fleet.tenants[0]!).at(-1)).toMatchObject({
      outcome: 'deployed',
      rollback: true,
      from: 'silent-1',
      to: 'v1',
      reason: expect.stringMatching(
        /^analysis after wave 1 failed: check "heartbeat-drop" failed: value 1; /,
      ),
    });
    // The CLI's table and the job summary say it too.
    expect(renderReport(report)).toMatch(
      /\nAnalysis after wave 1: failed in [\d.]+ s: check "heartbeat-drop" failed: value 1; /,
    );
    expect(renderSummary(report)).toContain('### Analysis after wave 1: failed → stop');
    expect(renderSummary(report)).toContain('| heartbeat-drop | failed | 1 | `failure: value > 0.03` |');
    // It stopped at the first failed measurement, not at the end of the soak.
    expect(a.checks[0]!.measurements.at(-1)!.outcome).toBe('failed');
    expect(a.checks[0]!.measurements.length).toBeLessThan(7);
  }, 120_000);

  test('a healthy release soaks through every measurement and goes on', async () => {
    const report = await go('v2', analysis({ soak: '4s', interval: '1s', checks: [heartbeat()] }));
    expect(report.stopped).toBeUndefined();
    expect(report.totals).toMatchObject({ targets: 4, deployed: 4 });
    const a = report.analysis!;
    expect(a).toHaveLength(1); // none after the last wave
    expect(a[0]).toMatchObject({ outcome: 'successful', decision: 'proceed', soakMs: 4000 });
    expect(a[0]!.checks[0]!.measurements).toHaveLength(5); // at 0, 1, 2, 3 and 4 s
    expect(a[0]!.checks[0]!.measurements.some((m) => m.outcome === 'successful')).toBe(true);
  }, 120_000);

  test.each([
    ['stop', 'stopped', 'v3'],
    ['continue', 'goes on', 'v4'],
    ['pause', 'pauses', 'v5'],
  ] as const)(
    'Prometheus down: inconclusive, and with policy %s the rollout %s',
    async (policy, _, v) => {
      const down = `http://127.0.0.1:${await freePort()}`;
      const check = heartbeat({ prometheus: { url: down, query: HEARTBEAT_DROP }, inconclusiveLimit: 0 });
      const report = await go(v, analysis({ inconclusive: policy, checks: [check] }));
      const a = report.analysis![0]!;
      expect(a.outcome).toBe('inconclusive');
      expect(a.checks[0]!.measurements[0]!.detail).toMatch(/^Prometheus did not answer: /);
      expect(version('t1-1')).toBe(v); // an inconclusive analysis never rolls back
      if (policy === 'continue') {
        expect(report.stopped).toBeUndefined();
        expect(report.totals.deployed).toBe(4);
      } else {
        expect(report.totals).toMatchObject({ deployed: 1, skipped: 3 });
        expect(report.paused ?? false).toBe(policy === 'pause');
        expect(report.stopped).toMatch(
          policy === 'pause'
            ? /^paused after wave 1 for a person: /
            : /^analysis after wave 1 inconclusive: /,
        );
      }
    },
    120_000,
  );

  test('no data (a metric nobody exports) is inconclusive too', async () => {
    const check = heartbeat({
      prometheus: { url: prom.url, query: 'absent_metric{tenant=~"{tenants}"}' },
      inconclusiveLimit: 0,
    });
    const report = await go('v6', analysis({ checks: [check] }));
    expect(report.analysis![0]!.checks[0]!.measurements[0]).toMatchObject({
      outcome: 'inconclusive',
      detail: 'no data: the query returned no series',
    });
    expect(report.stopped).toMatch(/^analysis after wave 1 inconclusive: .*inconclusive policy: stop$/);
  }, 120_000);

  test('a command on each target of the wave, over the deploy connection; rollback "none" leaves the wave', async () => {
    const check = {
      name: 'redaction',
      command: "! grep -q ':silent' .env",
      failureCondition: 'failedPercent > 0',
    };
    const report = await go('silent-2', analysis({ rollback: 'none', checks: [check] }));
    const a = report.analysis![0]!;
    expect(a.outcome).toBe('failed');
    expect(a.checks[0]!.measurements[0]!.value).toBe('1/1 targets failed: srv-1/t1-1: exit 1');
    expect(report.targets[0]).toMatchObject({ outcome: 'deployed' });
    expect(version('t1-1')).toBe('silent-2');
    expect(report.stopped).toContain("command: on each target: ! grep -q ':silent' .env");
  }, 120_000);

  test("an HTTP check on the canary's heartbeat endpoint; the failed wave goes back to its previous release", async () => {
    const t = fleet.tenants[0]!;
    const check = {
      name: 'hub-heartbeat',
      http: { url: `http://127.0.0.1:${t.port}/heartbeat` },
      successCondition: 'json.ok',
    };
    const report = await go('silent-3', analysis({ checks: [check] }));
    expect(report.analysis![0]!.checks[0]!.measurements[0]).toMatchObject({
      outcome: 'failed',
      value: 'HTTP 200 {"ok":false,"version":"silent-3"}',
    });
    expect(report.targets[0]!.outcome).toBe('rolled-back');
    expect(version('t1-1')).toBe('silent-2');
  }, 120_000);

  test('a dryRun check is measured and reported but never stops the rollout', async () => {
    const report = await go(
      'silent-4',
      analysis({ soak: '4s', interval: '1s', checks: [heartbeat({ dryRun: true })] }),
    );
    const a = report.analysis![0]!;
    expect(a.checks[0]).toMatchObject({ dryRun: true, outcome: 'failed' });
    expect(a).toMatchObject({ outcome: 'successful', decision: 'proceed' });
    expect(a.reason).toContain('check "heartbeat-drop" failed (dry run)');
    expect(report.stopped).toBeUndefined();
    expect(report.totals.deployed).toBe(4);
  }, 120_000);

  test("the workflow's gate job: the same analysis over SSH; the failed wave is rolled back from the gate", async () => {
    // wave 1 of "1,100%" (srv-1/t1-1) was deployed by its wave job; its report is the gate's input
    const waveJob = await deploy(fleet.registry, fleet.key, 'silent-7', { select: 'id=srv-1/t1-1' });
    const reports = join(fleet.root, 'gate-reports');
    mkdirSync(reports, { recursive: true });
    writeFileSync(join(reports, 'report.json'), JSON.stringify(waveJob));
    const registry = join(fleet.root, 'gate-registry.json');
    const check = { name: 'redaction', command: "! grep -q ':silent' .env" };
    writeFileSync(
      registry,
      JSON.stringify({ ...JSON.parse(fleet.registryText), rollout: { analysis: { checks: [check] } } }),
    );
    const r = runBundledAction(
      'dist/actions/gate.js',
      {
        reports,
        wave: '1',
        waves: '1,100%',
        version: 'silent-7',
        'analysis-registry': registry,
        'ssh-key': fleet.key.privateKey,
      },
      {},
      60_000,
    );
    expect(r.outputs).toMatchObject({ continue: 'false', pause: 'false' });
    expect(r.outputs.reason).toContain(
      'analysis after wave 1 failed: check "redaction" failed: value 1/1 targets failed: srv-1/t1-1: exit 1',
    );
    expect(r.outputs.reason).toContain('; rolled back 1 of 1 target(s)');
    expect(r.summary).toContain('### Analysis after wave 1: failed → stop');
    expect(version('t1-1')).not.toBe('silent-7');
    expect(historyOf(fleet.tenants[0]!).at(-1)).toMatchObject({ rollback: true, from: 'silent-7' });
  }, 120_000);
});
