/**
 * How the reusable workflows behave at an organisation's scale: two calls in one run keep their report
 * artifacts apart (a run's artifacts are shared by every call in it), a private fork checks itself out
 * with its own token, and a rollback is never dropped or cancelled by a deploy.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { SETTINGS } from '../src/settings';

const load = (f: string) => parse(readFileSync(f, 'utf8'));
const DEPLOY = '.github/workflows/deploy.yml';
const ROLLBACK = '.github/workflows/rollback.yml';
type Job = { steps?: any[]; strategy?: unknown; outputs?: Record<string, string> };
const jobsOf = (file: string) => Object.entries(load(file).jobs) as Array<[string, Job]>;

/** The inputs a called workflow sees: its defaults, overlaid with what the caller passes. */
function inputsOf(file: string, given: Record<string, unknown>): Record<string, unknown> {
  const declared = load(file).on.workflow_call.inputs as Record<string, { default?: unknown }>;
  return { ...Object.fromEntries(Object.entries(declared).map(([k, v]) => [k, v.default ?? ''])), ...given };
}

/** Runs the call-key step's own script with bash, as the runner runs it; its output, or its failure. */
function callKey(file: string, inputs: Record<string, unknown>): { key?: string; error?: string } {
  const step = jobsOf(file)
    .flatMap(([, j]) => j.steps ?? [])
    .find((s) => s.id === 'key');
  const dir = mkdtempSync(join(tmpdir(), 'call-key-'));
  try {
    const out = join(dir, 'output');
    const r = spawnSync('bash', ['-e', '-c', step.run], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        GITHUB_OUTPUT: out,
        CALL_KEY: String(inputs['call-key'] ?? ''),
        CALL_INPUTS: JSON.stringify(inputs),
      },
    });
    if (r.status !== 0) return { error: r.stdout + r.stderr };
    const key = /^call-key=(.*)$/m.exec(readFileSync(out, 'utf8'))?.[1];
    return { key };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every artifact name one call can upload (two jobs per wave, two attempts), with its key filled in. */
function uploadsOf(file: string, key: string): string[] {
  const names = jobsOf(file).flatMap(([, j]) =>
    (j.steps ?? [])
      .filter((s) => /^actions\/upload-artifact@/.test(s.uses ?? ''))
      .flatMap((s) =>
        [0, 1].flatMap((job) =>
          [1, 2].map((attempt) =>
            (s.with.name as string)
              .replace(/\$\{\{ (needs\.plan\.outputs|steps\.key\.outputs)\.call-key \}\}/, key)
              .replace('${{ strategy.job-index }}', String(job))
              .replace('${{ github.run_attempt }}', String(attempt)),
          ),
        ),
      ),
  );
  return [...new Set(names)];
}

