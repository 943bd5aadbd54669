/**
 * The contracts between our workflows, our actions and the consumer examples: every input a workflow
 * passes to one of our actions is declared in that action.yml, every input and secret an example passes
 * to our reusable workflows is declared there, required ones are given, and every action runs on node24.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const OWN = 'fleet-deploy/fleet-deploy';
const load = (f: string) => parse(readFileSync(f, 'utf8'));
const workflows = [
  ...readdirSync('.github/workflows').map((f) => join('.github/workflows', f)),
  ...readdirSync('docs/examples').map((f) => join('docs/examples', f)),
].filter((f) => /\.ya?ml$/.test(f));

function actionFile(uses: string): string | undefined {
  const m = new RegExp(`^${OWN}(/actions/[\\w-]+)?@`).exec(uses);
  if (!m) return undefined;
  return m[1] ? `${m[1].slice(1)}/action.yml` : 'action.yml';
}

const steps = workflows.flatMap((file) =>
  Object.entries(load(file).jobs ?? {}).flatMap(([job, spec]: [string, any]) =>
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
      'action.yml',
    ]),
  );
});

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

const calls = workflows.flatMap((file) =>
  Object.entries(load(file).jobs ?? {})
    .filter(
      ([, spec]: [string, any]) =>
        typeof spec.uses === 'string' && spec.uses.startsWith(`${OWN}/.github/workflows/`),
    )
    .map(([job, spec]: [string, any]) => ({
      file,
      job,
      uses: spec.uses as string,
      with: spec.with ?? {},
      secrets: spec.secrets ?? {},
    })),
);

test('the examples call both reusable workflows', () => {
  expect(new Set(calls.map((c) => c.uses.replace(/@.*/, '').split('/').at(-1)))).toEqual(
    new Set(['deploy.yml', 'rollback.yml']),
  );
});

test.each(calls.map((c) => [`${c.file} ${c.job} → ${c.uses}`, c] as const))(
  '%s passes declared inputs and secrets, never secrets: inherit',
  (_, c) => {
    const wf = load(`.github/workflows/${c.uses.replace(/@.*/, '').split('/').at(-1)}`);
    const call = wf.on.workflow_call;
    expect(c.secrets).not.toBe('inherit');
    expect(Object.keys(c.with).filter((k) => !(k in call.inputs))).toEqual([]);
    expect(Object.keys(c.secrets).filter((k) => !(k in call.secrets))).toEqual([]);
    const requiredInputs = Object.entries(call.inputs)
      .filter(([, v]: [string, any]) => v.required)
      .map(([k]) => k);
    const requiredSecrets = Object.entries(call.secrets)
      .filter(([, v]: [string, any]) => v.required)
      .map(([k]) => k);
    expect(requiredInputs.filter((k) => !(k in c.with))).toEqual([]);
    expect(requiredSecrets.filter((k) => !(k in c.secrets))).toEqual([]);
  },
);

test('reusable workflows: typed, documented inputs; least privilege; third-party actions pinned by SHA', () => {
  for (const file of ['.github/workflows/deploy.yml', '.github/workflows/rollback.yml']) {
    const wf = load(file);
    for (const [name, spec] of Object.entries(wf.on.workflow_call.inputs) as Array<[string, any]>) {
      expect([name, typeof spec.type, typeof spec.description]).toEqual([name, 'string', 'string']);
    }
    expect(wf.permissions).toEqual({ contents: 'read' });
    expect(wf.concurrency.group).toBe('fleet-deploy-${{ inputs.environment }}');
  }
  for (const file of workflows) {
    const text = readFileSync(file, 'utf8');
    for (const [, uses] of text.matchAll(/uses:\s*([^\s#]+)/g)) {
      if (uses!.startsWith(`${OWN}`) || uses!.startsWith('./')) continue;
      expect([file, uses]).toEqual([file, expect.stringMatching(/@[0-9a-f]{40}$/)]);
    }
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
