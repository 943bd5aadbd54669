/** Rollback to the previous release or a named one, and the history, over real sshd (SANDBOX runtime as docker). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deploy } from '../helpers/deploy';
import { haveSshd } from '../../src/testing';
import { runBundledAction } from '../helpers/run';
import { fleetCli, historyOf, lockExists, startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;
if (!haveSshd)
  console.warn('skipped: integration tests need /usr/sbin/sshd (npm run setup as root installs it)');

describeSshd('rollback and history', () => {
  let fleet: TestFleet;
  let keyFile: string;
  const cli = (...args: string[]) => fleetCli(fleet, keyFile)(...args);
  beforeAll(async () => {
    fleet = await startFleet({ servers: 1, tenantsPerServer: 1, startWith: 'v1' });
    keyFile = join(fleet.root, 'key');
    writeFileSync(keyFile, fleet.key.privateKey, { mode: 0o600 });
    for (const v of ['v2', 'v3'])
      expect((await deploy(fleet.registry, fleet.key, v)).targets[0]!.outcome).toBe('deployed');
  }, 60_000);
  afterAll(async () => fleet?.stop());
  const t = () => fleet.tenants[0]!;

  test('to the previous release: v3 → v2, recorded as a rollback', async () => {
    const report = await deploy(fleet.registry, fleet.key, 'ignored', { options: { rollback: {} } });
    expect(report.targets[0]).toMatchObject({
      outcome: 'deployed',
      previous: { version: 'v3' },
      next: { version: 'v2' },
    });
    expect(await fleet.health(t())).toBe('200 {"status":"ok","version":"v2"}');
    expect(historyOf(t()).at(-1)).toMatchObject({
      outcome: 'deployed',
      from: 'v3',
      to: 'v2',
      rollback: true,
    });
  }, 60_000);

  test('to a named version in the history (the CLI)', () => {
    const r = cli('rollback', '--to', 'v1');
    expect(r.stderr).toContain('Rolling 1 target back to v1');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/srv-1\/t1-1 +1 +deployed \(rollback\) +v2 → v1/);
  });

  test('a version not in the history is refused, listing the known ones; nothing changes', async () => {
    const r = cli('rollback', '--to', 'v9');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(
      'version v9 is not in the release history of srv-1/t1-1; known versions: v1, v2, v3',
    );
    expect(fleet.env(t())).toContain(':v1\n');
    expect(lockExists(t())).toBe(false);
    expect(historyOf(t())).toHaveLength(4); // refused before anything: no entry is written
  });

  test('history: newest first, with actor, outcome and from → to', () => {
    const r = cli('history', '--limit', '3');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^TARGET +TIME +ACTOR +OUTCOME +FROM → TO +ERROR$/);
    expect(lines.slice(1).map((l) => l.replace(/\s+/g, ' ').replace(/ \d{4}-\S+ /, ' T '))).toEqual([
      'srv-1/t1-1 T op deployed (rollback) v2 → v1',
      'srv-1/t1-1 T jest deployed (rollback) v3 → v2',
      'srv-1/t1-1 T jest deployed v2 → v3',
    ]);
    const json = JSON.parse(cli('history', '--format', 'json').stdout);
    expect(json['srv-1/t1-1']).toHaveLength(4);
  });

  test('the rollback action as the runner runs it', () => {
    const r = runBundledAction(
      'dist/actions/rollback.js',
      { registry: join(fleet.root, 'registry.json'), to: 'v3', 'ssh-key': fleet.key.privateKey },
      {},
      60_000,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Rolling back to v3 to 1 target(s)');
    expect(r.outputs).toMatchObject({ outcome: 'deployed', deployed: '1' });
    const refused = runBundledAction(
      'dist/actions/rollback.js',
      { registry: join(fleet.root, 'registry.json'), to: 'v0', 'ssh-key': fleet.key.privateKey },
      {},
      60_000,
    );
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain(
      'version v0 is not in the release history of srv-1/t1-1; known versions: v3, v1, v2',
    );
  }, 60_000);
});
