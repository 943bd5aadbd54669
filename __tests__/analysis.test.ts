/**
 * The analysis engine's pure parts: templating and escaping, CEL conditions, measurement outcomes,
 * counting against the limits, the policies, and the registry's refusals. The Prometheus, HTTP and
 * command paths against real servers are in integration/analysis-sshd.test.ts.
 */
import { readFileSync } from 'node:fs';
import { parseRegistry } from '../src/registry';
import { planDeployment } from '../src/plan/plan';
import { renderPlan } from '../src/cli/main';
import { Progress } from '../src/cli/progress';
import { cli } from './helpers/cli';
import { conditionProblem } from '../src/analysis/condition';
import { Judge, observeCommand, observePrometheus } from '../src/analysis/measure';
import { analyseWave, decide, plannedCheck } from '../src/analysis/run';
import { alternation, fill, type TemplateValues } from '../src/analysis/template';
import { toRollBack } from '../src/deploy/analysis';
import type { Analysis, Check, CheckResult } from '../src/analysis';
import { FakeClock } from './helpers/fakes';
import { baseRegistry, problemsOf } from './helpers/registry';

const values: TemplateValues = {
  wave: 2,
  rings: ['canary'],
  version: 'v2"; rm -rf /',
  previousVersion: "v1'x",
  tenants: ['a.b', 'c+d'],
  servers: ['eu-1'],
  otherTenants: [],
};

describe('templating', () => {
  test('PromQL: ids are regex-escaped alternations inside an escaped string', () => {
    expect(fill('x{tenant=~"{tenants}",v="{version}",w="{wave}"}', values, 'promql')).toBe(
      'x{tenant=~"a\\\\.b|c\\\\+d",v="v2\\"; rm -rf /",w="2"}',
    );
  });
  test('no tenant left: a regex that matches nothing, not even the empty label', () => {
    expect(alternation([])).toBe('[^\\s\\S]');
    expect(new RegExp(`^(?:${alternation([])})$`).test('')).toBe(false);
    expect(new RegExp(`^(?:${alternation(['a.b'])})$`).test('axb')).toBe(false);
  });
  test('URL: one component each; shell: one quoted word each', () => {
    expect(fill('http://hub/h?t={tenants}&v={version}', values, 'url')).toBe(
      'http://hub/h?t=a.b%2Cc%2Bd&v=v2%22%3B%20rm%20-rf%20%2F',
    );
    expect(fill('check {version} {previousVersion}', values, 'shell')).toBe(
      `check 'v2"; rm -rf /' 'v1'\\''x'`,
    );
  });
});

