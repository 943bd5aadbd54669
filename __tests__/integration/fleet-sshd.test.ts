/**
 * A fleet of 5 real sshd servers × 2 tenants (SANDBOX runtime as the docker double): waves, the failure
 * budget, one SSH handshake per server, and the CLI run as a user runs it.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBundledCli } from '../helpers/run';
import { deploy } from '../helpers/deploy';
import { handOver, haveSshd } from '../../src/testing';
import { lockExists, startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;
if (!haveSshd)
  console.warn('skipped: integration tests need /usr/sbin/sshd (npm run setup as root installs it)');

describeSshd('a fleet of 10 targets on 5 servers', () => {
  let fleet: TestFleet;
  beforeAll(async () => {
    fleet = await startFleet({ servers: 5, tenantsPerServer: 2, startWith: 'v1' });
    // One tenant's v2 is bad (the sandbox breaks the tags listed in SANDBOX_BREAK).
    const bad = fleet.tenants.find((t) => t.id === 't2-1')!;
    writeFileSync(join(bad.dir, 'SANDBOX_BREAK'), 'v2\n');
    handOver(join(bad.dir, 'SANDBOX_BREAK'));
  }, 60_000);
  afterAll(async () => fleet?.stop());

  test('budget 0: the wave with the bad tenant stops the rollout, later waves are skipped', async () => {
    const report = await deploy(fleet.registry, fleet.key, 'v2', { waves: '1,30%,100%' });
    const byWave = (w: number) =>
      report.targets.filter((t) => t.wave === w).map((t) => `${t.id}:${t.outcome}`);
    expect(byWave(1)).toEqual(['srv-1/t1-1:deployed']);
    expect(byWave(2)).toEqual(['srv-2/t2-1:rolled-back', 'srv-3/t3-1:deployed']);
    expect(byWave(3)).toHaveLength(7);
    expect(report.targets.filter((t) => t.wave === 3).every((t) => t.outcome === 'skipped')).toBe(true);
    expect(report.stopped).toBe(
      'wave 2 exceeded the failure budget: 1 of 3 targets failed or rolled back (33.3% > 0%)',
    );
    expect(report.targets.find((t) => t.wave === 3)!.error).toBe(report.stopped);
    expect(report.totals).toMatchObject({ targets: 10, deployed: 2, 'rolled-back': 1, skipped: 7 });
    expect(report.handshakes).toBe(3); // only the servers of waves 1 and 2 were contacted
    expect(fleet.tenants.some(lockExists)).toBe(false);
  }, 120_000);

  test('budget 50%: the rollout goes on; one handshake per server; the bad tenant stays on v1', async () => {
    const before = new Map([...fleet.sshds].map(([n, s]) => [n, s.handshakes()]));
    const report = await deploy(fleet.registry, fleet.key, 'v2', {
      waves: '1,30%,100%',
      options: { maxFailurePercent: 50 },
    });
    expect(report.stopped).toBeUndefined();
    expect(report.totals).toMatchObject({
      targets: 10,
      deployed: 7,
      unchanged: 2,
      'rolled-back': 1,
      skipped: 0,
    });
    expect(report.handshakes).toBe(5);
    for (const [name, sshd] of fleet.sshds) expect(sshd.handshakes() - before.get(name)!).toBe(1);
    const bad = fleet.tenants.find((t) => t.id === 't2-1')!;
    expect(await fleet.health(bad)).toBe('200 {"status":"ok","version":"v1"}');
    expect(fleet.env(bad)).toContain(':v1\n');
  }, 120_000);

  test('the CLI: a JSON report, the final table, exit 0 when all deployed and 1 when one rolled back', () => {
    const keyFile = join(fleet.root, 'deploy_key');
    writeFileSync(keyFile, fleet.key.privateKey, { mode: 0o600 });
    const reportFile = join(fleet.root, 'report.json');
    const r = runBundledCli(
      [
        'deploy',
        '-r',
        join(fleet.root, 'registry.json'),
        '--version',
        'v3',
        '--select',
        'server=srv-1|srv-2',
        '--key',
        keyFile,
        '--report',
        reportFile,
        '--concurrency',
        '4',
      ],
      { USER: 'ci-bot' },
      120_000,
    );
    expect(r.stderr).toContain('Deploying v3 to 4 targets in 1 wave (concurrency 4, failure budget 0%)');
    expect(r.stderr).toMatch(/srv-1\/t1-1 {2}health {2}ok {2}\d+\.\d s {2}2\/\d+ probes in/);
    expect(r.code).toBe(0);
    const report = JSON.parse(readFileSync(reportFile, 'utf8'));
    expect(report).toMatchObject({ version: 'v3', actor: 'ci-bot', totals: { targets: 4, deployed: 4 } });
    expect(report.targets[0]).toMatchObject({ outcome: 'deployed', next: { version: 'v3' } });
    expect(r.stdout).toMatch(/TARGET +WAVE +OUTCOME +FROM → TO +TIME +REASON\n/);
    expect(r.stdout).toContain('4 targets: 4 deployed in');

    const bad = runBundledCli(
      ['deploy', '-r', join(fleet.root, 'registry.json'), '-v', 'v2', '-s', 'tenant=t2-1', '--key', keyFile],
      {},
      120_000,
    );
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(
      /srv-2\/t2-1 +1 +rolled-back +v3 → v2 +[\d.]+ s +health gate failed: not healthy within 4 s/,
    );
  }, 120_000);

  test('Ctrl-C during a deploy: the target in progress rolls back, its lock is released, nothing else starts', async () => {
    const keyFile = join(fleet.root, 'deploy_key');
    writeFileSync(keyFile, fleet.key.privateKey, { mode: 0o600 });
    const child = spawn(
      process.execPath,
      [
        'dist/cli.js',
        'deploy',
        '-r',
        join(fleet.root, 'registry.json'),
        '-v',
        'slow-7',
        '-s',
        'server=srv-3',
        '--concurrency',
        '1',
        '--key',
        keyFile,
      ],
      {
        env: { PATH: process.env.PATH ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no update step within 30 s:\n${err}`)), 30_000);
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (/srv-3\/t3-1 {2}update {2}ok/.test(err) && !child.killed) {
          clearTimeout(timer);
          child.kill('SIGINT');
          resolve();
        }
      });
    });
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(err).toContain(
      'SIGINT: finishing the targets in progress (rolling back where needed) and releasing their locks',
    );
    expect(code).toBe(1);
    expect(out).toMatch(/srv-3\/t3-1 +1 +rolled-back +\S+ → slow-7 +[\d.]+ s +cancelled/);
    expect(out).toMatch(/srv-3\/t3-2 +1 +skipped .* cancelled/);
    const t = fleet.tenants.find((x) => x.id === 't3-1')!;
    expect(lockExists(t)).toBe(false);
    expect(fleet.env(t)).not.toContain('slow-7');
  }, 60_000);
});
