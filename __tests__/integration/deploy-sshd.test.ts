/**
 * The deploy engine against real OpenSSH servers on 127.0.0.1. Each tenant's stack runs on the SANDBOX
 * container runtime (a test double of the docker CLI, named so); the real-engine test is e2e-podman.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { deploy } from '../helpers/deploy';
import { handOver, haveSshd } from '../../src/testing';
import { makeClientKey } from '../helpers/sshd';
import { historyOf, lockExists, REPO, startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;
if (!haveSshd) console.warn('integration tests need /usr/sbin/sshd: run `npm run setup` as root');

describeSshd('one server, two tenants, real sshd', () => {
  let fleet: TestFleet;
  beforeAll(async () => {
    fleet = await startFleet({ servers: 1, tenantsPerServer: 2, startWith: 'v1' });
  });
  afterAll(async () => fleet?.stop());
  const t1 = () => fleet.tenants[0]!;

  test('v1 → v2: deployed, .env switched with other lines untouched, history written, no lock, one handshake', async () => {
    const report = await deploy(fleet.registry, fleet.key, 'v2');
    expect(report.targets.map((t) => [t.id, t.outcome, t.error])).toEqual([
      ['srv-1/t1-1', 'deployed', undefined],
      ['srv-1/t1-2', 'deployed', undefined],
    ]);
    const r = report.targets[0]!;
    expect(r.previous).toMatchObject({ refs: { APP_IMAGE: `${REPO}:v1` }, version: 'v1' });
    expect(r.previous!.imageIds).toHaveLength(1);
    expect(r.next).toMatchObject({ refs: { APP_IMAGE: `${REPO}:v2` }, version: 'v2' });
    expect(r.next!.digests[0]).toMatch(new RegExp(`^${REPO}@sha256:[0-9a-f]{64}$`));
    // four round trips on the happy path: prepare, pull, update, finish (plus the health probes)
    expect(r.steps.map((s) => s.step)).toEqual(['connect', 'prepare', 'pull', 'update', 'health', 'finish']);
    expect(r.steps.at(-1)!.detail).toBe('history written, unlocked');
    expect(fleet.env(t1())).toBe(
      `# tenant t1-1\nAPP_IMAGE=${REPO}:v2\nAPP_PORT=${t1().port}\nSECRET_TOKEN=keep-me\n`,
    );
    expect(await fleet.health(t1())).toBe('200 {"status":"ok","version":"v2"}');
    expect(historyOf(t1()).map((h) => [h.outcome, h.from, h.to, h.actor, h.run])).toEqual([
      ['deployed', 'v1', 'v2', 'jest', 'test-run'],
    ]);
    expect(lockExists(t1())).toBe(false);
    expect(report.handshakes).toBe(1);
    expect(report.totals).toMatchObject({ targets: 2, deployed: 2, failed: 0 });
  });

  test('the same version again: unchanged, nothing restarted', async () => {
    const before = readFileSync(
      join(fleet.sshds.get('srv-1')!.dir, 'sandbox', 'projects', 't1-1.json'),
      'utf8',
    );
    const report = await deploy(fleet.registry, fleet.key, 'v2', { select: 'tenant=t1-1' });
    expect(report.targets[0]!.outcome).toBe('unchanged');
    expect(report.targets[0]!.steps.map((s) => s.step)).toEqual(['connect', 'prepare', 'pull', 'finish']);
    expect(
      readFileSync(join(fleet.sshds.get('srv-1')!.dir, 'sandbox', 'projects', 't1-1.json'), 'utf8'),
    ).toBe(before);
    expect(lockExists(t1())).toBe(false);
  });

  test('v2 → bad: rolled back automatically and healthy on v2', async () => {
    const report = await deploy(fleet.registry, fleet.key, 'bad-1', { select: 'tenant=t1-1' });
    const r = report.targets[0]!;
    expect(r.outcome).toBe('rolled-back');
    expect(r.error).toMatch(/^health gate failed: not healthy within 4 s \(last: HTTP 500, expected 200\)/);
    expect(r.steps.map((s) => s.step)).toEqual(expect.arrayContaining(['rollback', 'rollback health']));
    expect(fleet.env(t1())).toContain(`APP_IMAGE=${REPO}:v2\n`);
    expect(await fleet.health(t1())).toBe('200 {"status":"ok","version":"v2"}');
    expect(historyOf(t1()).at(-1)).toMatchObject({ outcome: 'rolled-back', from: 'v2', to: 'bad-1' });
    expect(lockExists(t1())).toBe(false);
  });

  test('a flapping service fails the gate and is rolled back', async () => {
    const report = await deploy(fleet.registry, fleet.key, 'flaky-1', { select: 'tenant=t1-1' });
    expect(report.targets[0]!.outcome).toBe('rolled-back');
    expect(report.targets[0]!.error).toMatch(/flapping: \d+ of \d+ probes passed, never 2 in a row/);
  });

  test('a service that never gets healthy in time: health timeout, rolled back', async () => {
    const report = await deploy(fleet.registry, fleet.key, 'slow-1', { select: 'tenant=t1-1' });
    expect(report.targets[0]!.outcome).toBe('rolled-back');
    expect(report.targets[0]!.error).toContain('not healthy within 4 s (last: HTTP 503, expected 200)');
    expect(await fleet.health(t1())).toBe('200 {"status":"ok","version":"v2"}');
  });

  test('a version that cannot be pulled fails at once (no retry of "manifest unknown") before anything changes', async () => {
    const envBefore = fleet.env(t1());
    const report = await deploy(fleet.registry, fleet.key, 'missing-9', { select: 'tenant=t1-1' });
    const r = report.targets[0]!;
    expect(r.outcome).toBe('failed');
    expect(r.error).toMatch(
      /^pull registry.test\/acme\/app:missing-9 failed: exit code 1: Error response from daemon: manifest for .* not found: manifest unknown$/,
    );
    expect(r.steps.map((s) => s.step)).not.toContain('update');
    expect(fleet.env(t1())).toBe(envBefore);
    expect(lockExists(t1())).toBe(false);
  });

  test('a lock held by another deploy: waits, then fails naming the holder, and leaves that lock alone', async () => {
    const lock = join(t1().dir, '.fleet', 'lock');
    mkdirSync(lock, { recursive: true });
    writeFileSync(join(lock, 'owner'), '{"token":"other","run":"run-42","actor":"alice"}\n');
    handOver(join(t1().dir, '.fleet'));
    try {
      const report = await deploy(fleet.registry, fleet.key, 'v3', { select: 'tenant=t1-1' });
      const r = report.targets[0]!;
      expect(r.outcome).toBe('failed');
      expect(r.error).toMatch(
        /is locked by another deploy: alice \(run run-42\); last active \d+ s ago; waited 1 s; it has no lease \(a restore's, or an older fleet-deploy's\): if that deploy is gone, release it: fleet-deploy unlock --select 'id=/,
      );
      expect(existsSync(join(lock, 'owner'))).toBe(true);
      expect(fleet.env(t1())).toContain(`:v2\n`);
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  });

  test('a stale lock is broken only when asked, then the deploy proceeds', async () => {
    const lock = join(t1().dir, '.fleet', 'lock');
    mkdirSync(lock, { recursive: true });
    writeFileSync(join(lock, 'owner'), '{"token":"crashed","run":"run-7"}\n');
    const old = new Date(Date.now() - 3600_000);
    utimesSync(lock, old, old);
    handOver(join(t1().dir, '.fleet'));
    const report = await deploy(fleet.registry, fleet.key, 'v3', {
      select: 'tenant=t1-1',
      options: { breakLocksOlderThanMs: 600_000 },
    });
    expect(report.targets[0]!.outcome).toBe('deployed');
    expect(lockExists(t1())).toBe(false);
  });

  test('a compose failure after the switch: the old .env is restored, both reasons reported', async () => {
    const envFile = join(t1().dir, '.env');
    const original = readFileSync(envFile, 'utf8');
    writeFileSync(envFile, original.replace(/^APP_PORT=.*\n/m, ''));
    try {
      const report = await deploy(fleet.registry, fleet.key, 'v4', { select: 'tenant=t1-1' });
      const r = report.targets[0]!;
      expect(r.outcome).toBe('failed');
      expect(r.error).toMatch(/^compose up failed: exit code 1: no service port/);
      expect(r.rollbackError).toMatch(/^rollback failed: exit code 1: no service port/);
      expect(readFileSync(envFile, 'utf8')).toContain(`APP_IMAGE=${REPO}:v3\n`);
      expect(lockExists(t1())).toBe(false);
    } finally {
      writeFileSync(
        envFile,
        readFileSync(envFile, 'utf8').replace(
          `APP_IMAGE=${REPO}:v3\n`,
          `APP_IMAGE=${REPO}:v3\nAPP_PORT=${t1().port}\n`,
        ),
      );
    }
  });

  test('a missing compose file is named by preflight', async () => {
    const file = join(t1().dir, 'docker-compose.yml');
    rmSync(file);
    try {
      const report = await deploy(fleet.registry, fleet.key, 'v4', { select: 'tenant=t1-1' });
      expect(report.targets[0]!.outcome).toBe('failed');
      expect(report.targets[0]!.error).toBe(`compose file docker-compose.yml not found in ${t1().dir}`);
      expect(lockExists(t1())).toBe(false);
    } finally {
      writeFileSync(file, 'services: {}\n');
    }
  });

  test('the connection killed mid-deploy: rolled back over a new connection, .env intact, no lock left', async () => {
    const sshd = fleet.sshds.get('srv-1')!;
    const before = fleet.env(t1());
    const oldRef = /APP_IMAGE=(.*)\n/.exec(before)![1]!;
    let dropped = false;
    const report = await deploy(fleet.registry, fleet.key, 'slow-2', {
      select: 'tenant=t1-1',
      onStep: (e) => {
        if (e.step === 'health' && e.status === 'start' && !dropped) {
          dropped = true;
          setTimeout(() => sshd.dropConnections(), 300);
        }
      },
    });
    const r = report.targets[0]!;
    expect(dropped).toBe(true);
    expect(['rolled-back', 'failed']).toContain(r.outcome);
    expect(r.error).toMatch(/the SSH connection was lost/);
    // .env is the old file or the new one, never a mix or a truncated file
    expect([before, before.replace(oldRef, `${REPO}:slow-2`)]).toContain(fleet.env(t1()));
    expect(lockExists(t1())).toBe(false);
    expect(report.handshakes).toBe(2);
  });
});

describeSshd('connection failures name the server and the reason', () => {
  let fleet: TestFleet;
  beforeAll(async () => {
    fleet = await startFleet({ servers: 1, tenantsPerServer: 1 });
  });
  afterAll(async () => fleet?.stop());

  test('unreachable host: fails after retries, saying so', async () => {
    const raw = JSON.parse(fleet.registryText);
    raw.servers[0].port = 1; // nothing listens on 127.0.0.1:1
    const { parseRegistry } = await import('../../src/registry');
    const report = await deploy(parseRegistry(JSON.stringify(raw), 'r.json'), fleet.key, 'v2');
    expect(report.targets[0]!.outcome).toBe('failed');
    expect(report.targets[0]!.error).toMatch(
      /^cannot connect to srv-1 \(\w+@127\.0\.0\.1:1\): .*ECONNREFUSED.* \(after 2 attempts\)$/,
    );
  });

  test('refused authentication: not retried, names the user', async () => {
    const stranger = makeClientKey(join(fleet.root, 'stranger'));
    const t0 = Date.now();
    const report = await deploy(fleet.registry, fleet.key, 'v2', { privateKey: stranger.privateKey });
    expect(report.targets[0]!.error).toMatch(/authentication as \w+ was refused/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('host key mismatch: names the host, the expected and the offered fingerprints', async () => {
    const raw = JSON.parse(fleet.registryText);
    const offered = execFileSync(
      'ssh-keygen',
      ['-lf', join(fleet.sshds.get('srv-1')!.dir, 'host_ed25519.pub')],
      { encoding: 'utf8' },
    ).split(' ')[1];
    raw.servers[0].hostKey = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const { parseRegistry } = await import('../../src/registry');
    const report = await deploy(parseRegistry(JSON.stringify(raw), 'r.json'), fleet.key, 'v2');
    expect(report.targets[0]!.error).toContain(
      `host key verification failed for srv-1 (127.0.0.1:${fleet.sshds.get('srv-1')!.port}): expected SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA, but the server offered ${offered}`,
    );
    expect(fleet.env(fleet.tenants[0]!)).toContain(':v1\n');
  });
});

describeSshd('health probes need the server to forward to 127.0.0.1', () => {
  let fleet: TestFleet;
  beforeAll(async () => {
    // this sshd forwards no port (that a probe uses no socket of the runner's own is shown in
    // transport.test.ts, where exactly one connection reaches the service)
    fleet = await startFleet({
      servers: 1,
      tenantsPerServer: 1,
      startWith: 'v1',
      sshdConfig: ['PermitOpen none'],
    });
  });
  afterAll(async () => fleet?.stop());

  test('with forwarding refused by sshd, the gate cannot reach the service and says so', async () => {
    const report = await deploy(fleet.registry, fleet.key, 'v2');
    const r = report.targets[0]!;
    expect(r.outcome).not.toBe('deployed');
    expect(r.error).toMatch(/cannot reach 127\.0\.0\.1:\d+ on srv-1: /);
    expect(await fleet.health(fleet.tenants[0]!)).toMatch(/^200 /); // the service itself is up
  });
});