describe('conditions (CEL)', () => {
  test('a condition that does not parse, or names a variable the check lacks, is refused', () => {
    expect(conditionProblem('value >', 'prometheus')).toMatch(/^is not a valid CEL expression \(at 1:/);
    expect(conditionProblem('status == 200', 'prometheus')).toBe(
      'uses "status", which a prometheus check does not have: use result, value, series',
    );
    expect(conditionProblem('result.all(v, v < 0.03)', 'prometheus')).toBeUndefined();
    expect(conditionProblem('json.ok && status == 200', 'http')).toBeUndefined();
  });

  const check = (c: Partial<Check>): Check => ({
    name: 'c',
    source: { kind: 'prometheus', url: 'http://p', query: 'q' },
    intervalMs: 1000,
    failureLimit: 0,
    inconclusiveLimit: 0,
    timeoutMs: 1000,
    dryRun: false,
    ...c,
  });
  const prom = (...vals: string[]) =>
    observePrometheus({
      status: 200,
      body: JSON.stringify({
        status: 'success',
        data: {
          resultType: 'vector',
          result: vals.map((v, i) => ({ metric: { tenant: `t${i}` }, value: [0, v] })),
        },
      }),
    });

  test("Argo's rules: failure wins; both given and neither true is inconclusive; errors are inconclusive", () => {
    const both = new Judge(check({ successCondition: 'value < 0.01', failureCondition: 'value > 0.03' }));
    expect(both.judge(prom('0.005')).outcome).toBe('successful');
    expect(both.judge(prom('0.5')).outcome).toBe('failed');
    expect(both.judge(prom('0.02'))).toEqual({ outcome: 'inconclusive', detail: 'neither condition held' });
    expect(both.judge(prom())).toEqual({
      outcome: 'inconclusive',
      detail: 'no data: the query returned no series',
    });
    expect(both.judge(prom('NaN')).outcome).toBe('inconclusive');
    expect(both.judge(prom('0.1', '0.2')).detail).toMatch(
      /^"value" needs exactly one series, the query returned 2/,
    );
    const every = new Judge(check({ failureCondition: 'result.exists(v, v > 0.03)' }));
    expect(every.judge(prom('0.01', '0.02')).outcome).toBe('successful');
    expect(every.judge(prom('0.01', '0.5')).outcome).toBe('failed');
    const http = new Judge(
      check({ source: { kind: 'http', url: 'http://h' }, successCondition: 'json.rate < 1' }),
    );
    expect(http.judge({ vars: { json: new Map([['other', 1]]) }, value: '' }).outcome).toBe('inconclusive');
  });

  test('a Prometheus error answer is inconclusive, with its message', () => {
    const r = observePrometheus({ status: 400, body: '{"status":"error","error":"parse error at char 3"}' });
    expect(r).toEqual({ inconclusive: 'query error (HTTP 400): parse error at char 3', value: '-' });
  });

  test('the command check: percent of targets; a target that did not answer alone is inconclusive', () => {
    const ok = { code: 0, stdout: '', stderr: '' };
    const r = observeCommand([
      { target: 's/a', result: ok },
      { target: 's/b', result: { code: 3, stdout: 'leak', stderr: '' } },
      { target: 's/c', result: { error: 'connection lost' } },
    ]);
    expect(r).toEqual({
      vars: { targets: 2, passed: 1, failed: 1, failedPercent: 50 },
      value: '1/2 targets failed: s/b: exit 3 leak',
    });
    expect(
      'inconclusive' in
        observeCommand([
          { target: 's/a', result: ok },
          { target: 's/c', result: { code: null, stdout: '', stderr: '' } },
        ]),
    ).toBe(true);
    const judge = new Judge(check({ source: { kind: 'command', run: 'x' } }));
    expect(judge.judge(r).outcome).toBe('failed'); // the default: failed > 0
  });
});

describe('counting and policies', () => {
  const analysis = (checks: Partial<Check>[], extra: Partial<Analysis> = {}): Analysis => ({
    soakMs: 10_000,
    inconclusive: 'stop',
    rollback: 'wave',
    rings: {},
    checks: checks.map((c, i) => ({
      name: `c${i}`,
      source: { kind: 'http', url: 'http://hub/{tenants}' },
      intervalMs: 2000,
      failureLimit: 0,
      inconclusiveLimit: 0,
      timeoutMs: 1000,
      dryRun: false,
      ...c,
    })),
    ...extra,
  });
  /** An HTTP endpoint double answering each request with the next status of the list. */
  const answers = (statuses: number[]) => {
    let i = 0;
    return async () => ({ status: statuses[Math.min(i++, statuses.length - 1)]!, body: '' });
  };
  const input = { values, targets: [] };

  test('through the soak: a measurement every interval from 0 to the soak, then the next wave', async () => {
    const clock = new FakeClock();
    const a = await analyseWave(analysis([{}]), input, { clock, urlGet: answers([200]) });
    expect(a.checks[0]!.measurements).toHaveLength(6); // 0, 2, 4, 6, 8, 10 s
    expect(a).toMatchObject({ outcome: 'successful', decision: 'proceed', durationMs: 10_000 });
  });

  test('failureLimit 1: the second failed measurement fails the check and ends the soak at once', async () => {
    const clock = new FakeClock();
    const a = await analyseWave(analysis([{ failureLimit: 1 }]), input, {
      clock,
      urlGet: answers([200, 500, 200, 500]),
    });
    expect(a.checks[0]!.measurements.map((m) => m.outcome)).toEqual([
      'successful',
      'failed',
      'successful',
      'failed',
    ]);
    expect(a).toMatchObject({ outcome: 'failed', decision: 'stop', durationMs: 6000 });
    expect(a.reason).toBe(
      'check "c0" failed: value HTTP 500; 2 of 4 measurement(s) failed, limit 1; successCondition: status >= 200 && status < 300; request: GET http://hub/a.b%2Cc%2Bd',
    );
  });

  test('count: that many measurements, then the soak is waited out', async () => {
    const clock = new FakeClock();
    const a = await analyseWave(analysis([{ count: 2 }]), input, { clock, urlGet: answers([200]) });
    expect(a.checks[0]!.measurements).toHaveLength(2);
    expect(a.durationMs).toBe(10_000);
  });

  test.each([
    ['stop', 'stop'],
    ['continue', 'proceed'],
    ['pause', 'pause'],
  ] as const)('inconclusive beyond the limit, policy %s: %s', async (policy, decision) => {
    const urlGet = async () => Promise.reject(new Error('ECONNREFUSED'));
    const a = await analyseWave(analysis([{ inconclusiveLimit: 1 }], { inconclusive: policy }), input, {
      clock: new FakeClock(),
      urlGet,
    });
    expect(a).toMatchObject({ outcome: 'inconclusive', decision });
    expect(a.checks[0]!.measurements).toHaveLength(2);
    expect(a.checks[0]!.measurements[0]!.detail).toBe('no answer: ECONNREFUSED');
  });

  test('a dryRun check that fails is reported and decides nothing', () => {
    const c = (outcome: CheckResult['outcome'], dryRun: boolean): CheckResult => ({
      name: dryRun ? 'new' : 'old',
      kind: 'http',
      what: 'GET x',
      intervalMs: 1,
      failureLimit: 0,
      inconclusiveLimit: 0,
      dryRun,
      outcome,
      measurements: [{ at: '', outcome, value: 'HTTP 500' }],
    });
    const d = decide({ inconclusive: 'stop' }, [c('successful', false), c('failed', true)]);
    expect(d.decision).toBe('proceed');
    expect(d.reason).toMatch(/^1 check\(s\) passed; check "new" failed \(dry run\): value HTTP 500/);
  });

  test('rollback policy: the wave, every wave so far, or nothing; only targets that moved', () => {
    const r = (id: string, wave: number, outcome: 'deployed' | 'unchanged') => ({ id, wave, outcome }) as any;
    const results = [r('a', 1, 'deployed'), r('b', 2, 'deployed'), r('c', 2, 'unchanged')];
    expect(toRollBack('wave', 2, results).map((x) => x.id)).toEqual(['b']);
    expect(toRollBack('all', 2, results).map((x) => x.id)).toEqual(['a', 'b']);
    expect(toRollBack('none', 2, results)).toEqual([]);
  });
});

describe('the registry', () => {
  const withAnalysis = (a: unknown) =>
    JSON.stringify({ ...baseRegistry(), rollout: { analysis: a } }, null, 2);
  const check = {
    name: 'hb',
    prometheus: { url: 'http://prom:9090', query: 'up' },
    failureCondition: 'value < 1',
  };

  test('a valid analysis resolves with its defaults', () => {
    const reg = parseRegistry(
      withAnalysis({ soak: '10m', rings: { canary: { soak: '30m' } }, checks: [check] }),
      'r.json',
    );
    expect(reg.analysis).toEqual({
      soakMs: 600_000,
      inconclusive: 'stop',
      rollback: 'wave',
      rings: { canary: { soakMs: 1_800_000 } },
      checks: [
        {
          name: 'hb',
          source: { kind: 'prometheus', url: 'http://prom:9090', query: 'up' },
          failureCondition: 'value < 1',
          intervalMs: 30_000,
          failureLimit: 0,
          inconclusiveLimit: 0,
          timeoutMs: 10_000,
          dryRun: false,
        },
      ],
    });
  });

  test.each([
    [{ ...check, failureCondition: 'value <' }, 'failureCondition', 'is not a valid CEL expression'],
    [{ ...check, failureCondition: 'status > 1' }, 'failureCondition', 'use result, value, series'],
    [
      { ...check, failureCondition: undefined },
      'failureCondition',
      'needs a successCondition or a failureCondition',
    ],
    [
      { ...check, http: { url: 'http://x' } },
      undefined,
      'a check is exactly one of prometheus, http or command',
    ],
    [
      { ...check, prometheus: { url: 'http://p', query: 'x{t="{tenant}"}' } },
      'prometheus',
      'unknown placeholder {tenant}',
    ],
  ])('refused at validate with the field and the fix: %#', (bad, field, says) => {
    const problems = problemsOf(withAnalysis({ checks: [bad] }));
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path.slice(0, 4)).toEqual(['rollout', 'analysis', 'checks', 0]);
    if (field) expect(problems[0]!.path[4]).toBe(field);
    expect(`${problems[0]!.message} ${problems[0]!.hint ?? ''}`).toContain(says);
  });

  test('rings and check names must exist', () => {
    const problems = problemsOf(
      withAnalysis({ rings: { canry: { checks: ['hb', 'nope'] } }, checks: [check] }),
    );
    expect(problems.map((p) => p.message)).toEqual([
      'ring "canry" is not one of the registry\'s rings',
      'no check is named "nope"',
    ]);
  });
});

