/**
 * The prose agrees with the interface and the examples: the lists of inputs and secrets in
 * docs/workflows.md name every one the workflow declares; the example pages name the permissions, secrets
 * and inputs their example uses; and every example keeps the setup guide's environment rules (the table in
 * docs/AUTO-DEPLOY-SETUP.md): it enters only environments the guide sets up, from branches they admit, and
 * passes the SSH key as the environment's secret.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

const load = (f: string) => parse(readFileSync(f, 'utf8'));
const read = (f: string) => readFileSync(f, 'utf8');
const DEPLOY = load('.github/workflows/deploy.yml').on.workflow_call;

/** The paragraph of a page that starts with `lead` (up to the next blank line). */
function paragraph(page: string, lead: string): string {
  const text = read(page);
  const at = text.indexOf(`\n${lead}`);
  if (at < 0) throw new Error(`${page} has no paragraph starting "${lead}"`);
  return text.slice(at + 1).split(/\n\s*\n/)[0]!;
}
/** The `code` words of a text. */
const codeWords = (text: string) => new Set([...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!));
/** `scope: level` pairs named in a text. */
const scopes = (text: string) =>
  new Set([...codeWords(text)].filter((w) => /^[a-z-]+: (read|write)$/.test(w)));

describe('docs/workflows.md names every input and secret of deploy.yml', () => {
  const singleServer = (spec: { description: string }) =>
    /^One server without a registry/.test(spec.description);

  test('the Inputs list: every input but the single-server ones it points to', () => {
    const named = codeWords(paragraph('docs/workflows.md', 'Inputs:').split('Secrets (declared')[0]!);
    const inputs = Object.entries(DEPLOY.inputs as Record<string, { description: string }>);
    expect(inputs.filter(([k, v]) => !singleServer(v) && !named.has(k)).map(([k]) => k)).toEqual([]);
    // …and no name that is not an input.
    expect([...named].filter((w) => /^[a-z][a-z-]+$/.test(w) && !(w in DEPLOY.inputs))).toEqual([]);
    const single = codeWords(read('docs/workflows.md').split('## One server without a registry')[1]!);
    expect(inputs.filter(([k, v]) => singleServer(v) && !single.has(k)).map(([k]) => k)).toEqual([]);
  });

  test('the Secrets list: every secret', () => {
    const named = codeWords(paragraph('docs/workflows.md', 'Secrets (declared'));
    expect(Object.keys(DEPLOY.secrets).filter((k) => !named.has(k))).toEqual([]);
  });

  test('the permissions paragraph names every scope a deploy job asks for', () => {
    const asked = new Set<string>();
    for (const spec of Object.values(load('.github/workflows/deploy.yml').jobs) as any[])
      for (const [scope, level] of Object.entries(spec.permissions ?? {})) asked.add(`${scope}: ${level}`);
    const named = scopes(paragraph('docs/workflows.md', 'A called workflow cannot have more'));
    expect([...asked].filter((s) => !named.has(s))).toEqual([]);
  });
});

/** An example page and its example: what the prose says must be what the YAML does. */
const PAGES = [
  ['docs/deploy-prd.md', 'docs/examples/deploy-prd.yml'],
  ['docs/components.md', 'docs/examples/deploy-components.yml'],
  ['docs/rollback-workflow.md', 'docs/examples/rollback.yml'],
] as const;

describe.each(PAGES)('%s describes %s', (page, example) => {
  const wf = load(example);
  const jobs = Object.entries(wf.jobs) as Array<[string, any]>;
  const call = jobs.find(([, j]) => typeof j.uses === 'string')![1];
  const text = read(page);

  test('every `input: value` it names is what the example passes', () => {
    const said = [...text.matchAll(/`([a-z][a-z-]*): ([^`]+)`/g)].filter(
      ([, k]) => k! in DEPLOY.inputs && !['contents', 'packages', 'deployments'].includes(k!),
    );
    for (const [, k, v] of said) {
      expect([k, k! in call.with]).toEqual([k, true]);
      const given = String(call.with[k!]).replace(/\$\{\{[^}]*\}\}/g, '<x>');
      const shown = v!.replace(/<[^>]*>/g, '<x>');
      expect([k, given]).toEqual([k, expect.stringContaining(shown.replace(/<x>.*$/, ''))]);
    }
  });

  test('its Permissions paragraph names every scope the example grants', () => {
    // The deploy page must have one (it had a sentence that left packages: read out); others may.
    if (!text.includes('\nPermissions:') && page !== 'docs/deploy-prd.md') return;
    const named = scopes(paragraph(page, 'Permissions:'));
    const granted = new Set(
      jobs.flatMap(([, j]) => Object.entries(j.permissions ?? {}).map(([s, l]) => `${s}: ${l}`)),
    );
    expect([...granted].filter((s) => !named.has(s))).toEqual([]);
    expect([...named].filter((s) => !granted.has(s))).toEqual([]);
  });

  test('its Secrets paragraph names every secret the example reads (but the run token)', () => {
    if (!text.includes('\nSecrets:') && page !== 'docs/deploy-prd.md') return;
    const named = codeWords(paragraph(page, 'Secrets:'));
    const read = [...JSON.stringify(wf).matchAll(/secrets\.([A-Z_]+)/g)].map((m) => m[1]!);
    expect([...new Set(read)].filter((s) => s !== 'GITHUB_TOKEN' && !named.has(s))).toEqual([]);
  });
});

// ------------------------------------------------------------------------------- environment rules

interface Rule {
  branches: string[];
  reviewers: boolean;
}
/** The guide's table: environment → the branches it admits and whether it has reviewers. */
function guideRules(): Map<string, Rule> {
  const text = read('docs/AUTO-DEPLOY-SETUP.md');
  const table = text.slice(text.search(/^\| environment +\| deployment branches +\|/m)).split('\n\n')[0]!;
  const rows = table
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .slice(2);
  return new Map(
    rows.map((row) => {
      const [env, branches, reviewers] = row
        .split('|')
        .slice(1)
        .map((c) => c.trim());
      return [
        env!.replace(/`/g, ''),
        {
          branches: branches === 'the default branch' ? ['(default)'] : [...codeWords(branches!)],
          reviewers: reviewers === 'yes',
        },
      ];
    }),
  );
}

