/**
 * .github/workflows/self-test.yml, the caller's path on a real runner. It cannot run here, so: its calls
 * of the reusable workflow are held to the contract (declared inputs and secrets, permissions that cover
 * every called job, two calls that differ, so their report artifacts' keys differ), and its sandbox job is
 * run here step by step as the runner would: its shell steps with bash, its `uses: ./…` steps as the
 * bundled actions they name, with the inputs it gives them.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { runBundledAction } from './helpers/run';

const load = (f: string) => parse(readFileSync(f, 'utf8'));
const FILE = '.github/workflows/self-test.yml';
const wf = load(FILE);
const jobs = Object.entries(wf.jobs) as Array<[string, any]>;
const calls = jobs.filter(([, j]) => typeof j.uses === 'string');

describe('the calls of the reusable workflow', () => {
  test('deploy.yml from this commit (uses: ./…), twice in one run, with inputs that differ', () => {
    expect(calls.map(([, j]) => j.uses)).toEqual([
      './.github/workflows/deploy.yml',
      './.github/workflows/deploy.yml',
    ]);
    const [a, b] = calls.map(([, j]) => JSON.stringify(j.with));
    expect(a).not.toBe(b);
    for (const [, j] of calls) expect(j.with['dry-run']).toBe(true);
  });

  test.each(calls)(
    '%s passes declared inputs and secrets; its permissions cover every called job',
    (_, j) => {
      const called = load(j.uses.slice(2));
      const { inputs, secrets } = called.on.workflow_call;
      expect(Object.keys(j.with).filter((k) => !(k in inputs))).toEqual([]);
      expect(Object.keys(j.secrets ?? {}).filter((k) => !(k in secrets))).toEqual([]);
      const LEVEL: Record<string, number> = { none: 0, read: 1, write: 2 };
      for (const [job, spec] of Object.entries(called.jobs) as Array<[string, any]>)
        for (const [scope, level] of Object.entries(spec.permissions ?? { contents: 'read' }))
          expect([job, scope, LEVEL[level as string]! <= LEVEL[j.permissions[scope] ?? 'none']!]).toEqual([
            job,
            scope,
            true,
          ]);
    },
  );
});

describe('the sandbox job, run here as the runner runs it', () => {
  const [, job] = jobs.find(([name]) => name === 'actions-on-a-sandbox')!;
  const steps: any[] = job.steps;
  const actionOf = (uses: string) => load(join(uses, 'action.yml'));

  test('its actions are this commit’s, given only declared inputs', () => {
    const own = steps.filter((s) => typeof s.uses === 'string' && s.uses.startsWith('./'));
    expect(own.map((s) => s.uses)).toEqual(['./', './actions/rollback']);
    for (const s of own) {
      const declared = Object.keys(actionOf(s.uses).inputs);
      expect([s.uses, Object.keys(s.with).filter((k) => !declared.includes(k))]).toEqual([s.uses, []]);
    }
  });

  test('sandbox up, deploy in waves, roll back, sandbox down', () => {
    const dir = mkdtempSync(join(tmpdir(), 'self-test-'));
    const bash = (script: string, env: Record<string, string> = {}) =>
      spawnSync('bash', ['--norc', '--noprofile', '-e', '-c', script], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 60_000,
        env: { PATH: process.env.PATH ?? '', ...env },
      });
    symlinkSync(resolve('dist'), join(dir, 'dist'));
    const down = steps.find((s) => /sandbox down/.test(s.run ?? ''));
    try {
      const up = steps.find((s) => s.id === 'sandbox');
      const outputFile = join(dir, 'github-output');
      const r = bash(up.run, { GITHUB_OUTPUT: outputFile });
      expect([r.status, r.stderr]).toEqual([0, '']);
      const key = /key<<FLEET_SANDBOX_KEY_END\n([\s\S]*?)\nFLEET_SANDBOX_KEY_END/.exec(
        readFileSync(outputFile, 'utf8'),
      )![1]!;
      expect(key).toContain('PRIVATE KEY');
      /** A step's inputs as the runner gives them: the key from the output; paths from the workspace. */
      const inputsOf = (s: any): Record<string, string> =>
        Object.fromEntries(
          Object.entries(s.with as Record<string, unknown>).map(([k, v]) => [
            k,
            String(v)
              .replace('${{ steps.sandbox.outputs.key }}', key)
              .replace(/^\.fleet-sandbox\//, `${dir}/.fleet-sandbox/`),
          ]),
        );
      const deployStep = steps.find((s) => s.id === 'deploy');
      const deployed = runBundledAction(
        join('dist', actionOf(deployStep.uses).runs.main.replace(/^(\.\.\/)*dist\//, '')),
        inputsOf(deployStep),
        {},
        120_000,
      );
      expect([deployed.code, deployed.outputs.outcome]).toEqual([0, 'deployed']);
      expect(deployed.outputs.deployed).toBe('4');
      const rollbackStep = steps.find((s) => s.id === 'rollback');
      const rolled = runBundledAction(
        join('dist', actionOf(rollbackStep.uses).runs.main.replace(/^(\.\.\/)*dist\//, '')),
        inputsOf(rollbackStep),
        {},
        120_000,
      );
      expect(rolled.code).toBe(0);
      expect(JSON.parse(rolled.outputs.report!).targets.map((t: any) => t.next.version)).toEqual(
        Array(4).fill(expect.not.stringMatching(/^v2$/)),
      );
    } finally {
      bash(down.run);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
