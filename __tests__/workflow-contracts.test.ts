/**
 * The contracts between our workflows, our actions and the consumer examples: every input a workflow
 * passes to one of our actions is declared in that action.yml; the reusable workflows run our actions from
 * the commit the caller referenced, never at a fixed ref; every input and secret a caller (an example, or a
 * YAML snippet in the README or docs) passes is declared, required ones are given, and the caller's
 * `permissions:` cover every job of the workflow it calls; report artifacts are named per run attempt.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

const OWN = 'fleet-deploy/fleet-deploy';
const OWN_PATH = './.fleet-deploy';
const load = (f: string) => parse(readFileSync(f, 'utf8'));
const reusable = ['.github/workflows/deploy.yml', '.github/workflows/rollback.yml'];
const workflows = [
  ...readdirSync('.github/workflows').map((f) => join('.github/workflows', f)),
  ...readdirSync('docs/examples').map((f) => join('docs/examples', f)),
].filter((f) => /\.ya?ml$/.test(f));

/** The action.yml a `uses:` runs, for our actions by full name or checked out at OWN_PATH. */
function actionFile(uses: string): string | undefined {
  const m =
    new RegExp(`^${OWN}(/actions/[\\w-]+)?@`).exec(uses) ??
    new RegExp(`^${OWN_PATH.replace('.', '\\.')}(/actions/[\\w-]+)?$`).exec(uses);
  if (!m) return undefined;
  return m[1] ? `${m[1].slice(1)}/action.yml` : 'action.yml';
}

const jobsOf = (file: string) => Object.entries(load(file).jobs ?? {}) as Array<[string, any]>;
const steps = workflows.flatMap((file) =>
  jobsOf(file).flatMap(([job, spec]) =>
    (spec.steps ?? [])
      .filter((s: any) => typeof s.uses === 'string' && actionFile(s.uses))
      .map((s: any) => ({
        file,
        job,
        uses: s.uses as string,
        with: (s.with ?? {}) as Record<string, unknown>,
      })),
  ),
);

test('the workflows use our actions', () => {
  expect(new Set(steps.map((s) => actionFile(s.uses)))).toEqual(
    new Set([
      'actions/plan/action.yml',
      'actions/deploy/action.yml',
      'actions/gate/action.yml',
      'actions/summary/action.yml',
      'actions/rollback/action.yml',
      'actions/status/action.yml',
      'action.yml',
    ]),
  );
});

test.each(workflows.filter((f) => f.startsWith('docs/examples')))(
  '%s: explicit permissions on the workflow; a job that writes issues is granted issues: write',
  (file) => {
    const wf = load(file);
    expect(wf.permissions).toEqual(expect.any(Object));
    for (const [job, spec] of jobsOf(file)) {
      const runs = (spec.steps ?? []).map((st: any) => st.run ?? '').join('\n');
      if (!/\bgh issue (create|comment)\b/.test(runs)) continue;
      expect([job, (spec.permissions ?? wf.permissions).issues]).toEqual([job, 'write']);
    }
  },
);

test.each(steps.map((s) => [`${s.file} ${s.job} → ${s.uses}`, s] as const))(
  '%s passes only declared inputs, and every required one',
  (_, s) => {
    const action = load(actionFile(s.uses)!);
    const declared = Object.keys(action.inputs ?? {});
    expect(Object.keys(s.with).filter((k) => !declared.includes(k))).toEqual([]);
    const required = Object.entries(action.inputs ?? {})
      .filter(([, v]: [string, any]) => v.required && v.default === undefined)
      .map(([k]) => k);
    expect(required.filter((k) => !(k in s.with))).toEqual([]);
  },
);

test.each(['action.yml', ...readdirSync('actions').map((a) => `actions/${a}/action.yml`)])(
  '%s runs on node24 and describes every input and output',
  (file) => {
    const action = load(file);
    expect(action.runs.using).toBe('node24');
    for (const [name, spec] of Object.entries({ ...action.inputs, ...action.outputs }) as Array<
      [string, any]
    >)
      expect([name, typeof spec.description]).toEqual([name, 'string']);
  },
);