/** The branches a workflow's runs can come from: push branches; a schedule on the default branch; a
 * dispatch from any branch unless a job it needs refuses every ref but one. */
function runBranches(wf: any, job: any): string[] {
  const on = wf.on ?? {};
  const out: string[] = [];
  if (on.push) out.push(...(on.push.branches ?? ['(any)']));
  if (on.schedule) out.push('(default)');
  if ('workflow_dispatch' in on) {
    const guards = [job.needs ?? []]
      .flat()
      .flatMap((n: string) => wf.jobs[n]?.steps ?? [])
      .map((s: any) =>
        /"\$REF" != "\$DEFAULT_REF"/.test(s.run ?? '')
          ? '(default)'
          : /"\$REF" != refs\/heads\/([\w.-]+)/.exec(s.run ?? '')?.[1],
      )
      .filter((g: string | undefined): g is string => Boolean(g));
    out.push(...(guards.length ? guards : ['(any)']));
  }
  return out;
}

/** The environments a job enters: its own, or those of the reusable workflow it calls. */
function environments(wf: any, job: any): string[] {
  const own = typeof job.environment === 'string' ? job.environment : job.environment?.name;
  if (own) return [own];
  if (typeof job.uses !== 'string') return [];
  const dispatch = wf.on?.workflow_dispatch?.inputs ?? {};
  const values = (v: unknown): string[] => {
    const m = /^\$\{\{ inputs\.([\w-]+) \}\}$/.exec(String(v));
    return m
      ? (dispatch[m[1]!]?.options ?? [])
      : String(v)
          .split(',')
          .map((s) => s.trim());
  };
  const names = [...values(job.with?.environment ?? 'production')];
  if (job.with?.['wave-environments']) names.push(...values(job.with['wave-environments']));
  return [...new Set(names)];
}

const EXAMPLES = ['deploy-prd.yml', 'deploy-components.yml', 'rollback.yml', 'fleet-status.yml'];

describe.each(EXAMPLES)('docs/examples/%s keeps the setup guide’s environment rules', (file) => {
  const wf = load(`docs/examples/${file}`);
  const rules = guideRules();
  const bound = (Object.entries(wf.jobs) as Array<[string, any]>)
    .map(([name, job]) => ({ name, job, envs: environments(wf, job) }))
    .filter((j) => j.envs.length > 0);

  test('it enters only environments the guide sets up, from branches they admit', () => {
    expect(bound.length).toBeGreaterThan(0);
    for (const { name, job, envs } of bound)
      for (const env of envs) {
        const rule = rules.get(env);
        expect([name, env, rule !== undefined]).toEqual([name, env, true]);
        const from = runBranches(wf, job);
        expect([name, env, from.filter((b) => !rule!.branches.includes(b))]).toEqual([name, env, []]);
      }
  });

  test('a scheduled job never waits for a reviewer', () => {
    if (!wf.on?.schedule) return;
    for (const { name, envs } of bound)
      for (const env of envs) expect([name, env, rules.get(env)?.reviewers]).toEqual([name, env, false]);
  });

  test('the SSH key is passed as the environment’s secret, by its own name', () => {
    for (const { name, job } of bound.filter((j) => typeof j.job.uses === 'string')) {
      expect([
        name,
        Object.keys(job.secrets ?? {}).filter((k) => ['ssh-private-key', 'known-hosts'].includes(k)),
      ]).toEqual([name, []]);
      expect([name, job.secrets?.SSH_PRIVATE_KEY]).toEqual([name, '${{ secrets.SSH_PRIVATE_KEY }}']);
    }
  });
});

test('the rules can fail: a schedule bound to production is refused', () => {
  const wf = { on: { schedule: [{ cron: '0 6 * * *' }] }, jobs: { s: { environment: 'production' } } };
  const rule = guideRules().get('production')!;
  expect(runBranches(wf, wf.jobs.s).filter((b) => !rule.branches.includes(b))).toEqual(['(default)']);
});
