/**
 * A deploy that ships files (issue 25) and is cut off after its switch, over real sshd (the tenant on the
 * SANDBOX runtime, the docker double): its server drops off after `install files` and `update` and stays
 * away past the recovery window, so the lock's lease runs out with the new files and images in place.
 * The next deploy takes the lock over and puts back the previous release's files byte for byte (from
 * `.fleet/files`, as the switch noted them in the lock) together with its images, and the history says so;
 * cut off after `install files` but before its images switched, the take-over puts back the files only.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shipFiles } from '../../src/files/local';
import { targetsOf } from '../../src/registry';
import { haveSshd } from '../../src/testing';
import { deploy } from '../helpers/deploy';
import { historyOf, lockExists, REPO, startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;
const sha = (b: string) => createHash('sha256').update(b).digest('hex');

describeSshd('a deploy with files cut off after its switch, taken over', () => {
  let fleet: TestFleet;
  let repo: string;
  beforeAll(async () => {
    fleet = await startFleet({
      servers: 1,
      tenantsPerServer: 1,
      startWith: 'v1',
      edit: (r) => {
        r.defaults.tenant.files = { ship: [{ from: 'policy/', to: 'config/policy/' }] };
      },
    });
    repo = join(fleet.root, 'repo');
    mkdirSync(join(repo, 'policy'), { recursive: true });
  }, 60_000);
  afterAll(async () => fleet?.stop());
  const t = () => fleet.tenants[0]!;
  const sshd = () => fleet.sshds.get('srv-1')!;
  /** The repository's policy files: exactly these. */
  const policy = (files: Record<string, string>) => {
    rmSync(join(repo, 'policy'), { recursive: true, force: true });
    mkdirSync(join(repo, 'policy'));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(repo, 'policy', name), text);
    return shipFiles(targetsOf(fleet.registry), { root: repo, env: {} }).releases;
  };
  /** The tenant's config/policy files as they are on the server now (absent ones left out). */
  const onServer = (...names: string[]) =>
    Object.fromEntries(
      names
        .map((n) => [n, join(t().dir, 'config', 'policy', n)] as const)
        .filter(([, p]) => existsSync(p))
        .map(([n, p]) => [n, readFileSync(p, 'utf8')]),
    );
  const leaseRunsOut = async () => {
    const lease = () => Number(readFileSync(join(t().dir, '.fleet', 'lock', 'lease'), 'utf8'));
    for (let i = 0; i < 200 && Date.now() / 1000 < lease() + 1; i++)
      await new Promise((w) => setTimeout(w, 100));
  };

  test('the take-over puts back the previous files byte for byte with the images; the history says so', async () => {
    const v2 = { 'base.rego': 'package base\nallow = false\n' };
    const first = await deploy(fleet.registry, fleet.key, 'v2', { options: { files: policy(v2) } });
    expect(first.targets[0]!.outcome).toBe('deployed');
    expect(onServer('base.rego', 'extra.rego')).toEqual(v2);

    // bad-3 changes base.rego and adds extra.rego; the server drops off once its switch ran, and stays away
    const bad = { 'base.rego': 'package base\nallow = true\n', 'extra.rego': 'package extra\n' };
    const cut = await deploy(fleet.registry, fleet.key, 'bad-3', {
      options: { files: policy(bad), recoveryWindowMs: 3000 },
      onStep: (e: { step: string; status: string }) => {
        if (e.step === 'update' && e.status === 'ok') sshd().kill();
      },
    });
    const r = cut.targets[0]!;
    expect(r.outcome).toBe('failed');
    expect(r.steps.map((s) => `${s.step}:${s.ok}`)).toContain('install files:true');
    expect(lockExists(t())).toBe(true);
    expect(onServer('base.rego', 'extra.rego')).toEqual(bad); // half-way: mended only by the next deploy
    expect(fleet.env(t())).toContain(`APP_IMAGE=${REPO}:bad-3\n`);

    await sshd().restart();
    await leaseRunsOut();
    // the next deploy ships v2's files again: what the take-over left is read before it installs anything
    let afterTakeOver: Record<string, string> | undefined;
    let envAfterTakeOver = '';
    const next = await deploy(fleet.registry, fleet.key, 'v3', {
      options: { files: policy(v2) },
      onStep: (e: { step: string; status: string }) => {
        if (e.step !== 'take over' || e.status === 'start') return;
        afterTakeOver = onServer('base.rego', 'extra.rego');
        envAfterTakeOver = fleet.env(t());
      },
    });
    const n = next.targets[0]!;
    expect(afterTakeOver).toEqual(v2); // byte for byte, and extra.rego gone
    expect(envAfterTakeOver).toContain(`APP_IMAGE=${REPO}:v2\n`);
    expect(n.steps.find((s) => s.step === 'take over')?.detail).toMatch(
      /it was cut off switching v2 → bad-3: switched back to v2 and its files \(its previous 1 files put back, 1 it had added removed\) \(reverted\), history noted$/,
    );
    // so the next release's files are the ones already there: hashes only
    expect(n.steps.find((s) => s.step === 'files')?.detail).toBe('1 files unchanged (hashes only sent)');
    expect(n.outcome).toBe('deployed');
    const [cutEntry, deployed] = historyOf(t()).slice(-2);
    expect(cutEntry).toMatchObject({
      outcome: 'failed',
      from: 'v2',
      to: 'bad-3',
      files: {
        'config/policy/base.rego': sha(bad['base.rego']),
        'config/policy/extra.rego': sha(bad['extra.rego']),
      },
      fromFiles: { 'config/policy/base.rego': sha(v2['base.rego']) },
      error:
        'cut off during the switch to bad-3; its lease ran out and run test-run took the lock over and switched back to v2 and its files',
    });
    expect(deployed).toMatchObject({ outcome: 'deployed', from: 'v2', to: 'v3' });
    expect(onServer('base.rego', 'extra.rego')).toEqual(v2);
    expect(lockExists(t())).toBe(false);
  }, 90_000);
  test('cut off after install files, before its images switched: the take-over puts back the files only', async () => {
    const v2 = { 'base.rego': 'package base\nallow = false\n' };
    const bad = { 'base.rego': 'package base\nallow = 1\n', 'extra.rego': 'package extra\n' };
    const cut = await deploy(fleet.registry, fleet.key, 'bad-4', {
      options: { files: policy(bad), recoveryWindowMs: 3000 },
      onStep: (e: { step: string; status: string }) => {
        if (e.step === 'install files' && e.status === 'ok') sshd().kill();
      },
    });
    expect(cut.targets[0]!.outcome).toBe('failed');
    expect(onServer('base.rego', 'extra.rego')).toEqual(bad);
    expect(fleet.env(t())).toContain(`APP_IMAGE=${REPO}:v3\n`); // no switch noted: the images did not change

    await sshd().restart();
    await leaseRunsOut();
    let afterTakeOver: Record<string, string> | undefined;
    const next = await deploy(fleet.registry, fleet.key, 'v4', {
      options: { files: policy(v2) },
      onStep: (e: { step: string; status: string }) => {
        if (e.step === 'take over' && e.status !== 'start')
          afterTakeOver = onServer('base.rego', 'extra.rego');
      },
    });
    const n = next.targets[0]!;
    expect(afterTakeOver).toEqual(v2);
    expect(n.steps.find((s) => s.step === 'take over')?.detail).toMatch(
      /; it was cut off after installing its files: its previous 1 files put back, 1 it had added removed$/,
    );
    expect(n.steps.find((s) => s.step === 'files')?.detail).toBe('1 files unchanged (hashes only sent)');
    expect(n.outcome).toBe('deployed');
    expect(historyOf(t()).at(-1)).toMatchObject({ outcome: 'deployed', from: 'v3', to: 'v4' });
    expect(lockExists(t())).toBe(false);
  }, 90_000);
});
