/**
 * The gate and summary actions' bundles run as the runner runs them. The Deployments API calls go to a
 * local HTTP server that records them (GITHUB_API_URL points at it), not to a mock of Octokit.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { actionEnv } from './helpers/run';

function runAsync(
  entry: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [entry], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
}

const target = (id: string, outcome: string, wave = 1) => ({
  id,
  server: id.split('/')[0],
  tenant: id.split('/')[1],
  region: 'eu',
  ring: 'general',
  wave,
  outcome,
  steps: [],
  startedAt: '2026-11-22T10:00:00.000Z',
  durationMs: 1000,
  previous: { refs: {}, version: 'v1', imageIds: [], digests: [] },
  next: { refs: {}, version: 'v2', imageIds: [], digests: [] },
});
const report = (targets: unknown[]) => ({
  version: 'v2',
  actor: 'a',
  runId: 'r',
  startedAt: '2026-11-22T10:00:00.000Z',
  durationMs: 5000,
  totals: {},
  waves: [],
  targets,
});

const madeDirs: string[] = [];
afterAll(() => madeDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function reportsDir(...reports: unknown[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'fd-reports-'));
  madeDirs.push(dir);
  reports.forEach((r, i) => {
    mkdirSync(join(dir, `job-${i}`), { recursive: true });
    writeFileSync(join(dir, `job-${i}`, 'report.json'), JSON.stringify(r));
  });
  return dir;
}

let server: Server;
let base = '';
const requests: Array<{ method: string; url: string; body: any }> = [];
let analysisStatus = 200;
beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      requests.push({ method: req.method!, url: req.url!, body: body ? JSON.parse(body) : undefined });
      res.setHeader('content-type', 'application/json');
      if (req.url!.split('?')[0] === '/analysis')
        return void res
          .writeHead(analysisStatus)
          .end(JSON.stringify({ heartbeatDrop: analysisStatus === 200 ? 0.01 : 0.05 }));
      if (req.method === 'POST' && req.url === '/repos/acme/app/deployments')
        return void res.writeHead(201).end(JSON.stringify({ id: 4242 }));
      if (req.method === 'POST' && /^\/repos\/acme\/app\/deployments\/4242\/statuses$/.test(req.url!))
        return void res.writeHead(201).end(JSON.stringify({ id: 1 }));
      res.writeHead(404).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => (requests.length = 0));

const github = () => ({
  GITHUB_API_URL: base,
  GITHUB_REPOSITORY: 'acme/app',
  GITHUB_SHA: 'abc123',
  GITHUB_RUN_ID: '77',
  GITHUB_SERVER_URL: 'https://github.example',
  GITHUB_ACTOR: 'alice',
});

describe('actions/gate', () => {
  test('within the budget and the analysis answers 2xx: continue', async () => {
    analysisStatus = 200;
    const a = actionEnv({
      reports: reportsDir(report([target('s/a', 'deployed'), target('s/b', 'rolled-back')])),
      'max-failure-percent': '50',
      'expected-targets': '2',
      'analysis-url': `${base}/analysis`,
    });
    const r = await runAsync('dist/actions/gate.js', a.env);
    expect(r.code).toBe(0);
    expect(a.outputs()).toMatchObject({ continue: 'true', failures: '1' });
    expect(a.outputs().reason).toBe(
      `1 of 2 targets failed or rolled back: within the budget; analysis ${base}/analysis answered HTTP 200`,
    );
    expect(requests.map((q) => q.url)).toEqual(['/analysis']);
  });

  test('the analysis says no: stop', async () => {
    analysisStatus = 503;
    const a = actionEnv({
      reports: reportsDir(report([target('s/a', 'deployed')])),
      'analysis-url': `${base}/analysis`,
    });
    await runAsync('dist/actions/gate.js', a.env);
    expect(a.outputs()).toMatchObject({
      continue: 'false',
      reason: `analysis ${base}/analysis answered HTTP 503: {"heartbeatDrop":0.05}`,
    });
  });

  test('over the budget: stop without asking the analysis; a command can decide too', async () => {
    const over = actionEnv({
      reports: reportsDir(report([target('s/a', 'failed')])),
      'analysis-url': `${base}/analysis`,
    });
    const r = await runAsync('dist/actions/gate.js', over.env);
    expect(over.outputs().continue).toBe('false');
    expect(r.stdout).toContain(
      '::warning title=fleet-deploy gate::Rollout stopped: failure budget exceeded: 1 of 1 targets failed or rolled back (100.0%25 > 0%25)',
    );
    expect(requests).toEqual([]);
    const cmd = actionEnv({
      reports: reportsDir(report([target('s/a', 'deployed')])),
      'analysis-command': 'echo "approval-routing failures 3%"; exit 3',
    });
    await runAsync('dist/actions/gate.js', cmd.env);
    expect(cmd.outputs()).toMatchObject({
      continue: 'false',
      reason: 'analysis command exited 3: approval-routing failures 3%',
    });
  });
});

describe("actions/gate with the registry's analysis (the same engine as fleet mode)", () => {
  /** A registry of one server "s" with tenants a and b, whose rollout.analysis is `analysis`. */
  function registryFile(analysis: unknown): string {
    const dir = mkdtempSync(join(tmpdir(), 'fd-gate-reg-'));
    madeDirs.push(dir);
    const tenant = (id: string, port: number) => ({
      id,
      path: `/srv/${id}`,
      images: [{ variable: 'APP_IMAGE', repository: 'ghcr.io/acme/app' }],
      health: { port },
    });
    const registry = {
      rollout: { analysis },
      servers: [
        { name: 's', host: '10.0.0.1', region: 'eu', tenants: [tenant('a', 8080), tenant('b', 8081)] },
      ],
    };
    writeFileSync(join(dir, 'registry.json'), JSON.stringify(registry));
    return join(dir, 'registry.json');
  }
  const inputs = (analysis: unknown) => ({
    reports: reportsDir(report([target('s/a', 'deployed')])),
    wave: '1',
    waves: '1,100%',
    version: 'v2',
    'analysis-registry': registryFile(analysis),
  });

  test('a failed check stops the rollout; the job summary says which check, the value, the condition and the request', async () => {
    analysisStatus = 200;
    const check = {
      name: 'heartbeat-drop',
      http: { url: `${base}/analysis?tenants={tenants}&others={otherTenants}` },
      failureCondition: 'json.heartbeatDrop > 0.005',
    };
    const a = actionEnv(inputs({ checks: [check] }));
    const r = await runAsync('dist/actions/gate.js', a.env);
    expect(r.code).toBe(0);
    expect(a.outputs()).toMatchObject({ continue: 'false', pause: 'false' });
    expect(a.outputs().reason).toContain(
      'analysis after wave 1 failed: check "heartbeat-drop" failed: value HTTP 200 {"heartbeatDrop":0.01}',
    );
    expect(a.outputs().reason).toContain(
      '; not rolled back: the gate has no ssh-key (run the rollback workflow)',
    );
    expect(requests.map((q) => q.url)).toEqual(['/analysis?tenants=a&others=b']);
    expect(a.summary()).toContain('### Analysis after wave 1: failed → stop');
    expect(a.summary()).toContain(
      `| heartbeat-drop | failed | HTTP 200 {"heartbeatDrop":0.01} | \`failure: json.heartbeatDrop > 0.005\` | \`GET ${base}/analysis?tenants=a&others=b\` |`,
    );
  });

  test('inconclusive under "pause": the gate asks for the approval job (pause=true) and does not continue', async () => {
    const check = {
      name: 'hub',
      http: { url: 'http://127.0.0.1:9/heartbeats' },
      successCondition: 'json.ok',
    };
    const a = actionEnv(inputs({ inconclusive: 'pause', checks: [check] }));
    const r = await runAsync('dist/actions/gate.js', a.env);
    expect(a.outputs()).toMatchObject({ continue: 'false', pause: 'true' });
    expect(r.stdout).toContain('::warning title=fleet-deploy gate::Rollout paused for approval: ');
  });

  test('a passing check lets the next wave start', async () => {
    analysisStatus = 200;
    const check = {
      name: 'hb',
      http: { url: `${base}/analysis` },
      successCondition: 'json.heartbeatDrop < 0.03',
    };
    const a = actionEnv(inputs({ checks: [check] }));
    await runAsync('dist/actions/gate.js', a.env);
    expect(a.outputs()).toMatchObject({ continue: 'true', pause: 'false' });
    expect(a.outputs().reason).toContain('analysis after wave 1 successful: 1 check(s) passed');
  });
});