describe('the reusable workflows run the actions of the commit the caller referenced', () => {
  const jobs = reusable.flatMap((file) => jobsOf(file).map(([job, spec]) => ({ file, job, spec })));

  test('no job uses this repository (actions or workflows) at a fixed ref', () => {
    const fixed = jobs.flatMap(({ file, job, spec }) =>
      [spec.uses, ...(spec.steps ?? []).map((s: any) => s.uses)]
        .filter((u): u is string => typeof u === 'string' && u.startsWith(`${OWN}`))
        .map((u) => `${file} ${job}: ${u}`),
    );
    expect(fixed).toEqual([]);
  });

  test.each(jobs.map((j) => [`${j.file} ${j.job}`, j] as const))(
    '%s checks fleet-deploy out at job.workflow_sha before running its actions',
    (_, { spec }) => {
      const list: any[] = spec.steps ?? [];
      const own = list.findIndex((s) => s.with?.path === '.fleet-deploy');
      const first = list.findIndex((s) => typeof s.uses === 'string' && s.uses.startsWith(OWN_PATH));
      if (first < 0) return;
      expect(own).toBeGreaterThanOrEqual(0);
      expect(own).toBeLessThan(first);
      expect(list[own].uses).toMatch(/^actions\/checkout@[0-9a-f]{40}$/);
      expect(list[own].with).toMatchObject({
        // A fork, a mirror or a GHES copy checks out itself, never a fixed name.
        repository: '${{ job.workflow_repository || inputs.fleet-deploy-repository }}',
        ref: '${{ job.workflow_sha || inputs.fleet-deploy-ref }}',
        // A private or internal fleet-deploy: the caller's token for it (the job's reaches only the caller).
        token: '${{ secrets.fleet-deploy-token || github.token }}',
        'persist-credentials': false,
      });
      // The caller's own checkout (which cleans the workspace) comes first, never after ours.
      const caller = list.findIndex((s) => /^actions\/checkout@/.test(s.uses ?? '') && !s.with?.repository);
      expect(caller).toBeLessThan(own);
    },
  );
});

describe('hooks marked `once` run before the rest of wave 1 (a matrix cannot order its own jobs)', () => {
  const deploy = Object.fromEntries(jobsOf('.github/workflows/deploy.yml'));
  const deploySteps = (spec: any) => (spec.steps ?? []).filter((s: any) => s.id === 'deploy');

  test('only wave-1-first deploys with once-hooks other than false', () => {
    const once = Object.entries(deploy).flatMap(([job, spec]) =>
      deploySteps(spec)
        .filter((s: any) => s.uses.endsWith('/actions/deploy') && String(s.with['once-hooks']) !== 'false')
        .map((s: any) => [job, s.with['once-hooks']]),
    );
    expect(once).toEqual([['wave-1-first', 'true']]);
  });

  test("wave-1-first deploys wave 1's first matrix entry, on its own, and uploads its report as a wave job", () => {
    const first = deploy['wave-1-first'];
    expect(first.needs).toEqual(['plan']);
    expect(first.strategy).toBeUndefined();
    expect(deploySteps(first)[0].with.targets).toBe(
      '${{ fromJSON(needs.plan.outputs.matrices)[0].include[0].targets }}',
    );
    expect(first.environment).toEqual(deploy['wave-1'].environment);
    const upload = first.steps.find((s: any) => /^actions\/upload-artifact@/.test(s.uses ?? ''));
    expect(upload.with.name).toBe(
      'fleet-deploy-report.${{ needs.plan.outputs.call-key }}.w1-first-a${{ github.run_attempt }}',
    );
  });

  test('the rest of wave 1 waits for wave-1-first, runs only when it succeeded, and never holds its entry', () => {
    const wave1 = deploy['wave-1'];
    expect(wave1.needs).toEqual(expect.arrayContaining(['plan', 'wave-1-first']));
    expect(wave1.if).toContain("needs.wave-1-first.result == 'success'");
    // A one-job wave 1 leaves nothing for the matrix: the plan's wave-1-rest is then empty.
    expect(wave1.if).toContain("needs.plan.outputs.wave-1-rest != ''");
    expect(wave1.strategy.matrix).toBe('${{ fromJSON(needs.plan.outputs.wave-1-rest) }}');
    expect(deploy.plan.outputs['wave-1-rest']).toBe('${{ steps.plan.outputs.wave-1-rest }}');
  });

  test('gate-1 and the summary need wave-1-first and read its report; approve-1 follows gate-1', () => {
    expect(deploy['gate-1'].needs).toEqual(expect.arrayContaining(['plan', 'wave-1-first', 'wave-1']));
    // wave 1 ran when either part of it did: a failed wave-1-first (wave-1 skipped) is still judged.
    expect(deploy['gate-1'].if).toContain("needs.wave-1-first.result != 'skipped'");
    expect(deploy['approve-1'].needs).toEqual(['gate-1']);
    expect(deploy.summary.needs).toEqual(expect.arrayContaining(['wave-1-first']));
    const patterns = (job: string) =>
      deploy[job].steps
        .filter((s: any) => /^actions\/download-artifact@/.test(s.uses ?? ''))
        .map((s: any) => s.with.pattern);
    for (const job of ['gate-1', 'summary'])
      expect(
        patterns(job).some((p: string) => 'w1-first'.startsWith(p.replace(/^.*\}\}\./, '').replace('*', ''))),
      ).toBe(true);
  });
});

