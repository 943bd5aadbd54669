/**
 * Registry features against real sshd: a jump host, the user's own deploy commands instead of Compose,
 * backups, and hooks (one of them once per rollout). Stacks run on the SANDBOX runtime (docker double).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRegistry } from '../../src/registry';
import { deploy } from '../helpers/deploy';
import { haveSshd } from '../../src/testing';
import { startSshd, type TestSshd } from '../helpers/sshd';
import { historyOf, lockExists, REPO, startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;
if (!haveSshd)
  console.warn('skipped: integration tests need /usr/sbin/sshd (npm run setup as root installs it)');

describeSshd('registry features over real sshd', () => {
  let fleet: TestFleet;
  let jump: TestSshd;
  beforeAll(async () => {
    fleet = await startFleet({
      servers: 1,
      tenantsPerServer: 3,
      startWith: 'v1',
      edit: (r) => {
        const [a, b, c] = r.servers[0].tenants;
        a.backup = { paths: ['docker-compose.yml'], keepDays: 3 };
        a.hooks = {
          preDeploy: ['echo "pre $FLEET_PREVIOUS_VERSION->$FLEET_VERSION on $FLEET_TARGET" >> hooks.log'],
          postDeploy: [{ run: 'echo post >> hooks.log', once: true }],
        };
        b.hooks = { postDeploy: [{ run: 'echo post >> hooks.log', once: true }] };
        // c deploys with its own commands (a stack that is not Compose-managed by the tool)
        c.commands = {
          current: "sed -n 's/^APP_IMAGE=.*://p' .env",
          deploy: `sed -i "s|^APP_IMAGE=.*|APP_IMAGE=${REPO}:$FLEET_VERSION|" .env && docker compose up -d`,
          rollback: `sed -i "s|^APP_IMAGE=.*|APP_IMAGE=${REPO}:$FLEET_VERSION|" .env && docker compose up -d && echo rolled >> hooks.log`,
        };
      },
    });
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
    await jump?.stop();
  });
  const ta = () => fleet.tenants[0]!;
  const tb = () => fleet.tenants[1]!;
  const tc = () => fleet.tenants[2]!;

  test('backup before the change; hooks with the versions; a once-hook runs on one target only', async () => {
    const report = await deploy(fleet.registry, fleet.key, 'v2', {
      select: 'tenant=t1-1|t1-2',
      options: { concurrency: 1 },
    });
    expect(report.targets.map((t) => t.outcome)).toEqual(['deployed', 'deployed']);
    const backups = readdirSync(join(ta().dir, '.fleet', 'backups')).sort();
    expect(backups).toHaveLength(2); // the archive and its checksum
    expect(backups[1]).toBe(`${backups[0]}.sha256`);
    const listing = execFileSync('tar', ['-tzf', join(ta().dir, '.fleet', 'backups', backups[0]!)], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean);
    expect(listing.sort()).toEqual(['.env', 'docker-compose.yml']);
    expect(readFileSync(join(ta().dir, 'hooks.log'), 'utf8')).toBe('pre v1->v2 on srv-1/t1-1\npost\n');
    expect(existsSync(join(tb().dir, 'hooks.log'))).toBe(false); // its once-hook is the same command: already run in this rollout
  }, 60_000);

  test("the user's own commands: deployed, then a bad version rolled back with the rollback command", async () => {
    const good = await deploy(fleet.registry, fleet.key, 'v2', { select: 'tenant=t1-3' });
    expect(good.targets[0]).toMatchObject({ outcome: 'deployed', previous: { version: 'v1' } });
    expect(good.targets[0]!.steps.map((s) => s.step)).toEqual([
      'connect',
      'prepare',
      'deploy',
      'health',
      'finish',
    ]);
    expect(await fleet.health(tc())).toBe('200 {"status":"ok","version":"v2"}');
    const bad = await deploy(fleet.registry, fleet.key, 'bad-2', { select: 'tenant=t1-3' });
    expect(bad.targets[0]!.outcome).toBe('rolled-back');
    expect(readFileSync(join(tc().dir, 'hooks.log'), 'utf8')).toBe('rolled\n');
    expect(await fleet.health(tc())).toBe('200 {"status":"ok","version":"v2"}');
    expect(historyOf(tc()).map((h) => h.outcome)).toEqual(['deployed', 'rolled-back']);
    expect(lockExists(tc())).toBe(false);
  }, 60_000);

  test('through a jump host: one handshake with the jump host and one with the server', async () => {
    jump = await startSshd('jump', fleet.root, fleet.key);
    const raw = JSON.parse(fleet.registryText);
    raw.servers[0].jump = { host: '127.0.0.1', port: jump.port, user: jump.user, hostKey: jump.hostKey };
    const registry = parseRegistry(JSON.stringify(raw), 'jump.json');
    const before = fleet.sshds.get('srv-1')!.handshakes();
    const report = await deploy(registry, fleet.key, 'v3', { select: 'tenant=t1-1' });
    expect([report.targets[0]!.outcome, report.targets[0]!.error]).toEqual(['deployed', undefined]);
    expect(report.handshakes).toBe(2);
    expect(jump.handshakes()).toBe(1);
    expect(fleet.sshds.get('srv-1')!.handshakes() - before).toBe(1);
  }, 60_000);

  test('a jump host with the wrong key is refused, naming the jump host', async () => {
    const raw = JSON.parse(fleet.registryText);
    raw.servers[0].jump = {
      host: '127.0.0.1',
      port: jump.port,
      user: jump.user,
      hostKey: fleet.sshds.get('srv-1')!.hostKey,
    };
    const report = await deploy(parseRegistry(JSON.stringify(raw), 'jump.json'), fleet.key, 'v3', {
      select: 'tenant=t1-1',
    });
    expect(report.targets[0]!.error).toMatch(/host key verification failed for srv-1 via jump 127\.0\.0\.1/);
  }, 30_000);
});
