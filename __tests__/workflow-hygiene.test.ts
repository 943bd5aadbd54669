/**
 * What zizmor (the GitHub Actions security linter; not installable here) checks, held as contract tests
 * over every workflow of the repository and every example: no caller-controlled `${{ }}` inside a `run:`
 * script (template injection), least privilege per job (explicit permissions, writes only where listed
 * with their reason), `persist-credentials: false` on every checkout, no `pull_request_target`. And the
 * Dependabot configuration: majors in their own group, a cooldown, docs/examples scanned; check-dist
 * installs with `npm ci`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const files = [
  ...readdirSync('.github/workflows').map((f) => join('.github/workflows', f)),
  ...readdirSync('docs/examples').map((f) => join('docs/examples', f)),
].filter((f) => /\.ya?ml$/.test(f));
const load = (f: string) => parse(readFileSync(f, 'utf8'));
const jobs = files.flatMap((file) =>
  (Object.entries(load(file).jobs ?? {}) as Array<[string, any]>).map(([job, spec]) => ({
    file,
    job,
    spec,
    wf: load(file),
  })),
);

/** Every write a job may hold, and why; anything else is more than it needs. */
const WRITES: Record<string, string[]> = {
  '.github/workflows/release.yml tag': ['contents'], // push the tags, create the Release
  '.github/workflows/release.yml publish': ['id-token'], // npm provenance
  'docs/examples/deploy-prd.yml build': ['packages'], // push the images to GHCR
  'docs/examples/deploy-prd.yml deploy': ['deployments'], // deployments: true
  'docs/examples/fleet-status.yml status': ['issues'], // open the drift issue
};

describe.each(files)('%s', (file) => {
  const wf = load(file);
  const text = readFileSync(file, 'utf8');

  test('no pull_request_target trigger (it runs with write access on code from forks)', () => {
    const on = typeof wf.on === 'string' ? [wf.on] : Array.isArray(wf.on) ? wf.on : Object.keys(wf.on ?? {});
    expect(on).not.toContain('pull_request_target');
    expect(text).not.toMatch(/pull_request_target/);
  });

  test('permissions: explicit on the workflow (or, in deploy.yml, on every job but two), never *-all', () => {
    if (file === '.github/workflows/deploy.yml') {
      // plan and summary inherit the calling job's grant (deployments: write only when the caller turns
      // Deployments on); the callers' permissions are held by workflow-contracts.test.ts.
      const bare = Object.entries(wf.jobs).filter(([, j]: [string, any]) => !j.permissions);
      expect(bare.map(([job]) => job)).toEqual(['plan', 'summary']);
    } else expect(wf.permissions).toEqual(expect.any(Object));
    expect(text).not.toMatch(/permissions:\s*(write-all|read-all)/);
  });

  test('every checkout keeps no credentials in .git/config', () => {
    for (const { job, spec } of jobs.filter((j) => j.file === file))
      for (const step of spec.steps ?? [])
        if (/^actions\/checkout@/.test(step.uses ?? ''))
          expect([job, step.with?.['persist-credentials']]).toEqual([job, false]);
  });

  test('no ${{ }} inside a run: script (values come through env:)', () => {
    for (const { job, spec } of jobs.filter((j) => j.file === file))
      for (const step of spec.steps ?? [])
        if (typeof step.run === 'string') expect([job, step.run.includes('${{')]).toEqual([job, false]);
  });
});

test.each(jobs.map((j) => [`${j.file} ${j.job}`, j] as const))(
  '%s: writes only what it is listed for',
  (name, { spec, wf }) => {
    const granted: Record<string, string> = spec.permissions ?? wf.permissions ?? {};
    const writes = Object.entries(granted)
      .filter(([, level]) => level === 'write')
      .map(([scope]) => scope)
      .sort();
    expect([name, writes]).toEqual([name, (WRITES[name] ?? []).sort()]);
  },
);

test('the write list above names real jobs (so the check can fail)', () => {
  for (const name of Object.keys(WRITES)) expect(jobs.map((j) => `${j.file} ${j.job}`)).toContain(name);
});

describe('Dependabot', () => {
  const config = load('.github/dependabot.yml');

  const updates: Array<[string, any]> = (config.updates as any[]).map((u) => [u['package-ecosystem'], u]);
  test.each(updates)('%s: majors in a group of their own, a cooldown', (_: string, u: any) => {
    const groups = Object.values(u.groups ?? {}) as Array<{ 'update-types'?: string[] }>;
    const majors = groups.filter((g) => g['update-types']?.includes('major'));
    expect(majors).toHaveLength(1);
    expect(majors[0]!['update-types']).toEqual(['major']);
    expect(groups.some((g) => !g['update-types']?.includes('major'))).toBe(true);
    expect(u.cooldown?.['default-days']).toBeGreaterThanOrEqual(3);
    expect(u.cooldown?.['semver-major-days']).toBeGreaterThanOrEqual(u.cooldown['default-days']);
  });

  test('the actions pinned in docs/examples are scanned too', () => {
    const actions = config.updates.find((u: any) => u['package-ecosystem'] === 'github-actions');
    expect(actions.directories).toEqual(expect.arrayContaining(['/', '/docs/examples']));
  });
});

test('check-dist installs exactly the lock file (npm ci), with scripts off', () => {
  const runs = load('.github/workflows/check-dist.yml')
    .jobs['check-dist'].steps.map((s: any) => s.run ?? '')
    .join('\n');
  expect(runs).toMatch(/^npm ci --ignore-scripts\b/m);
  expect(runs).not.toMatch(/npm install/);
});