describe("wave N's images are pre-pulled beside gate N-1, and the pre-pull never holds wave N", () => {
  const deploy = Object.fromEntries(jobsOf('.github/workflows/deploy.yml'));
  const waves = Object.keys(deploy)
    .map((j) => /^wave-(\d+)$/.exec(j)?.[1])
    .filter(Boolean)
    .map(Number);
  const later = waves.filter((n) => n >= 2);
  const needs = (spec: any): string[] => (spec.needs === undefined ? [] : [spec.needs].flat());

  test('a prepull job for every wave after the first, and none for wave 1', () => {
    expect(later.length).toBeGreaterThan(1);
    expect(
      Object.keys(deploy)
        .filter((j) => j.startsWith('prepull-'))
        .sort(),
    ).toEqual(later.map((n) => `prepull-${n}`).sort());
  });

  test.each(later)(
    'prepull-%i needs the wave before it and runs when it ran, the plan has the wave and pre-pull is on',
    (n) => {
      const job = deploy[`prepull-${n}`];
      expect(needs(job)).toEqual(expect.arrayContaining(['plan', `wave-${n - 1}`]));
      expect(needs(job)).not.toContain(`gate-${n - 1}`); // beside the gate, not after it
      expect(job.if).toContain(`needs.wave-${n - 1}.result != 'skipped'`);
      expect(job.if).toContain(`fromJSON(needs.plan.outputs.wave-count) >= ${n}`);
      expect(job.if).toContain("inputs.pre-pull != 'false'");
      expect(job.if).toContain('!inputs.dry-run');
      expect(job['continue-on-error']).toBe(true);
      expect(job.environment.name).toContain(`fromJSON(needs.plan.outputs.environments)[${n - 1}]`);
      const step = job.steps.find((s: any) => String(s.uses).endsWith('/actions/deploy'));
      expect(String(step.with['pre-pull-wave'])).toBe(String(n));
      expect(step.with.targets).toBeUndefined(); // it plans the selection, as the gate does
      expect(step.with.select).toBe('${{ inputs.select }}');
      expect(step.with.waves).toBe('${{ inputs.waves }}');
    },
  );

  test('no job needs a prepull job, so it never delays or blocks a wave', () => {
    const held = Object.entries(deploy).flatMap(([job, spec]) =>
      needs(spec)
        .filter((j) => j.startsWith('prepull-'))
        .map((j) => `${job} needs ${j}`),
    );
    expect(held).toEqual([]);
  });

  test('only prepull jobs set pre-pull-wave, and the deploy action declares it', () => {
    const set = Object.entries(deploy).filter(([, spec]) =>
      (spec.steps ?? []).some((s: any) => s.with?.['pre-pull-wave'] !== undefined),
    );
    expect(set.map(([j]) => j).sort()).toEqual(later.map((n) => `prepull-${n}`).sort());
    expect(typeof load('actions/deploy/action.yml').inputs['pre-pull-wave'].description).toBe('string');
  });
});

