/**
 * The status action's bundle (dist/actions/status.js) run as the runner runs it, against real sshd
 * (tenants on the SANDBOX runtime, the docker double): the job summary's table, the outputs, and
 * fail-on-drift.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deploy } from '../helpers/deploy';
import { runBundledAction } from '../helpers/run';
import { haveSshd } from '../../src/testing';
import { startFleet, type TestFleet, type TestTenant } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;

describeSshd('actions/status', () => {
  let fleet: TestFleet;
  let inputs: Record<string, string>;
  beforeAll(async () => {
    fleet = await startFleet({ servers: 2, tenantsPerServer: 2, startWith: 'v1' });
    inputs = { registry: join(fleet.root, 'registry.json'), 'ssh-key': fleet.key.privateKey };
    const report = await deploy(fleet.registry, fleet.key, 'v2');
    expect(report.totals.deployed).toBe(4);
    // someone edited one tenant's .env by hand
    const t = fleet.tenants[3] as TestTenant;
    writeFileSync(join(t.dir, '.env'), fleet.env(t).replace(':v2', ':v9'));
  }, 90_000);
  afterAll(async () => fleet?.stop());

  test('writes the table into the job summary and sets outputs; drift alone does not fail the step', () => {
    const r = runBundledAction('dist/actions/status.js', inputs, {}, 60_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.outputs).toMatchObject({ drifted: '1', unreachable: '0' });
    const statuses = JSON.parse(r.outputs.statuses!);
    expect(statuses.map((s: any) => [s.id, s.version]).sort()).toEqual([
      ['srv-1/t1-1', 'v2'],
      ['srv-1/t1-2', 'v2'],
      ['srv-2/t2-1', 'v2'],
      ['srv-2/t2-2', 'v9'],
    ]);
    expect(r.summary).toContain('## ⚠️ Fleet status: 4 targets, 1 drifted, 0 unreachable');
    expect(r.summary).toMatch(
      /\| srv-2\/t2-2 \| `running` \| `v9` \| .* `\.env sets APP_IMAGE=registry\.test\/acme\/app:v9, the last release set registry\.test\/acme\/app:v2/,
    );
    // The drift list for an issue: what the server said as code.
    expect(r.outputs['drift-list']).toMatch(
      /^- `srv-2\/t2-2`: `\.env sets APP_IMAGE=registry\.test\/acme\/app:v9, /,
    );
    expect(r.summary).toContain('<details><summary>3 targets as deployed, running, no lock</summary>');
    expect(r.stdout).toContain('srv-1/t1-1: running · v2');
    const logged = r.stdout
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n');
    for (const line of fleet.key.privateKey.split('\n').filter((l) => l.length > 20))
      expect(logged).not.toContain(line);
  }, 60_000);

  test('fail-on-drift fails the step naming the drifted target; a missing key names the input', () => {
    const r = runBundledAction('dist/actions/status.js', { ...inputs, 'fail-on-drift': 'true' }, {}, 60_000);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('::error::1 of 4 target(s) drifted: srv-2/t2-2 (.env sets APP_IMAGE=');
    const none = runBundledAction('dist/actions/status.js', { ...inputs, 'ssh-key': '' });
    expect(none.code).toBe(1);
    expect(none.stdout).toContain('input "ssh-key": is required');
    const bad = runBundledAction('dist/actions/status.js', { ...inputs, 'fail-on-drift': 'maybe' });
    expect(bad.stdout).toContain('input "fail-on-drift": "maybe" is neither true nor false');
  }, 60_000);
});