test('`plan` shows the checks each wave will run, templated for it, and none after the last', () => {
  const file = baseRegistry();
  file.servers[0].tenants[0].ring = 'canary';
  file.servers[0].tenants.push({
    ...file.servers[0].tenants[0],
    id: 'globex',
    path: '/srv/globex',
    ring: 'general',
    health: { port: 8081 },
  });
  file.rollout = {
    analysis: {
      soak: '10m',
      checks: [
        {
          name: 'hb',
          prometheus: { url: 'http://prom:9090', query: 'x{tenant=~"{tenants}"}' },
          failureCondition: 'value < 1',
        },
        { name: 'redaction', command: 'redaction-test {version}', dryRun: true },
      ],
    },
  };
  const reg = parseRegistry(JSON.stringify(file), 'r.json');
  const text = renderPlan(planDeployment(reg, { waves: 'rings' }), reg.analysis);
  expect(text).toContain(
    [
      '  Analysis after wave 1: soak 10m, 2 check(s), on failure roll back: wave, inconclusive: stop',
      '    hb: prometheus every 30s, failureLimit 0, inconclusiveLimit 0; failure: value < 1',
      '      x{tenant=~"acme"} @ http://prom:9090',
      '    redaction (dry run): command every 30s, failureLimit 0, inconclusiveLimit 0; failure: failed > 0',
      "      on each target: redaction-test '{version}'",
    ].join('\n'),
  );
  expect(text.match(/Analysis after/g)).toHaveLength(1);
});