describe('a re-run of failed jobs', () => {
  test("the gate judges each target's newest result, and only its own waves", async () => {
    const dir = reportsDir(
      report([target('s/a', 'failed')]),
      report([{ ...target('s/a', 'deployed'), startedAt: '2026-11-22T11:00:00.000Z' }]),
      report([target('s/b', 'failed', 2)]), // wave 2, left from the first attempt
    );
    try {
      const a = actionEnv({ reports: dir, wave: '1', 'expected-targets': '1' });
      expect((await runAsync('dist/actions/gate.js', a.env)).code).toBe(0);
      expect(a.outputs()).toMatchObject({ continue: 'true', failures: '0' });
      const all = actionEnv({ reports: dir });
      await runAsync('dist/actions/gate.js', all.env);
      expect(all.outputs()).toMatchObject({ continue: 'false', failures: '1' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('actions/summary', () => {
  test("writes the summary from every job's report, sets outputs, fails when a target was not deployed", async () => {
    const a = actionEnv(
      {
        reports: reportsDir(
          report([target('eu-1/a', 'deployed')]),
          report([target('eu-2/b', 'rolled-back', 2)]),
        ),
        title: 'Deploy v2 to production',
      },
      github(),
    );
    const r = await runAsync('dist/actions/summary.js', a.env);
    expect(r.code).toBe(1);
    expect(a.summary()).toContain('## ❌ Deploy v2 to production');
    expect(a.summary()).toContain('| eu-2/b | eu | ↩️ rolled-back | `v1` → `v2` |');
    expect(JSON.parse(a.outputs().totals!)).toEqual({
      targets: 2,
      deployed: 1,
      unchanged: 0,
      'rolled-back': 1,
      failed: 0,
      skipped: 0,
    });
    expect(a.outputs().success).toBe('false');
    expect(requests).toEqual([]);
  });

  test('a GitHub Deployment: created in_progress at the start, then success with the environment URL', async () => {
    const start = actionEnv(
      { deployment: 'start', environment: 'production', token: 'test-token', title: 'Deploy v2' },
      github(),
    );
    const s = await runAsync('dist/actions/summary.js', start.env);
    expect(s.code).toBe(0);
    expect(start.outputs()['deployment-id']).toBe('4242');
    const finish = actionEnv(
      {
        deployment: 'finish',
        'deployment-id': '4242',
        environment: 'production',
        'environment-url': 'https://app.example.com',
        token: 'test-token',
        reports: reportsDir(report([target('eu-1/a', 'deployed')])),
      },
      github(),
    );
    const f = await runAsync('dist/actions/summary.js', finish.env);
    expect(f.code).toBe(0);
    expect(requests.map((q) => [q.method, q.url, q.body?.state ?? q.body?.environment])).toEqual([
      ['POST', '/repos/acme/app/deployments', 'production'],
      ['POST', '/repos/acme/app/deployments/4242/statuses', 'in_progress'],
      ['POST', '/repos/acme/app/deployments/4242/statuses', 'success'],
    ]);
    expect(requests[0]!.body).toMatchObject({
      ref: 'abc123',
      environment: 'production',
      auto_merge: false,
      required_contexts: [],
    });
    expect(requests[2]!.body).toMatchObject({
      environment_url: 'https://app.example.com',
      log_url: 'https://github.example/acme/app/actions/runs/77',
      description: '1 deployed, 0 unchanged, 0 rolled back, 0 failed, 0 skipped',
    });
  });

  test('a failed rollout marks the Deployment failure', async () => {
    const finish = actionEnv(
      {
        deployment: 'finish',
        'deployment-id': '4242',
        token: 't',
        reports: reportsDir(report([target('eu-1/a', 'failed')])),
        'fail-on-failure': 'false',
      },
      github(),
    );
    const f = await runAsync('dist/actions/summary.js', finish.env);
    expect(f.code).toBe(0);
    expect(requests.map((q) => q.body.state)).toEqual(['failure']);
  });
});

describe('actions/summary: the stop reason and the annotations', () => {
  test("shows the gate's stop reason and annotates a failure on its registry line", async () => {
    const dir = reportsDir(
      report([target('eu-1/acme-corp', 'rolled-back'), target('eu-2/globex', 'deployed')]),
    );
    try {
      const a = actionEnv(
        {
          reports: dir,
          registry: 'servers/example.json',
          stopped: 'failure budget exceeded: 1 of 2 <50%>',
        },
        github(),
      );
      const r = await runAsync('dist/actions/summary.js', a.env);
      expect(a.summary()).toContain('> Rollout stopped: `failure budget exceeded: 1 of 2 <50%>`');
      const line =
        readFileSync('servers/example.json', 'utf8')
          .split('\n')
          .findIndex((l) => l.includes('"id": "acme-corp"')) + 1;
      expect(r.stdout).toContain(
        `::error title=fleet-deploy%3A eu-1/acme-corp rolled-back,file=servers/example.json,line=${line - 1},`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
