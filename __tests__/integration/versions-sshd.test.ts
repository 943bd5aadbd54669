/**
 * A release whose images run at different versions (`versions`), and its rollback, over real sshd (SANDBOX
 * runtime as docker): each image's reference is switched on its own, and a rollback brings back exactly the
 * references the history recorded — not one version applied to every image.
 */
import { appendFileSync } from 'node:fs';
import { deploy } from '../helpers/deploy';
import { haveSshd } from '../../src/testing';
import { parseRegistry } from '../../src/registry';
import { historyOf, lockExists, REPO, startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;
const WORKER = 'registry.test/acme/worker';
const DIGEST = `sha256:${'5'.repeat(64)}`;

describeSshd('a version per image, and its exact rollback', () => {
  let fleet: TestFleet;
  const t = () => fleet.tenants[0]!;
  /** The image lines of the tenant's .env. */
  const images = () =>
    fleet
      .env(t())
      .split('\n')
      .filter((l) => /_IMAGE=/.test(l));

  beforeAll(async () => {
    fleet = await startFleet({
      servers: 1,
      tenantsPerServer: 1,
      startWith: 'v1',
      edit: (r) =>
        r.defaults.tenant.images.push({ variable: 'WORKER_IMAGE', repository: 'registry.test/acme/worker' }),
    });
    appendFileSync(`${t().dir}/.env`, `WORKER_IMAGE=${WORKER}:w1\n`);
    expect(parseRegistry(fleet.registryText, 'r.json').servers[0]!.tenants[0]!.images).toHaveLength(2);
  }, 60_000);
  afterAll(async () => fleet?.stop());

  test('versions alone: each image at its own version; the release is its first image’s', async () => {
    const versions = { APP_IMAGE: 'v2', WORKER_IMAGE: 'w5' };
    const report = await deploy(fleet.registry, fleet.key, 'APP_IMAGE=v2,WORKER_IMAGE=w5', {
      options: { versions },
    });
    expect(report.targets[0]).toMatchObject({ outcome: 'deployed', next: { version: 'v2' } });
    expect(images()).toEqual([`APP_IMAGE=${REPO}:v2`, `WORKER_IMAGE=${WORKER}:w5`]);
    expect(await fleet.health(t())).toBe('200 {"status":"ok","version":"v2"}');
  }, 60_000);

  test('version and versions: the worker at a digest, every other image at the version', async () => {
    const report = await deploy(fleet.registry, fleet.key, 'v3', {
      options: { versions: { WORKER_IMAGE: DIGEST } },
    });
    expect(report.targets[0]!.outcome).toBe('deployed');
    expect(images()).toEqual([`APP_IMAGE=${REPO}:v3`, `WORKER_IMAGE=${WORKER}@${DIGEST}`]);
    expect(historyOf(t()).at(-1)).toMatchObject({
      from: 'v2',
      to: 'v3',
      fromRefs: { APP_IMAGE: `${REPO}:v2`, WORKER_IMAGE: `${WORKER}:w5` },
      toRefs: { APP_IMAGE: `${REPO}:v3`, WORKER_IMAGE: `${WORKER}@${DIGEST}` },
    });
  }, 60_000);

  test('rollback to the previous release restores both references as recorded', async () => {
    const report = await deploy(fleet.registry, fleet.key, 'previous', { options: { rollback: {} } });
    expect(report.targets[0]).toMatchObject({
      outcome: 'deployed',
      next: { version: 'v2', refs: { APP_IMAGE: `${REPO}:v2`, WORKER_IMAGE: `${WORKER}:w5` } },
    });
    expect(images()).toEqual([`APP_IMAGE=${REPO}:v2`, `WORKER_IMAGE=${WORKER}:w5`]);
    expect(await fleet.health(t())).toBe('200 {"status":"ok","version":"v2"}');
    expect(lockExists(t())).toBe(false);
  }, 60_000);

  test('rollback --to v3 restores the worker at its digest, not at v3', async () => {
    const report = await deploy(fleet.registry, fleet.key, 'v3', { options: { rollback: { to: 'v3' } } });
    expect(report.targets[0]!.outcome).toBe('deployed');
    expect(images()).toEqual([`APP_IMAGE=${REPO}:v3`, `WORKER_IMAGE=${WORKER}@${DIGEST}`]);
    expect(historyOf(t()).at(-1)).toMatchObject({ from: 'v2', to: 'v3', rollback: true });
  }, 60_000);
});