describe('report artifacts survive a re-run of failed jobs', () => {
  const uploads = reusable.flatMap((file) =>
    jobsOf(file).flatMap(([job, spec]) =>
      (spec.steps ?? [])
        .filter((s: any) => /^actions\/upload-artifact@/.test(s.uses ?? ''))
        .map((s: any) => ({ file, job, spec, name: s.with.name as string })),
    ),
  );
  const downloads = reusable.flatMap((file) =>
    jobsOf(file).flatMap(([, spec]) =>
      (spec.steps ?? [])
        .filter((s: any) => /^actions\/download-artifact@/.test(s.uses ?? ''))
        .map((s: any) => s.with.pattern as string),
    ),
  );
  const glob = (pattern: string) =>
    new RegExp(
      `^${pattern
        .replace(/\$\{\{[^}]*\}\}/g, '0')
        .replace(/[.]/g, '\\.')
        .replace(/\*/g, '.*')}$`,
    );

  test.each(uploads.map((u) => [`${u.file} ${u.job}: ${u.name}`, u] as const))(
    '%s: one name per job and attempt, found by the gates and the summary',
    (_, u) => {
      // A re-run uploads beside the first attempt's report instead of failing with 409 on its name.
      expect(u.name).toMatch(/-a\$\{\{ github\.run_attempt \}\}$/);
      if (u.spec.strategy) expect(u.name).toContain('${{ strategy.job-index }}');
      const concrete = u.name.replace(/\$\{\{[^}]*\}\}/g, '0');
      expect(downloads.filter((p) => glob(p).test(concrete)).length).toBeGreaterThan(0);
    },
  );

  test('names differ between waves, jobs and attempts', () => {
    const names = uploads.map((u) => u.name.replace(/\$\{\{[^}]*\}\}/g, 'X'));
    expect(new Set(names).size).toBe(names.length);
  });

  test("every gate judges only its own waves, and each target's newest result", () => {
    const gates = jobsOf('.github/workflows/deploy.yml').filter(([job]) => /^gate-\d+$/.test(job));
    expect(gates.length).toBeGreaterThanOrEqual(9);
    for (const [job, spec] of gates) {
      const gate = spec.steps.find((s: any) => s.uses === `${OWN_PATH}/actions/gate`);
      expect([job, gate.with.wave]).toEqual([job, job.slice('gate-'.length)]);
    }
  });
});

// ---------------------------------------------------------------------------------------------- callers

interface Call {
  where: string;
  job: string;
  uses: string;
  with: Record<string, unknown>;
  secrets: any;
  permissions: Record<string, string> | undefined;
}

/** The jobs (or a bare job body, as some docs show) that call one of our reusable workflows. */
function callsIn(where: string, doc: any): Call[] {
  if (!doc || typeof doc !== 'object') return [];
  const jobs: Array<[string, any]> =
    typeof doc.uses === 'string' ? [['(snippet)', doc]] : Object.entries(doc.jobs ?? {});
  return jobs
    .filter(([, spec]) => typeof spec?.uses === 'string' && spec.uses.startsWith(`${OWN}/.github/workflows/`))
    .map(([job, spec]) => ({
      where,
      job,
      uses: spec.uses,
      with: spec.with ?? {},
      secrets: spec.secrets ?? {},
      permissions: spec.permissions ?? doc.permissions,
    }));
}