/** Every download pattern of one call, with its key filled in, as a matcher. */
function downloadsOf(file: string, key: string): Array<{ pattern: string; test: (n: string) => boolean }> {
  return jobsOf(file).flatMap(([, j]) =>
    (j.steps ?? [])
      .filter((s) => /^actions\/download-artifact@/.test(s.uses ?? ''))
      .map((s) => {
        const pattern = (s.with.pattern as string).replace(
          /\$\{\{ needs\.(plan|rollback)\.outputs\.call-key \}\}/,
          key,
        );
        expect(pattern).not.toContain('${{');
        const re = new RegExp(`^${pattern.replace(/[.+?^$()[\]{}|\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
        return { pattern, test: (n: string) => re.test(n) };
      }),
  );
}

/** A caller that deploys twice in one run: the shipped components matrix (two of its components). */
const example = load('docs/examples/deploy-components.yml').jobs.deploy;
const componentCalls = ['web', 'worker'].map((component) =>
  Object.fromEntries(
    Object.entries(example.with as Record<string, string>).map(([k, v]) => [
      k,
      v.replaceAll('${{ matrix.component }}', component).replaceAll('${{ github.sha }}', 'abc123'),
    ]),
  ),
);
/** …and a caller that deploys staging, then production, with the same version. */
const stagedCalls = [
  { registry: 'servers/staging.json', environment: 'staging', version: 'v2' },
  { registry: 'servers/production.json', environment: 'production', version: 'v2' },
];

describe('two calls of one workflow in one run keep their reports apart', () => {
  test.each([
    ['the components matrix (docs/examples/deploy-components.yml)', DEPLOY, componentCalls],
    ['staging, then production', DEPLOY, stagedCalls],
    ['two rollbacks of different tenants', ROLLBACK, [{ select: 'tenant=a' }, { select: 'tenant=b' }]],
    ['two equal calls told apart by call-key', DEPLOY, [{ 'call-key': 'eu' }, { 'call-key': 'eu-2' }]],
  ])('%s', (_, file, calls) => {
    const [a = '', b = ''] = (calls as Array<Record<string, unknown>>).map(
      (c) => callKey(file, inputsOf(file, c)).key!,
    );
    expect(a).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
    expect(b).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
    expect(a).not.toBe(b);
    const upA = uploadsOf(file, a);
    const upB = uploadsOf(file, b);
    // No upload of the second call fails with 409 on a name the first one took.
    expect(new Set([...upA, ...upB]).size).toBe(upA.length + upB.length);
    // Each call's gates and summary read its own reports, and never the other call's.
    for (const d of downloadsOf(file, a)) {
      expect([d.pattern, upB.filter(d.test)]).toEqual([d.pattern, []]);
      expect([d.pattern, upA.filter(d.test).length]).not.toEqual([d.pattern, 0]);
    }
    for (const d of downloadsOf(file, b)) expect([d.pattern, upA.filter(d.test)]).toEqual([d.pattern, []]);
  });

  test('the derived key is the same for the same inputs (every job of a call agrees), and a prefix of none', () => {
    const one = callKey(DEPLOY, inputsOf(DEPLOY, { version: 'v1' })).key!;
    expect(callKey(DEPLOY, inputsOf(DEPLOY, { version: 'v1' })).key).toBe(one);
    // A key that is a prefix of another ('eu' and 'eu-2' above) still matches only its own: the dot ends it.
    expect(downloadsOf(DEPLOY, 'eu')[0]!.test(uploadsOf(DEPLOY, 'eu-2')[0]!)).toBe(false);
  });

  test.each(['a.b', 'has space', 'x'.repeat(41), 'ok\n::set-output name=x::y', '../up'])(
    'call-key %j is refused with a clear error before anything runs',
    (key) => {
      const r = callKey(DEPLOY, inputsOf(DEPLOY, { 'call-key': key }));
      expect(r.key).toBeUndefined();
      expect(r.error).toContain('::error::the call-key input must be 1 to 40 letters, digits, _ or -');
    },
  );

  test('every artifact name and pattern of both workflows carries the call key', () => {
    for (const file of [DEPLOY, ROLLBACK]) {
      const text = readFileSync(file, 'utf8');
      const names = [...text.matchAll(/^\s*(?:name|pattern): (fleet-deploy-report.*)$/gm)].map((m) => m[1]!);
      expect(names.length).toBeGreaterThan(1);
      for (const n of names) expect(n).toMatch(/^fleet-deploy-report\.\$\{\{ [\w.-]+\.call-key \}\}\./);
    }
  });
});

describe('a private or internal fork runs the workflows', () => {
  test.each([DEPLOY, ROLLBACK])(
    '%s: an optional token secret for the checkout; the repository is never a fixed name',
    (file) => {
      const wf = load(file);
      expect(wf.on.workflow_call.secrets['fleet-deploy-token']).toMatchObject({ required: false });
      expect(wf.on.workflow_call.inputs['fleet-deploy-repository']).toMatchObject({
        type: 'string',
        default: '',
      });
      const text = readFileSync(file, 'utf8');
      expect(text).not.toContain("'fleet-deploy/fleet-deploy'");
      const checkouts = jobsOf(file).flatMap(([, j]) =>
        (j.steps ?? []).filter((s) => s.with?.path === '.fleet-deploy'),
      );
      expect(checkouts.length).toBeGreaterThan(0);
      for (const c of checkouts) {
        expect(c.with.repository).toBe('${{ job.workflow_repository || inputs.fleet-deploy-repository }}');
        expect(c.with.token).toBe('${{ secrets.fleet-deploy-token || github.token }}');
      }
    },
  );

  test('the first job refuses to start when neither the runner nor the caller names the repository', () => {
    const step = jobsOf(DEPLOY)
      .find(([name]) => name === 'plan')![1]
      .steps!.find((s) => /repository and commit are known/.test(s.name ?? ''));
    const run = (env: Record<string, string>) =>
      spawnSync('bash', ['-e', '-c', step.run], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, ...env },
      });
    const sha = { WORKFLOW_SHA: 'a'.repeat(40) };
    expect(run({ ...sha, WORKFLOW_REPOSITORY: 'acme/fleet-deploy' }).status).toBe(0);
    expect(run({ ...sha, FALLBACK_REPOSITORY: 'acme/fleet-deploy' }).status).toBe(0);
    const refused = run(sha);
    expect(refused.status).toBe(1);
    expect(refused.stdout).toContain('pass fleet-deploy-repository');
  });

  test('docs/workflows.md and the setup guide say how', () => {
    for (const doc of ['docs/workflows.md', 'docs/AUTO-DEPLOY-SETUP.md']) {
      const text = readFileSync(doc, 'utf8');
      expect([doc, text.includes('fleet-deploy-token')]).toEqual([doc, true]);
    }
    expect(readFileSync('docs/workflows.md', 'utf8')).toContain('fleet-deploy-repository');
  });
});

describe('a rollback is never dropped or cancelled by a deploy', () => {
  const group = (file: string, environment: string) =>
    (load(file).concurrency.group as string).replace('${{ inputs.environment }}', environment);

  test.each(['production', 'staging', 'canary'])(
    'environment %s: deploy and rollback are in different groups',
    (env) => {
      expect(group(DEPLOY, env)).not.toBe(group(ROLLBACK, env));
      // A deploy to another environment shares no group with this rollback either.
      for (const other of ['production', 'staging', 'canary', 'rollback-production'])
        expect(group(DEPLOY, other)).not.toBe(group(ROLLBACK, env));
    },
  );

  test('neither workflow cancels a run in progress', () => {
    for (const file of [DEPLOY, ROLLBACK])
      expect([file, load(file).concurrency['cancel-in-progress']]).toEqual([file, false]);
  });

  test("no example puts its rollback in its deploys' group, or cancels a deploy in progress", () => {
    const examples = ['deploy-prd.yml', 'deploy-components.yml', 'rollback.yml'].map((f) =>
      load(`docs/examples/${f}`),
    );
    for (const wf of examples) expect(wf.concurrency?.['cancel-in-progress'] ?? false).toBe(false);
    const rollbackGroup = examples[2].concurrency?.group;
    if (rollbackGroup)
      for (const wf of examples.slice(0, 2)) expect(wf.concurrency?.group).not.toBe(rollbackGroup);
  });

  test('docs/workflows.md says what cancel-in-progress on a calling workflow would do', () => {
    const text = readFileSync('docs/workflows.md', 'utf8');
    expect(text).toContain('fleet-rollback-<environment>');
    expect(text).toMatch(/cancel-in-progress: true/);
  });
});

const gen = (await import('../.ci/workflows.mjs' as string)) as {
  PASSED_SETTINGS: string[];
  WAVE_TIMEOUT_MINUTES: number;
  WAVES: number;
};

describe('the workflows pass the rollout settings of the one table (src/settings.ts)', () => {
  const rows = gen.PASSED_SETTINGS.map((name) => (SETTINGS as Record<string, any>)[name]);

  test('the knobs the CLI has are inputs of both workflows, with the table’s name, help and default', () => {
    const inputs = rows.map((r) => r.input as string);
    for (const knob of ['per-server', 'lock-wait', 'break-stale-locks', 'command-timeout', 'pull-timeout'])
      expect(inputs).toContain(knob);
    for (const file of [DEPLOY, ROLLBACK]) {
      const declared = load(file).on.workflow_call.inputs;
      for (const r of rows) {
        expect([file, r.input, declared[r.input]?.default]).toEqual([file, r.input, r.default ?? '']);
        expect(declared[r.input].description.toLowerCase()).toContain(r.help.toLowerCase().slice(0, 30));
        // The same knob has a CLI flag of the same name.
        expect([r.input, r.flag]).toEqual([r.input, r.input]);
      }
    }
  });

  test('every job that deploys or rolls back hands each of them to its action', () => {
    const steps = [DEPLOY, ROLLBACK].flatMap((file) =>
      jobsOf(file).flatMap(([job, j]) =>
        (j.steps ?? [])
          .filter((s) => ['deploy', 'rollback'].includes(s.id) && /^\.\/\.fleet-deploy/.test(s.uses ?? ''))
          .map((s) => ({ where: `${file} ${job}`, with: s.with as Record<string, string> })),
      ),
    );
    expect(steps.length).toBe(13); // wave 1's first job, 10 waves, the fleet job, the rollback
    for (const s of steps)
      for (const r of rows)
        expect([s.where, s.with[r.input]]).toEqual([s.where, `\${{ inputs.${r.input} }}`]);
  });

  test('the wave jobs’ timeout is an input (default 60 minutes), no longer fixed', () => {
    const wf = load(DEPLOY);
    expect(wf.on.workflow_call.inputs['wave-timeout-minutes']).toMatchObject({
      type: 'number',
      default: gen.WAVE_TIMEOUT_MINUTES,
    });
    const waves = jobsOf(DEPLOY).filter(([job]) => /^wave-\d+(-first)?$/.test(job));
    expect(waves).toHaveLength(gen.WAVES + 1);
    for (const [job, j] of waves)
      expect([job, (j as any)['timeout-minutes']]).toEqual([job, '${{ inputs.wave-timeout-minutes }}']);
  });
});
