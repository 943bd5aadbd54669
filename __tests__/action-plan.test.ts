import { jest } from '@jest/globals';
import * as core from '../__fixtures__/core';
import { runBundledAction } from './helpers/run';

jest.unstable_mockModule('@actions/core', () => core);
const { runAction } = await import('../src/actions/main');

describe('plan action (with a double of @actions/core)', () => {
  beforeEach(() => core.reset());

  test('sets matrices, counts and targets', async () => {
    core.reset({
      registry: 'servers/example.json',
      waves: '1,5%,25%,100%',
      select: 'region=eu',
      'max-per-job': '2',
    });
    await runAction('plan');
    expect(core.setFailed).not.toHaveBeenCalled();
    expect(core.outputs['wave-count']).toBe('4');
    expect(core.outputs['target-count']).toBe('6');
    const m = JSON.parse(core.outputs.matrices!);
    expect(m.map((w: any) => w.include.reduce((a: number, j: any) => a + j.count, 0))).toEqual([1, 1, 1, 3]);
    expect(JSON.parse(core.outputs.targets!)[0]).toBe('eu-1/internal-qa');
    // Wave 1 has one job here: nothing is left for its matrix after the first job.
    expect(core.outputs['wave-1-rest']).toBe('');
  });

  test('wave-1-rest: wave 1 without its first job, which the workflow runs alone for the once hooks', async () => {
    core.reset({ registry: 'servers/example.json', waves: 'rings' });
    await runAction('plan');
    expect(core.setFailed).not.toHaveBeenCalled();
    const [first] = JSON.parse(core.outputs.matrices!);
    expect(first.include.length).toBeGreaterThan(1);
    expect(JSON.parse(core.outputs['wave-1-rest']!)).toEqual({ include: first.include.slice(1) });
  });

  test('one environment per wave, the last name for the later waves', async () => {
    core.reset({
      registry: 'servers/example.json',
      waves: '1,5%,25%,100%',
      'wave-environments': 'canary, production',
    });
    await runAction('plan');
    expect(core.setFailed).not.toHaveBeenCalled();
    expect(JSON.parse(core.outputs.environments!)).toEqual([
      'canary',
      'production',
      'production',
      'production',
    ]);
  });

  test('a bad input names the input and fails the step', async () => {
    core.reset({ 'max-per-job': 'many' });
    await runAction('plan');
    expect(core.error).toHaveBeenCalledWith(
      expect.stringContaining('input "max-per-job"'),
      expect.anything(),
    );
    expect(core.error.mock.calls[0]![0]).toContain('"many"');
    expect(core.setFailed).toHaveBeenCalledTimes(1);
  });

  test('a missing registry says to check out the repository', async () => {
    core.reset({ registry: 'nope/production.json' });
    await runAction('plan');
    expect(core.error.mock.calls[0]![0]).toContain('cannot read "nope/production.json": ENOENT');
  });
});

describe('plan action as the runner runs it (dist/actions/plan.js)', () => {
  test('writes its outputs to GITHUB_OUTPUT', () => {
    const r = runBundledAction('dist/actions/plan.js', {
      registry: 'servers/example.json',
      waves: 'rings',
    });
    expect(r.code).toBe(0);
    expect(r.outputs['wave-count']).toBe('3');
    expect(r.outputs['target-count']).toBe('11');
    expect(JSON.parse(r.outputs.matrices!)).toHaveLength(3);
    expect(JSON.parse(r.outputs.plan!).plan[0].targets[0]).toMatchObject({
      id: 'eu-1/internal-qa',
      ring: 'sandbox',
    });
    expect(r.stdout).toContain(
      'Planned 11 targets in 3 waves: 2 (2 jobs, production) → 3 (3 jobs, production) → 6 (4 jobs, production)',
    );
    expect(r.stdout).toContain(
      "at most 1 job of a wave on one server (a server's tenants in a wave share one job",
    );
    expect(JSON.parse(r.outputs.environments!)).toEqual(['production', 'production', 'production']);
  });

  test('registry errors become annotations on the file line and fail the step', () => {
    const r = runBundledAction('dist/actions/plan.js', { registry: '__tests__/fixtures/bad-registry.json' });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      '::error title=fleet-deploy%3A invalid registry,file=__tests__/fixtures/bad-registry.json,line=7,col=15::servers[0].port: 0 must be a port number from 1 to 65535',
    );
    expect(r.stdout).toContain('line=11,col=17::servers[0].tenants[0].id: "Acme" is not a valid tenant id');
    expect(r.stdout).toContain('::error::configuration error: 2 problems, see the annotations above');
    expect(r.outputs).toEqual({});
  });
});