test('the example registry (servers/examples/analysis.json: failure rates and heartbeats as Prometheus and HTTP checks) is valid', () => {
  const file = 'servers/examples/analysis.json';
  const reg = parseRegistry(readFileSync(file, 'utf8'), file);
  expect(reg.analysis!.checks.map((c) => c.name)).toEqual([
    'redaction-test',
    'approval-routing-failures',
    'heartbeat-drop',
    'hub-heartbeats',
  ]);
  const text = renderPlan(planDeployment(reg, { waves: 'rings' }), reg.analysis);
  expect(text).toContain(
    'Analysis after wave 1: soak 5m, 1 check(s), on failure roll back: wave, inconclusive: pause',
  );
  expect(text).toContain('Analysis after wave 2: soak 30m, 4 check(s)');
  expect(text).toContain(
    '1 - avg(tenant:heartbeat_fresh:bool{tenant=~"acme-corp|startup-xyz|umbrella"}) @ http://prometheus.internal:9090',
  );
});

test('`validate` refuses a condition that does not parse: file, line, column, the field and the fix', async () => {
  const text = readFileSync('servers/examples/analysis.json', 'utf8').replace(
    '"value > 0.01"',
    '"value >> 0.01"',
  );
  const r = await cli(['validate', '-r', 'analysis.json'], { 'analysis.json': text });
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(
    /^error: analysis\.json:\d+:\d+: rollout\.analysis\.checks\[1\]\.failureCondition: "value >> 0\.01" is not a valid CEL expression \(at 1:7: found > but expecting end of input\): write e\.g\. "value > 0\.03" \(docs\/analysis\.md\)\n/,
  );
});

test('the CLI shows the analysis as it runs: the checks, each measurement, the outcome', () => {
  const out: string[] = [];
  const p = new Progress({ write: (t) => out.push(t), tty: false, color: false, total: 1 });
  const check = plannedCheck(
    {
      name: 'hb',
      source: { kind: 'http', url: 'http://h' },
      intervalMs: 1000,
      failureLimit: 0,
      inconclusiveLimit: 0,
      timeoutMs: 1,
      dryRun: true,
    },
    values,
  );
  p.onAnalysis({ status: 'start', wave: 1, soakMs: 2000, checks: ['hb'] });
  p.onAnalysis({
    status: 'measurement',
    wave: 1,
    check,
    measurement: { at: '', outcome: 'failed', value: 'HTTP 500 \x1b[31mx' },
  });
  expect(out.join('')).toBe(
    '── analysis after wave 1: soak 2.0 s, checks hb\ncheck hb (dry run)  failed  HTTP 500 x\n',
  );
});