const markdown = [
  'README.md',
  ...readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const snippets = markdown.flatMap((file) =>
  [...readFileSync(file, 'utf8').matchAll(/```ya?ml\n([\s\S]*?)```/g)].map((m, i) => ({
    where: `${file} (yaml block ${i + 1})`,
    text: m[1]!,
  })),
);
const calls = [
  ...workflows.filter((f) => f.startsWith('docs/examples')).flatMap((f) => callsIn(f, load(f))),
  ...snippets.flatMap((s) => parseAllDocuments(s.text).flatMap((d) => callsIn(s.where, d.toJS()))),
];
const calledFile = (c: Call) => `.github/workflows/${c.uses.replace(/@.*/, '').split('/').at(-1)}`;

test('the examples call both reusable workflows, and README and docs snippets are checked too', () => {
  expect(new Set(calls.map((c) => calledFile(c)))).toEqual(new Set(reusable));
  expect(calls.filter((c) => c.where.endsWith(')')).length).toBeGreaterThanOrEqual(3);
});

test.each(calls.map((c) => [`${c.where} ${c.job} → ${c.uses}`, c] as const))(
  '%s passes declared inputs and secrets, never secrets: inherit',
  (_, c) => {
    const call = load(calledFile(c)).on.workflow_call;
    expect(c.secrets).not.toBe('inherit');
    expect(Object.keys(c.with).filter((k) => !(k in call.inputs))).toEqual([]);
    expect(Object.keys(c.secrets).filter((k) => !(k in call.secrets))).toEqual([]);
    const required = (o: object) =>
      Object.entries(o)
        .filter(([, v]: [string, any]) => v.required)
        .map(([k]) => k);
    expect(required(call.inputs).filter((k) => !(k in c.with))).toEqual([]);
    expect(required(call.secrets).filter((k) => !(k in c.secrets))).toEqual([]);
    // The SSH key: by its own name, or as the environment's secret.
    expect(['ssh-private-key', 'SSH_PRIVATE_KEY'].filter((k) => k in c.secrets).length).toBeGreaterThan(0);
  },
);

const LEVEL: Record<string, number> = { none: 0, read: 1, write: 2 };
/** What the called jobs without a `permissions:` key (they inherit the caller's) need from the caller. */
const inheritedNeeds = (c: Call): Record<string, string> => ({
  contents: 'read',
  ...(c.with.deployments === true ? { deployments: 'write' } : {}),
});

test.each(calls.map((c) => [`${c.where} ${c.job} → ${c.uses}`, c] as const))(
  "%s: the caller's permissions cover every job of the called workflow",
  (_, c) => {
    // An explicit block: a repository's default token may be read-only (then a deploy fails at start-up)
    // or write-all (more than any job needs).
    expect(c.permissions).toEqual(expect.any(Object));
    const wf = load(calledFile(c));
    const short: string[] = [];
    for (const [job, spec] of Object.entries(wf.jobs) as Array<[string, any]>) {
      const wants: Record<string, string> = spec.permissions ?? wf.permissions ?? inheritedNeeds(c);
      for (const [scope, level] of Object.entries(wants))
        if (LEVEL[level]! > LEVEL[c.permissions![scope] ?? 'none']!)
          short.push(`${job} needs ${scope}: ${level}`);
    }
    expect(short).toEqual([]);
  },
);

test('the check above can fail: a contents: read caller cannot turn Deployments on', () => {
  const c = { with: { deployments: true }, permissions: { contents: 'read' } } as unknown as Call;
  const needs = inheritedNeeds(c);
  expect(Object.entries(needs).filter(([s, l]) => LEVEL[l]! > LEVEL[c.permissions![s] ?? 'none']!)).toEqual([
    ['deployments', 'write'],
  ]);
});

test('reusable workflows: typed, documented inputs; least privilege; third-party actions pinned by SHA', () => {
  for (const file of reusable) {
    const wf = load(file);
    for (const [name, spec] of Object.entries(wf.on.workflow_call.inputs) as Array<[string, any]>) {
      expect([name, typeof spec.type, typeof spec.description]).toEqual([name, 'string', 'string']);
    }
    // Every job states its permissions, but the two that touch the Deployments API (they inherit the
    // calling job's grant, so deployments: write is asked for only by callers that turn Deployments on).
    const inheriting = (Object.entries(wf.jobs) as Array<[string, any]>)
      .filter(([, spec]) => spec.permissions === undefined && wf.permissions === undefined)
      .map(([job]) => job);
    expect([file, inheriting]).toEqual([file, file.endsWith('deploy.yml') ? ['plan', 'summary'] : []]);
    for (const [job, spec] of Object.entries(wf.jobs) as Array<[string, any]>)
      expect([job, JSON.stringify(spec.permissions ?? {})]).not.toEqual([
        job,
        expect.stringContaining('write'),
      ]);
  }
  for (const file of workflows) {
    const text = readFileSync(file, 'utf8');
    for (const [, uses] of text.matchAll(/^[\s-]*uses:\s*([^\s#]+)/gm)) {
      if (uses!.startsWith(`${OWN}`) || uses!.startsWith('./')) continue;
      expect([file, uses]).toEqual([file, expect.stringMatching(/@[0-9a-f]{40}$/)]);
    }
    // The pin says which version it is.
    for (const [line] of text.matchAll(/uses:\s*[\w.-]+\/[\w./-]+@[0-9a-f]{40}.*/g))
      expect([file, line]).toEqual([file, expect.stringMatching(/# v\d+(\.\d+)*$/)]);
  }
  // Values reach shell through env:, never as ${{ }} inside a run script.
  const runs = workflows.flatMap((file) =>
    Object.values(load(file).jobs ?? {}).flatMap((j: any) =>
      (j.steps ?? []).filter((st: any) => st.run).map((st: any) => [file, st.run as string]),
    ),
  );
  expect(runs.length).toBeGreaterThan(0);
  for (const [file, run] of runs) expect([file, run.includes('${{')]).toEqual([file, false]);
});
