/**
 * `fleet-deploy prune` over real sshd (SANDBOX runtime): the images of old releases go, never the
 * running one, the one before it, nor one another tenant of the server runs; --dry-run removes nothing.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from '../helpers/cli';
import { deploy } from '../helpers/deploy';
import { haveSshd } from '../../src/testing';
import { REPO, startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;

describeSshd('prune over sshd', () => {
  let fleet: TestFleet;
  let keyFile: string;
  let registryFile: string;
  const run = (...args: string[]) => cli([...args, '-r', registryFile, '--key', keyFile], {}, { USER: 'op' });
  /** The references of the images on the server (the sandbox runtime's image store). */
  const images = () => {
    const dir = join(fleet.sshds.get('srv-1')!.dir, 'sandbox', 'images');
    return existsSync(dir)
      ? readdirSync(dir)
          .map((f) => (JSON.parse(readFileSync(join(dir, f), 'utf8')) as { ref: string }).ref)
          .sort()
      : [];
  };

  beforeAll(async () => {
    // deploys keep 10 releases, so nothing is pruned before the command runs
    fleet = await startFleet({
      servers: 1,
      tenantsPerServer: 2,
      startWith: 'v1',
      edit: (r) => (r.defaults.tenant.keepReleases = 10),
    });
    keyFile = join(fleet.root, 'key');
    writeFileSync(keyFile, fleet.key.privateKey, { mode: 0o600 });
    for (const v of ['v2', 'v3', 'v4'])
      expect(
        (await deploy(fleet.registry, fleet.key, v, { select: 'tenant=t1-1' })).targets[0]!.outcome,
      ).toBe('deployed');
    // the prune runs with keepReleases 1
    const registry = JSON.parse(fleet.registryText);
    registry.defaults.tenant.keepReleases = 1;
    registryFile = join(fleet.root, 'keep-one.json');
    writeFileSync(registryFile, JSON.stringify(registry));
  }, 90_000);
  afterAll(async () => fleet?.stop());

  test('--dry-run lists what would go and the space, and removes nothing', async () => {
    const before = images();
    const r = await run('prune', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`srv-1 +${REPO}:v2 +1\\.0 MiB +would remove`));
    expect(r.stdout).toContain('Would free 1.0 MiB on 1 server');
    expect(images()).toEqual(before);
  }, 30_000);

  test('removes only v2: v4 runs, v3 is the release before it, v1 runs on the other tenant', async () => {
    const r = await run('prune');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`srv-1 +${REPO}:v2 +1\\.0 MiB +removed`));
    expect(images()).toEqual([`${REPO}:v1`, `${REPO}:v3`, `${REPO}:v4`]);
    const again = await run('prune');
    expect(again.stdout).toContain('(nothing to prune)');
  }, 30_000);

  test('history lines naming other repositories (written by whoever controls the server) remove nothing of theirs', async () => {
    const dir = join(fleet.sshds.get('srv-1')!.dir, 'sandbox', 'images');
    const sample = readdirSync(dir)[0]!;
    for (const ref of ['postgres:16', 'registry.test/other/app:v1']) {
      const image = { ...JSON.parse(readFileSync(join(dir, sample), 'utf8')), ref };
      writeFileSync(
        join(dir, `${createHash('sha256').update(ref).digest('hex')}.json`),
        JSON.stringify(image),
      );
    }
    const tenantDir = fleet.tenants.find((t) => t.id === 't1-1')!.dir;
    const line = (refs: Record<string, string>) =>
      JSON.stringify({ outcome: 'deployed', from: 'v0', to: 'v0', fromRefs: refs, toRefs: refs });
    const hostile = [{ APP_IMAGE: 'postgres:16' }, { APP_IMAGE: 'registry.test/other/app:v1' }];
    const history = join(tenantDir, '.fleet', 'history.jsonl');
    writeFileSync(history, `${hostile.map(line).join('\n')}\n${readFileSync(history, 'utf8')}`);
    const before = images();
    const r = await run('prune');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/postgres|other\/app/);
    expect(images()).toEqual(before);
    expect(before).toEqual(expect.arrayContaining(['postgres:16', 'registry.test/other/app:v1']));
  }, 30_000);

  test('a server selected only in part is skipped', async () => {
    const r = await run('prune', '--select', 'tenant=t1-1');
    expect(r.stderr).toContain('srv-1: skipped, only 1 of its 2 tenants are selected');
  }, 30_000);
});
