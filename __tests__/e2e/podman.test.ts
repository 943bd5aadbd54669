/**
 * End to end with a REAL container engine: the deploy engine over real OpenSSH to a deploy user whose
 * `docker` and `docker-compose` (Debian's compose 1.29) talk to podman's Docker-compatible API, pulling
 * from a real registry (engine-up.sh). Two tenants on one server, each its own compose project on host
 * networking. Covers: a fresh start, an upgrade, a bad release rolled back, a no-op redeploy, a release
 * that crash-loops under its restart policy failed by the crash watch and rolled back 20 times in a row,
 * a container that restarts once and recovers (deployed), hibernated (paused and stopped)
 * tenants put back to sleep or woken, and private registries.
 *
 * Needs root (engine-up.sh installs packages and runs podman) and /usr/sbin/sshd; skipped otherwise.
 * The engine state lives in a temp dir and is torn down (engine-down.sh --purge) in afterAll.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deploy } from '../helpers/deploy';
import { DEPLOY_USER, freePort, handOver, TENANT_COMPOSE } from '../../src/testing';
import { parseRegistry, type Registry } from '../../src/registry';
import { startSshd, type ClientKey, type TestSshd } from '../helpers/sshd';
import { e2eSkipReason, stackUp, type Stack } from './stack';

if (e2eSkipReason) console.warn(e2eSkipReason);
const describeE2e = e2eSkipReason ? describe.skip : describe;

const SETUP_TIMEOUT_MS = 300_000;
const TEARDOWN_TIMEOUT_MS = 120_000;

interface Tenant {
  id: string;
  dir: string;
  port: number;
  project: string;
}

describeE2e('e2e: real podman engine, registry, docker-compose 1.29 and sshd', () => {
  const t0 = Date.now();
  let stack: Stack | undefined;
  let registry: Registry;
  /** The same fleet with its images in the registry that requires a login. */
  let privateRegistry: Registry;
  let deployHome: string;
  const tenants: Tenant[] = [];
  const imageIds: Record<string, string> = {};
  // The stack's parts, under the names the tests use.
  let root: string;
  let key: ClientKey;
  let env: Record<string, string>;
  let repo: string;
  let sshd: TestSshd;
  const docker = (args: string[]) => stack!.docker(args);

  /** A tenant's compose file (the local fleets' TENANT_COMPOSE), then `more` lines. */
  const appCompose = (more: string[]) => TENANT_COMPOSE + more.map((l) => `${l}\n`).join('');
  const envOf = (t: Tenant) => readFileSync(join(t.dir, '.env'), 'utf8');
  const envText = (t: Tenant, version: string) =>
    `# tenant ${t.id}: written by the e2e test\nAPP_IMAGE=${repo}:${version}\nAPP_PORT=${t.port}\n`;
  const lockExists = (t: Tenant) => existsSync(join(t.dir, '.fleet', 'lock'));
  const historyOf = (t: Tenant): any[] => {
    const f = join(t.dir, '.fleet', 'history.jsonl');
    return existsSync(f)
      ? readFileSync(f, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
      : [];
  };
  const health = async (t: Tenant) => {
    const r = await fetch(`http://127.0.0.1:${t.port}/health`, { signal: AbortSignal.timeout(2000) }).catch(
      () => undefined,
    );
    return r ? `${r.status} ${(await r.text()).trim()}` : 'down';
  };
  const runningImages = (t: Tenant) => {
    const ids = docker([
      'ps',
      '-q',
      '--filter',
      `label=com.docker.compose.project=${t.project}`,
      '--filter',
      'status=running',
    ])
      .split('\n')
      .filter(Boolean);
    return ids.length ? docker(['inspect', '--format', '{{.Image}}', ...ids]).split('\n') : [];
  };

  /** The fleet's registry: one server, both tenants, health gated on the app's version. */
  const fleetRegistry = (o: { repository: string; deadline: string; hibernated?: 'wake' }): Registry => {
    const raw = {
      servers: [
        {
          ...stack!.server('e2e-1'),
          tenants: tenants.map((t) => ({
            id: t.id,
            path: t.dir,
            compose: { command: 'docker-compose', project: 'e2e-{tenant}' },
            images: [{ variable: 'APP_IMAGE', repository: o.repository }],
            health: {
              port: t.port,
              path: '/health',
              json: { status: 'ok', version: '{version}' },
              interval: '300ms',
              timeout: '2s',
              deadline: o.deadline,
              successes: 2,
            },
            minFreeDiskMb: 1,
            ...(o.hibernated ? { hibernated: o.hibernated } : {}),
          })),
        },
      ],
    };
    const file = join(root, 'registry.json');
    writeFileSync(file, JSON.stringify(raw, null, 2));
    return parseRegistry(JSON.stringify(raw), file);
  };

  beforeAll(async () => {
    // 1. The engine stack (engine-up.sh: podman API, registry, images), the deploy user reaching the
    //    engine's socket through its own group, and one real sshd whose sessions get the real
    //    docker/docker-compose (not the sandbox double).
    stack = await stackUp('fd-e2e-', SETUP_TIMEOUT_MS - 20_000);
    ({ root, key, env, repo, sshd } = stack);
    expect(env.DOCKER_HOST).toBe(`unix://${join(root, 'engine', 'podman.sock')}`);
    expect(env.FLEET_E2E_DIGEST_V1).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(env.FLEET_E2E_DIGEST_V2).toMatch(/^sha256:[0-9a-f]{64}$/);

    // 2. The deploy user's own docker and docker-compose talk to that engine.
    deployHome = execFileSync('getent', ['passwd', DEPLOY_USER], { encoding: 'utf8' }).split(':')[5]!;
    const asUser = (argv: string[]) =>
      execFileSync(
        'runuser',
        [
          '-u',
          DEPLOY_USER,
          '--',
          'env',
          '-i',
          `HOME=${deployHome}`,
          'PATH=/usr/local/bin:/usr/bin:/bin',
          `DOCKER_HOST=${env.DOCKER_HOST}`,
          ...argv,
        ],
        { encoding: 'utf8', timeout: 30_000, cwd: '/' },
      );
    expect(asUser(['docker', 'version', '--format', '{{.Server.Version}}']).trim()).toMatch(/^\d+\.\d+/);
    expect(asUser(['docker-compose', 'version', '--short']).trim()).toMatch(/^1\.29\./);

    // 3. Two tenants, each a compose project of its own on host networking, restarted by the engine
    //    when their process exits (as production stacks are).
    const tenantsRoot = join(root, 'tenants');
    for (const id of ['alpha', 'beta']) {
      const dir = join(tenantsRoot, id);
      mkdirSync(dir, { recursive: true });
      const t: Tenant = { id, dir, port: await freePort(), project: `e2e-${id}` };
      writeFileSync(join(dir, 'docker-compose.yml'), appCompose(['    restart: unless-stopped']));
      writeFileSync(join(dir, '.env'), envText(t, 'v1'));
      tenants.push(t);
    }
    handOver(tenantsRoot);
    registry = fleetRegistry({ repository: repo, deadline: '8s' });
    privateRegistry = fleetRegistry({
      repository: `${env.FLEET_E2E_AUTH_REGISTRY}/fleet/private`,
      deadline: '8s',
    });
    console.log(`e2e setup took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await stack?.down();
    console.log(`e2e file took ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
  }, TEARDOWN_TIMEOUT_MS);

  /** Steps that did not succeed, as "step: detail" (step names are the engine's; only failures matter here). */
  const failedSteps = (r: { steps: { step: string; ok: boolean; detail?: string }[] }) =>
    r.steps.filter((s) => !s.ok).map((s) => `${s.step}: ${s.detail}`);

  test('v1 on a fresh server (nothing running): deployed and healthy on v1', async () => {
    for (const t of tenants) expect(runningImages(t)).toEqual([]);
    const before = sshd.handshakes();
    const report = await deploy(registry, key, 'v1');
    expect(report.targets.map((r) => [r.id, r.outcome, r.error])).toEqual([
      ['e2e-1/alpha', 'deployed', undefined],
      ['e2e-1/beta', 'deployed', undefined],
    ]);
    imageIds.v1 = docker(['image', 'inspect', '--format', '{{.Id}}', `${repo}:v1`]);
    expect(imageIds.v1).toMatch(/^sha256:[0-9a-f]{64}$/);
    for (const [i, t] of tenants.entries()) {
      const r = report.targets[i]!;
      expect(failedSteps(r)).toEqual([]);
      expect(r.previous).toMatchObject({ refs: { APP_IMAGE: `${repo}:v1` }, version: 'v1', imageIds: [] });
      expect(r.next!.imageIds).toEqual([imageIds.v1]);
      expect(r.next!.digests).toContain(`${repo}@${env.FLEET_E2E_DIGEST_V1}`);
      expect(await health(t)).toBe('200 {"status":"ok","version":"v1"}');
      expect(runningImages(t)).toEqual([imageIds.v1]);
      expect(envOf(t)).toBe(envText(t, 'v1'));
      expect(historyOf(t).map((h) => [h.outcome, h.from, h.to])).toEqual([['deployed', 'v1', 'v1']]);
      expect(lockExists(t)).toBe(false);
      // the compose files were checked (no fingerprint yet) and remembered
      expect(r.steps.find((s) => s.step === 'update')?.detail).toBe(
        'compose files checked (changed since their last check)',
      );
    }
    // The real engine ran it, not the sandbox double.
    expect(existsSync(join(sshd.dir, 'sandbox'))).toBe(false);
    expect(report.handshakes).toBe(1);
    expect(sshd.handshakes() - before).toBe(1);
  }, 90_000);

  /** Pulls of fleet/app:`tag` the registry served: the manifest requests in its access log (engine-up.sh). */
  const pullsOf = (tag: string) =>
    readFileSync(join(root, 'engine', 'logs', 'registry.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes(`"GET /v2/fleet/app/manifests/${tag} `)).length;

  test('v1 → v2: deployed, .env switched with other lines untouched, ids and digests reported, history, no lock; the two tenants pulled v2 once', async () => {
    const before = sshd.handshakes();
    const pulls = pullsOf('v2');
    const report = await deploy(registry, key, 'v2');
    // one pull for the server, shared by its two tenants: the registry was asked once
    expect(pullsOf('v2') - pulls).toBe(1);
    // whichever tenant came first pulled; the other's step says it shared that pull
    const [a, b] = report.targets.map((r) => r.steps.find((s) => s.step === 'pull')?.detail);
    expect([a, b].sort()).toEqual([
      `shared: pulled once on this server, by ${a ? 'e2e-1/beta' : 'e2e-1/alpha'}`,
      undefined,
    ]);
    expect(report.targets.map((r) => [r.id, r.outcome, r.error])).toEqual([
      ['e2e-1/alpha', 'deployed', undefined],
      ['e2e-1/beta', 'deployed', undefined],
    ]);
    imageIds.v2 = docker(['image', 'inspect', '--format', '{{.Id}}', `${repo}:v2`]);
    expect(imageIds.v2).not.toBe(imageIds.v1);
    for (const [i, t] of tenants.entries()) {
      const r = report.targets[i]!;
      expect(failedSteps(r)).toEqual([]);
      expect(r.previous).toMatchObject({ refs: { APP_IMAGE: `${repo}:v1` }, version: 'v1' });
      expect(r.previous!.imageIds).toEqual([imageIds.v1]);
      expect(r.next).toMatchObject({ refs: { APP_IMAGE: `${repo}:v2` }, version: 'v2' });
      expect(r.next!.imageIds).toEqual([imageIds.v2]);
      expect(r.next!.digests).toContain(`${repo}@${env.FLEET_E2E_DIGEST_V2}`);
      // only APP_IMAGE changed since the last check: no Compose process for it
      expect(r.steps.find((s) => s.step === 'update')?.detail).toBeUndefined();
      expect(envOf(t)).toBe(envText(t, 'v2'));
      expect(await health(t)).toBe('200 {"status":"ok","version":"v2"}');
      expect(runningImages(t)).toEqual([imageIds.v2]);
      expect(historyOf(t).map((h) => [h.outcome, h.from, h.to, h.actor, h.run])).toEqual([
        ['deployed', 'v1', 'v1', 'jest', 'test-run'],
        ['deployed', 'v1', 'v2', 'jest', 'test-run'],
      ]);
      expect(historyOf(t).at(-1)).toMatchObject({
        fromImages: [imageIds.v1],
        toImages: [imageIds.v2],
        digests: expect.arrayContaining([`${repo}@${env.FLEET_E2E_DIGEST_V2}`]),
      });
      expect(lockExists(t)).toBe(false);
    }
    expect(report.totals).toMatchObject({ targets: 2, deployed: 2, failed: 0, 'rolled-back': 0 });
    expect(report.handshakes).toBe(1);
    expect(sshd.handshakes() - before).toBe(1);
  }, 90_000);

  test('v2 → bad: the health gate fails, rolled back automatically, healthy on v2 with .env on v2', async () => {
    const before = sshd.handshakes();
    const report = await deploy(registry, key, 'bad');
    expect(report.targets.map((r) => [r.id, r.outcome])).toEqual([
      ['e2e-1/alpha', 'rolled-back'],
      ['e2e-1/beta', 'rolled-back'],
    ]);
    for (const [i, t] of tenants.entries()) {
      const r = report.targets[i]!;
      expect(r.error).toBe('health gate failed: not healthy within 8 s (last: HTTP 404, expected 200)');
      expect(r.rollbackError).toBeUndefined();
      expect(failedSteps(r)).toEqual([`health: ${r.error}`]);
      expect(r.steps.filter((s) => s.step.startsWith('rollback')).map((s) => [s.step, s.ok])).toEqual([
        ['rollback', true],
        ['rollback health', true],
      ]);
      expect(r.previous!.imageIds).toEqual([imageIds.v2]);
      expect(r.next!.digests).toContain(`${repo}@${env.FLEET_E2E_DIGEST_BAD}`);
      expect(envOf(t)).toBe(envText(t, 'v2'));
      expect(await health(t)).toBe('200 {"status":"ok","version":"v2"}');
      expect(runningImages(t)).toEqual([imageIds.v2]);
      expect(historyOf(t).at(-1)).toMatchObject({ outcome: 'rolled-back', from: 'v2', to: 'bad' });
      expect(historyOf(t)).toHaveLength(3);
      expect(lockExists(t)).toBe(false);
    }
    expect(report.handshakes).toBe(1);
    expect(sshd.handshakes() - before).toBe(1);
  }, 90_000);

  test('v2 again: unchanged, nothing recreated, no history entry', async () => {
    const containers = (t: Tenant) =>
      docker(['ps', '-q', '--no-trunc', '--filter', `label=com.docker.compose.project=${t.project}`]);
    const ids = tenants.map(containers);
    const before = sshd.handshakes();
    const report = await deploy(registry, key, 'v2');
    expect(report.targets.map((r) => [r.id, r.outcome, r.error])).toEqual([
      ['e2e-1/alpha', 'unchanged', undefined],
      ['e2e-1/beta', 'unchanged', undefined],
    ]);
    for (const [i, t] of tenants.entries()) {
      const r = report.targets[i]!;
      expect(failedSteps(r)).toEqual([]);
      expect(r.steps.map((s) => s.step)).not.toContain('health');
      expect(r.previous!.imageIds).toEqual([imageIds.v2]);
      expect(r.next!.imageIds).toEqual([imageIds.v2]);
      expect(containers(t)).toBe(ids[i]);
      expect(envOf(t)).toBe(envText(t, 'v2'));
      expect(await health(t)).toBe('200 {"status":"ok","version":"v2"}');
      expect(historyOf(t)).toHaveLength(3);
      expect(lockExists(t)).toBe(false);
    }
    expect(report.handshakes).toBe(1);
    expect(sshd.handshakes() - before).toBe(1);
  }, 90_000);

  test('a compose file changed so that it does not parse: refused before .env changes, still on v2; mended, checked again', async () => {
    const t = tenants[0]!;
    const file = join(t.dir, 'docker-compose.yml');
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, `${good}  : [unclosed\n`);
    try {
      const r = (await deploy(registry, key, 'v1')).targets[0]!;
      expect([r.outcome, r.rollbackError]).toEqual(['failed', undefined]);
      expect(r.error).toContain(`the compose files of ${t.dir} do not parse (docker-compose config failed)`);
      expect(envOf(t)).toBe(envText(t, 'v2'));
      expect(runningImages(t)).toEqual([imageIds.v2]);
      expect(await health(t)).toBe('200 {"status":"ok","version":"v2"}');
      expect(lockExists(t)).toBe(false);
    } finally {
      writeFileSync(file, good);
    }
    // a change that parses is checked once, then remembered
    writeFileSync(join(t.dir, '.env'), `${envText(t, 'v2')}EXTRA=1\n`);
    const updateStep = async (version: string) => {
      const r = (await deploy(registry, key, version)).targets[0]!;
      expect([r.outcome, r.error]).toEqual(['deployed', undefined]);
      return r.steps.find((s) => s.step === 'update')?.detail;
    };
    expect(await updateStep('v1')).toBe('compose files checked (changed since their last check)');
    expect(await updateStep('v2')).toBeUndefined();
    writeFileSync(join(t.dir, '.env'), envText(t, 'v2'));
  }, 120_000);

  test('a crash loop, 20 times: an image that exits at once under `restart: unless-stopped` is failed by the crash watch (not at the deadline) and rolled back every time, one container left', async () => {
    // The engine keeps restarting the failed release while the rollback replaces it: the rollback must
    // win that race every time (it removes the project's containers by force, retried, before `up -d`).
    // The gate's deadline is long (30 s, the default's order): only the crash watch ends it early.
    const crashRegistry = fleetRegistry({ repository: repo, deadline: '30s' });
    const errors: string[] = [];
    const rounds = 10; // × 2 tenants = 20 rollbacks
    const seen: string[] = [];
    const containersOf = (t: Tenant) =>
      docker([
        'ps',
        '-a',
        '--format',
        '{{.Image}} {{.State}}',
        '--filter',
        `label=com.docker.compose.project=${t.project}`,
      ])
        .split('\n')
        .filter(Boolean);
    for (let round = 1; round <= rounds; round++) {
      const report = await deploy(crashRegistry, key, 'crash');
      for (const [i, t] of tenants.entries()) {
        const r = report.targets[i]!;
        errors.push(r.error ?? '');
        const left = containersOf(t);
        seen.push(
          [
            `round ${round} ${t.id}: ${r.outcome}`,
            r.rollbackError ? `rollback error: ${r.rollbackError}` : '',
            `containers: ${left.join(', ')}`,
            `health: ${await health(t)}`,
            lockExists(t) ? 'LOCKED' : '',
          ]
            .filter(Boolean)
            .join('; '),
        );
      }
    }
    const expected = (round: number, t: Tenant) =>
      `round ${round} ${t.id}: rolled-back; containers: ${repo}:v2 running; health: 200 {"status":"ok","version":"v2"}`;
    expect(seen).toEqual(
      Array.from({ length: rounds }, (_, i) => tenants.map((t) => expected(i + 1, t))).flat(),
    );
    const crashed =
      /^health gate failed: container [0-9a-f]{12} restarted \d+ times in \d+\.\d s; last exit code (3|not known \(it was running again\)); last log lines: .*crash: exits at once$/;
    for (const e of errors) expect(e).toMatch(crashed);
    for (const t of tenants) {
      expect(envOf(t)).toBe(envText(t, 'v2'));
      expect(runningImages(t)).toEqual([imageIds.v2]);
      expect(
        historyOf(t)
          .slice(-rounds)
          .map((h) => [h.outcome, h.from, h.to]),
      ).toEqual(Array.from({ length: rounds }, () => ['rolled-back', 'v2', 'crash']));
    }
  }, 600_000);

  test('a container that restarts once and then serves is judged by the gate as before: deployed', async () => {
    // `once`: its first start fails after 2 s (exit 3), the engine restarts it, and it serves
    const report = await deploy(fleetRegistry({ repository: repo, deadline: '30s' }), key, 'once');
    expect(report.targets.map((r) => [r.id, r.outcome, r.error])).toEqual([
      ['e2e-1/alpha', 'deployed', undefined],
      ['e2e-1/beta', 'deployed', undefined],
    ]);
    for (const [i, t] of tenants.entries()) {
      const ids = stack!.running(t.project);
      expect(docker(['inspect', '--format', '{{.RestartCount}} {{.Config.Image}}', ...ids])).toBe(
        `1 ${repo}:once`,
      );
      // probes failed while it restarted, so the crash watch looked and let the gate judge
      expect(report.targets[i]!.steps.find((s) => s.step === 'health')?.detail).not.toMatch(
        /^(\d+)\/\1 probes/,
      );
      expect(await health(t)).toBe('200 {"status":"ok","version":"once"}');
    }
    const back = await deploy(registry, key, 'v2');
    expect(back.targets.map((r) => r.outcome)).toEqual(['deployed', 'deployed']);
  }, 120_000);

  describe('pre-pull: wave 2 on a second server (a second sshd on the same engine), pulled while wave 1 gates', () => {
    let second: TestSshd | undefined;
    beforeAll(async () => {
      second = await startSshd('e2e-2', root, key, {
        PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
        DOCKER_HOST: env.DOCKER_HOST!,
      });
      handOver(second.dir);
    });
    afterAll(async () => {
      await second?.stop();
    });
    /** alpha on e2e-1 in wave 1, beta on e2e-2 in wave 2. */
    const twoServers = (deadline: string): Registry => {
      fleetRegistry({ repository: repo, deadline });
      const raw = JSON.parse(readFileSync(join(root, 'registry.json'), 'utf8'));
      const [a, b] = raw.servers[0].tenants;
      raw.servers = [
        { ...raw.servers[0], tenants: [a] },
        {
          ...raw.servers[0],
          name: 'e2e-2',
          port: second!.port,
          hostKey: second!.hostKey,
          tenants: [b],
        },
      ];
      return parseRegistry(JSON.stringify(raw), join(root, 'registry.json'));
    };
    const waves = '1,100%';

    test("a rollout stopped by wave 1: wave 2's server pulled the release, and it runs nowhere", async () => {
      const pulls = pullsOf('bad');
      const report = await deploy(twoServers('4s'), key, 'bad', { waves, options: { prePull: true } });
      expect(report.targets.map((r) => [r.id, r.outcome])).toEqual([
        ['e2e-1/alpha', 'rolled-back'],
        ['e2e-2/beta', 'skipped'],
      ]);
      expect(report.prePulls).toEqual([
        { wave: 2, server: 'e2e-2', refs: [`${repo}:bad`], status: 'pulled', ms: expect.any(Number) },
      ]);
      expect(pullsOf('bad') - pulls).toBe(2); // alpha's pull, and the pre-pull for beta
      for (const t of tenants) {
        expect(runningImages(t)).toEqual([imageIds.v2]);
        expect(envOf(t)).toBe(envText(t, 'v2'));
        expect(await health(t)).toBe('200 {"status":"ok","version":"v2"}');
        expect(lockExists(t)).toBe(false);
      }
      expect(docker(['ps', '-aq', '--filter', `ancestor=${repo}:bad`])).toBe('');
    }, 120_000);

    test('a disk with less free than pre-pull-min-free stops the pre-pull with a warning; the deploy itself goes on', async () => {
      // The free-disk check's input, honestly: the real free space of the tenant's filesystem (df on the
      // server), against a threshold no disk meets (1,000,000,000 MiB) — not a filled-up disk.
      const report = await deploy(twoServers('8s'), key, 'v2', {
        waves,
        options: { prePull: true, prePullMinFreeMb: 1_000_000_000 },
      });
      expect(report.targets.map((r) => [r.id, r.outcome, r.error])).toEqual([
        ['e2e-1/alpha', 'unchanged', undefined],
        ['e2e-2/beta', 'unchanged', undefined],
      ]);
      expect(report.prePulls).toEqual([
        expect.objectContaining({
          wave: 2,
          server: 'e2e-2',
          status: 'skipped',
          detail: expect.stringMatching(
            /^only \d+ MiB free on the filesystem of .*beta, under the pre-pull's 1000000000 MiB: pre-pull stopped on e2e-2 \(the deploy pulls as usual\)$/,
          ),
        }),
      ]);
    }, 120_000);
  });

  describe("Compose v1 runs with the engine's API version, asked once per server and run", () => {
    // A third sshd whose sessions find logging wrappers first on PATH: each `docker`, `docker-compose` and
    // `curl` call is written down with the COMPOSE_API_VERSION it ran with, then the real program runs.
    let traced: TestSshd | undefined;
    let log: string;
    beforeAll(async () => {
      const bin = join(root, 'traced-bin');
      log = join(root, 'traced.log');
      mkdirSync(bin);
      for (const tool of ['docker', 'docker-compose', 'curl']) {
        const real = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
        const wrapper = `#!/bin/sh\necho "api=\${COMPOSE_API_VERSION:-} ${tool} $*" >> ${log}\nexec ${real} "$@"\n`;
        writeFileSync(join(bin, tool), wrapper, { mode: 0o755 });
      }
      writeFileSync(log, '');
      handOver(log);
      traced = await startSshd('e2e-traced', root, key, {
        PATH: `${bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
        DOCKER_HOST: env.DOCKER_HOST!,
      });
      handOver(traced.dir);
    });
    afterAll(async () => {
      await traced?.stop();
    });
    const viaTraced = (): Registry => {
      fleetRegistry({ repository: repo, deadline: '8s' });
      const raw = JSON.parse(readFileSync(join(root, 'registry.json'), 'utf8'));
      Object.assign(raw.servers[0], { port: traced!.port, hostKey: traced!.hostKey });
      return parseRegistry(JSON.stringify(raw), join(root, 'registry.json'));
    };
    /** The calls written down since the log was last read. */
    const calls = () => {
      const lines = readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
      writeFileSync(log, '');
      return lines;
    };
    const ups = (lines: string[]) =>
      lines
        .filter((l) => / docker-compose .* up -d/.test(l))
        .map((l) => `${/-p (\S+)/.exec(l)?.[1]} ${l.split(' ')[0]}`)
        .sort();

    test("two tenants of one server: one GET /_ping, and both switches run with the version it said (the engine CLI's)", async () => {
      const api = docker(['version', '--format', '{{.Server.APIVersion}}']);
      expect(api).toMatch(/^1\.\d+$/);
      calls();
      const report = await deploy(viaTraced(), key, 'v1');
      expect(report.targets.map((r) => [r.id, r.outcome, r.error])).toEqual([
        ['e2e-1/alpha', 'deployed', undefined],
        ['e2e-1/beta', 'deployed', undefined],
      ]);
      const lines = calls();
      // the ask: the engine's socket pinged once, for both tenants; its answer the one `docker version` gives
      expect(lines.filter((l) => / curl .*_ping$/.test(l))).toEqual([
        `api= curl -fsS --max-time 10 -o /dev/null -D - --unix-socket ${env.DOCKER_HOST!.replace('unix://', '')} http://engine/_ping`,
      ]);
      expect(lines.filter((l) => l.includes(' docker version '))).toEqual([]);
      expect(ups(lines)).toEqual([`e2e-alpha api=${api}`, `e2e-beta api=${api}`]);
      for (const t of tenants) expect(await health(t)).toBe('200 {"status":"ok","version":"v1"}');
    }, 120_000);

    test('a tenant whose .env names its own engine is left to ask it; the other still runs pinned', async () => {
      const api = docker(['version', '--format', '{{.Server.APIVersion}}']);
      const beta = tenants[1]!;
      writeFileSync(join(beta.dir, '.env'), `${envText(beta, 'v1')}DOCKER_HOST=${env.DOCKER_HOST}\n`);
      handOver(join(beta.dir, '.env'));
      calls();
      try {
        const report = await deploy(viaTraced(), key, 'v2');
        expect(report.targets.map((r) => [r.id, r.outcome, r.error])).toEqual([
          ['e2e-1/alpha', 'deployed', undefined],
          ['e2e-1/beta', 'deployed', undefined],
        ]);
        expect(ups(calls())).toEqual([`e2e-alpha api=${api}`, 'e2e-beta api=']);
        for (const t of tenants) expect(await health(t)).toBe('200 {"status":"ok","version":"v2"}');
      } finally {
        writeFileSync(join(beta.dir, '.env'), envText(beta, 'v2'));
        handOver(join(beta.dir, '.env'));
      }
    }, 120_000);
  });

  describe('a compose file in a subdirectory of the tenant (Compose would read .env from there)', () => {
    let gamma: Tenant;
    beforeAll(async () => {
      const dir = join(root, 'tenants', 'gamma');
      mkdirSync(join(dir, 'deploy', 'static'), { recursive: true });
      gamma = { id: 'gamma', dir, port: await freePort(), project: 'e2e-gamma' };
      writeFileSync(
        join(dir, 'deploy', 'compose.yml'),
        appCompose(['    volumes:', '      - ./static:/srv/static:ro']),
      );
      writeFileSync(join(dir, '.env'), envText(gamma, 'v1'));
      handOver(dir);
    });
    /** One server, gamma alone, its compose file `deploy/compose.yml`. */
    const gammaRegistry = (): Registry => {
      fleetRegistry({ repository: repo, deadline: '8s' });
      const raw = JSON.parse(readFileSync(join(root, 'registry.json'), 'utf8'));
      const [a] = raw.servers[0].tenants;
      raw.servers[0].tenants = [
        {
          ...a,
          id: gamma.id,
          path: gamma.dir,
          compose: { ...a.compose, file: 'deploy/compose.yml' },
          health: { ...a.health, port: gamma.port },
        },
      ];
      return parseRegistry(JSON.stringify(raw), join(root, 'registry.json'));
    };

    test("Compose is given the tenant's .env: v1, then v2, deployed and running; the file's paths still resolve from its directory", async () => {
      for (const version of ['v1', 'v2']) {
        const report = await deploy(gammaRegistry(), key, version);
        expect(report.targets.map((r) => [r.id, r.outcome, r.error])).toEqual([
          ['e2e-1/gamma', 'deployed', undefined],
        ]);
        expect(await health(gamma)).toBe(`200 {"status":"ok","version":"${version}"}`);
        expect(envOf(gamma)).toBe(envText(gamma, version));
      }
      const v2 = docker(['image', 'inspect', '--format', '{{.Id}}', `${repo}:v2`]);
      expect(runningImages(gamma)).toEqual([v2]);
      const id = docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${gamma.project}`]);
      expect(docker(['inspect', '--format', '{{range .Mounts}}{{.Source}}{{end}}', id])).toBe(
        join(gamma.dir, 'deploy', 'static'),
      );
    }, 120_000);
  });

  describe('hibernated tenants: paused and stopped on the real engine', () => {
    const [alpha, beta] = [() => tenants[0]!, () => tenants[1]!];
    const containerOf = (t: Tenant) =>
      docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${t.project}`]);
    const stateOf = (t: Tenant) => docker(['inspect', '--format', '{{.State.Status}}', containerOf(t)]);
    const hibernateStep = (r: { steps: { step: string; ok: boolean; detail?: string }[] }) =>
      r.steps.find((x) => x.step === 'hibernate');

    test('"restore" (the default): a paused and a stopped tenant are deployed, gated and put back to sleep', async () => {
      docker(['pause', containerOf(alpha())]);
      docker(['stop', containerOf(beta())]);
      expect([stateOf(alpha()), stateOf(beta())]).toEqual(['paused', 'exited']);
      const report = await deploy(registry, key, 'v1');
      expect(report.targets.map((r) => [r.id, r.outcome, r.error])).toEqual([
        ['e2e-1/alpha', 'deployed', undefined],
        ['e2e-1/beta', 'deployed', undefined],
      ]);
      expect(report.targets.map(hibernateStep)).toEqual([
        expect.objectContaining({ ok: true, detail: 'paused again, as before the deploy' }),
        expect.objectContaining({ ok: true, detail: 'stopped again, as before the deploy' }),
      ]);
      // the new release passed its gate before it went back to sleep
      for (const r of report.targets) expect(r.steps.find((x) => x.step === 'health')?.ok).toBe(true);
      expect([stateOf(alpha()), stateOf(beta())]).toEqual(['paused', 'exited']);
      for (const t of tenants) {
        expect(docker(['inspect', '--format', '{{.Config.Image}}', containerOf(t)])).toBe(`${repo}:v1`);
        expect(envOf(t)).toBe(envText(t, 'v1'));
        expect(lockExists(t)).toBe(false);
      }
    }, 120_000);

    test('"wake": the same tenants are deployed and left running', async () => {
      const report = await deploy(
        fleetRegistry({ repository: repo, deadline: '8s', hibernated: 'wake' }),
        key,
        'v2',
      );
      expect(report.targets.map((r) => [r.id, r.outcome, r.error])).toEqual([
        ['e2e-1/alpha', 'deployed', undefined],
        ['e2e-1/beta', 'deployed', undefined],
      ]);
      expect(report.targets.map(hibernateStep)).toEqual([
        expect.objectContaining({ ok: true, detail: 'was paused; left running (hibernated: "wake")' }),
        expect.objectContaining({ ok: true, detail: 'was stopped; left running (hibernated: "wake")' }),
      ]);
      for (const t of tenants) {
        expect(stateOf(t)).toBe('running');
        expect(runningImages(t)).toEqual([imageIds.v2]);
        expect(await health(t)).toBe('200 {"status":"ok","version":"v2"}');
        expect(envOf(t)).toBe(envText(t, 'v2'));
      }
    }, 120_000);
  });

  describe('private images: a registry that requires a login (htpasswd)', () => {
    const privateRef = () => env.FLEET_E2E_IMAGE_PRIVATE!;
    const password = () => readFileSync(env.FLEET_E2E_AUTH_PASSWORD_FILE!, 'utf8').trim();
    const login = (extra: { password?: string; keep?: boolean } = {}) => ({
      registry: {
        logins: [
          {
            host: env.FLEET_E2E_AUTH_REGISTRY!,
            username: env.FLEET_E2E_AUTH_USER!,
            password: extra.password ?? password(),
          },
        ],
        keep: extra.keep ?? false,
      },
    });
    /** Files a registry login writes (docker's config.json, podman's auth.json) that the deploy user made since `since`. */
    const credentialFiles = (since: string) =>
      execFileSync(
        'find',
        [
          '/tmp',
          '/var/tmp',
          deployHome,
          '-user',
          DEPLOY_USER,
          '-newer',
          since,
          '(',
          '-name',
          'config.json',
          '-o',
          '-name',
          'auth.json',
          ')',
        ],
        { encoding: 'utf8' },
      )
        .split('\n')
        .filter(Boolean);
    let marker: string;
    beforeEach(() => {
      marker = join(root, `marker-${Date.now()}`);
      writeFileSync(marker, '');
    });

    test('without credentials: the pull is refused, the error says so and how to log in; nothing changes', async () => {
      const report = await deploy(privateRegistry, key, 'v2');
      for (const [i, t] of tenants.entries()) {
        const r = report.targets[i]!;
        expect(r.outcome).toBe('failed');
        expect(r.error).toMatch(
          new RegExp(
            `^pull ${privateRef().replace(/[.]/g, '\\.')} failed: exit code \\d+: .*(unauthorized|authentication required)`,
            'i',
          ),
        );
        expect(r.error).toContain(
          'the registry wants credentials: set FLEET_REGISTRY_HOST, FLEET_REGISTRY_USERNAME and FLEET_REGISTRY_PASSWORD',
        );
        expect(envOf(t)).toBe(envText(t, 'v2'));
        expect(await health(t)).toBe('200 {"status":"ok","version":"v2"}');
        expect(lockExists(t)).toBe(false);
      }
    }, 90_000);

    test('with credentials: deployed from it; no credential left on the server; the password in no output, history or lock', async () => {
      const steps: string[] = [];
      const report = await deploy(privateRegistry, key, 'v2', {
        options: login(),
        onStep: (e) => steps.push(JSON.stringify(e)),
      });
      expect(report.targets.map((r) => [r.id, r.outcome, r.error])).toEqual([
        ['e2e-1/alpha', 'deployed', undefined],
        ['e2e-1/beta', 'deployed', undefined],
      ]);
      for (const t of tenants) {
        expect(envOf(t)).toContain(`APP_IMAGE=${privateRef()}\n`);
        expect(await health(t)).toBe('200 {"status":"ok","version":"v2"}');
        expect(lockExists(t)).toBe(false);
        expect(readFileSync(join(t.dir, '.fleet', 'history.jsonl'), 'utf8')).not.toContain(password());
      }
      // The throwaway config held the login during the pull and is gone; the engine's own config has none.
      expect(credentialFiles(marker)).toEqual([]);
      expect(existsSync(join(deployHome, '.docker', 'config.json'))).toBe(false);
      expect(JSON.stringify(report)).not.toContain(password());
      expect(steps.join('\n')).not.toContain(password());
    }, 90_000);

    test("keep-registry-login: the login stays in the engine's own config (so the check above can fail)", async () => {
      const config = join(deployHome, '.docker', 'config.json');
      try {
        const report = await deploy(privateRegistry, key, 'v2', { options: login({ keep: true }) });
        expect(report.targets.map((r) => r.outcome)).toEqual(['unchanged', 'unchanged']);
        expect(credentialFiles(marker)).toEqual([config]);
        expect(readFileSync(config, 'utf8')).toContain(env.FLEET_E2E_AUTH_REGISTRY!);
      } finally {
        rmSync(join(deployHome, '.docker'), { recursive: true, force: true });
      }
    }, 90_000);

    test('a wrong password: the login is refused by name, nothing is pulled or changed, and it is not echoed', async () => {
      const wrong = 'not-the-password-4711';
      const report = await deploy(privateRegistry, key, 'v2', { options: login({ password: wrong }) });
      for (const [i, t] of tenants.entries()) {
        const r = report.targets[i]!;
        expect(r.outcome).toBe('failed');
        expect(r.error).toContain(`registry login to ${env.FLEET_E2E_AUTH_REGISTRY} as fleet failed`);
        expect(r.steps.filter((s) => s.step === 'pull')).toHaveLength(1);
        expect(envOf(t)).toContain(`APP_IMAGE=${privateRef()}\n`);
      }
      expect(JSON.stringify(report)).not.toContain(wrong);
      expect(credentialFiles(marker)).toEqual([]);
    }, 90_000);
  });
});
