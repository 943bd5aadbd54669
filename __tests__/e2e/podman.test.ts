/**
 * End to end with a REAL container engine: the deploy engine over real OpenSSH to a deploy user whose
 * `docker` and `docker-compose` (Debian's compose 1.29) talk to podman's Docker-compatible API, pulling
 * from a real registry (engine-up.sh). Two tenants on one server, each its own compose project on host
 * networking. Covers: a fresh start, an upgrade, a bad release rolled back, and a no-op redeploy.
 *
 * Needs root (engine-up.sh installs packages and runs podman) and /usr/sbin/sshd; skipped otherwise.
 * The engine state lives in a temp dir and is torn down (engine-down.sh --purge) in afterAll.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { deploy } from '../helpers/deploy';
import { DEPLOY_USER, ensureDeployUser, freePort, handOver, haveSshd } from '../../src/testing';
import { makeClientKey, startSshd, tempRoot, type ClientKey, type TestSshd } from '../helpers/sshd';
import { parseRegistry, type Registry } from '../../src/registry';

const isRoot = process.getuid?.() === 0;
const skipReason = !isRoot
  ? 'e2e podman test needs root (engine-up.sh installs packages and runs podman): skipped'
  : !haveSshd
    ? 'e2e podman test needs /usr/sbin/sshd (apt-get install openssh-server): skipped'
    : undefined;
if (skipReason) console.warn(skipReason);
const describeE2e = skipReason ? describe.skip : describe;

const E2E_DIR = resolve('__tests__/e2e');
const SETUP_TIMEOUT_MS = 300_000;
const TEARDOWN_TIMEOUT_MS = 120_000;

/** Runs a command asynchronously (so jest's timers keep working), bounded by `timeoutMs`. */
function run(
  cmd: string,
  args: string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveP, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => (clearTimeout(timer), reject(e)));
    child.once('close', (code) => (clearTimeout(timer), resolveP({ code, stdout, stderr })));
  });
}

/** The `export` lines engine-up.sh wrote, as bash reads them (values are %q-quoted). */
function readEngineEnv(file: string): Record<string, string> {
  const out = execFileSync('bash', ['-c', 'set -a && . "$1" && env -0', 'read-env', file], {
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin' },
  });
  const vars: Record<string, string> = {};
  for (const entry of out.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) vars[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return vars;
}

interface Tenant {
  id: string;
  dir: string;
  port: number;
  project: string;
}

describeE2e('e2e: real podman engine, registry, docker-compose 1.29 and sshd', () => {
  const t0 = Date.now();
  let root: string | undefined;
  let state: string | undefined;
  let engineStarted = false;
  let sshd: TestSshd | undefined;
  let key: ClientKey;
  let registry: Registry;
  /** The same fleet with its images in the registry that requires a login. */
  let privateRegistry: Registry;
  let deployHome: string;
  let env: Record<string, string>;
  let dockerEnv: NodeJS.ProcessEnv;
  let registryHost: string;
  let repo: string;
  const tenants: Tenant[] = [];
  const imageIds: Record<string, string> = {};

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
  /** The engine's view, as root straight through the socket (not through the tool). */
  const docker = (args: string[]) =>
    execFileSync('docker', args, { env: dockerEnv, encoding: 'utf8', timeout: 30_000 }).trim();
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

  beforeAll(async () => {
    ensureDeployUser();
    root = tempRoot('fd-e2e-');
    chmodSync(root, 0o711); // the deploy user may traverse, not list
    state = join(root, 'engine');
    mkdirSync(state, { mode: 0o700 });

    // 1. The engine stack: podman API, registry, images v1/v2/bad.
    engineStarted = true; // from here on afterAll runs engine-down.sh, whatever engine-up.sh got to
    const up = await run('bash', [join(E2E_DIR, 'engine-up.sh'), state], SETUP_TIMEOUT_MS - 20_000);
    if (up.code !== 0) throw new Error(`engine-up.sh failed (exit ${up.code}):\n${up.stderr}`);
    env = readEngineEnv(join(state, 'env'));
    registryHost = env.FLEET_E2E_REGISTRY!;
    repo = `${registryHost}/fleet/app`;
    expect(env.DOCKER_HOST).toBe(`unix://${join(state, 'podman.sock')}`);
    expect(env.FLEET_E2E_DIGEST_V1).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(env.FLEET_E2E_DIGEST_V2).toMatch(/^sha256:[0-9a-f]{64}$/);
    dockerEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: root, DOCKER_HOST: env.DOCKER_HOST };

    // 2. The deploy user reaches the socket through its own group (like the docker group), and only
    //    the socket in this test's temp dir is opened up.
    const group = execFileSync('id', ['-gn', DEPLOY_USER], { encoding: 'utf8' }).trim();
    const sock = join(state, 'podman.sock');
    execFileSync('chgrp', [group, state, sock]);
    chmodSync(state, 0o710);
    chmodSync(sock, 0o660);
    const home = execFileSync('getent', ['passwd', DEPLOY_USER], { encoding: 'utf8' }).split(':')[5]!;
    deployHome = home;
    const asUser = (argv: string[]) =>
      execFileSync(
        'runuser',
        [
          '-u',
          DEPLOY_USER,
          '--',
          'env',
          '-i',
          `HOME=${home}`,
          'PATH=/usr/local/bin:/usr/bin:/bin',
          `DOCKER_HOST=${env.DOCKER_HOST}`,
          ...argv,
        ],
        { encoding: 'utf8', timeout: 30_000, cwd: '/' },
      );
    expect(asUser(['docker', 'version', '--format', '{{.Server.Version}}']).trim()).toMatch(/^\d+\.\d+/);
    expect(asUser(['docker-compose', 'version', '--short']).trim()).toMatch(/^1\.29\./);

    // 3. One real sshd whose sessions get the real docker/docker-compose (not the sandbox double that
    //    startSshd puts first on PATH by default) and the engine's socket.
    key = makeClientKey(join(root, 'client'));
    sshd = await startSshd('e2e', root, key, {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      DOCKER_HOST: env.DOCKER_HOST!,
    });
    handOver(sshd.dir); // authorized_keys is read as the deploy user

    // 4. Two tenants, each a compose project of its own on host networking.
    const tenantsRoot = join(root, 'tenants');
    for (const id of ['alpha', 'beta']) {
      const dir = join(tenantsRoot, id);
      mkdirSync(dir, { recursive: true });
      const t: Tenant = { id, dir, port: await freePort(), project: `e2e-${id}` };
      writeFileSync(
        join(dir, 'docker-compose.yml'),
        [
          'services:',
          '  app:',
          '    image: ${APP_IMAGE}',
          '    network_mode: host',
          '    environment:',
          '      APP_PORT: ${APP_PORT}',
          '',
        ].join('\n'),
      );
      writeFileSync(join(dir, '.env'), envText(t, 'v1'));
      tenants.push(t);
    }
    handOver(tenantsRoot);
    const raw = {
      servers: [
        {
          name: 'e2e-1',
          host: '127.0.0.1',
          port: sshd.port,
          user: sshd.user,
          hostKey: sshd.hostKey,
          region: 'local',
          tenants: tenants.map((t) => ({
            id: t.id,
            path: t.dir,
            compose: { command: 'docker-compose', project: 'e2e-{tenant}' },
            images: [{ variable: 'APP_IMAGE', repository: repo }],
            health: {
              port: t.port,
              path: '/health',
              json: { status: 'ok', version: '{version}' },
              interval: '300ms',
              timeout: '2s',
              deadline: '8s',
              successes: 2,
            },
            minFreeDiskMb: 1,
          })),
        },
      ],
    };
    const registryFile = join(root, 'registry.json');
    writeFileSync(registryFile, JSON.stringify(raw, null, 2));
    registry = parseRegistry(JSON.stringify(raw), registryFile);
    for (const t of raw.servers[0]!.tenants)
      t.images = [{ variable: 'APP_IMAGE', repository: `${env.FLEET_E2E_AUTH_REGISTRY}/fleet/private` }];
    privateRegistry = parseRegistry(JSON.stringify(raw), registryFile);
    console.log(`e2e setup took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    const problems: string[] = [];
    await sshd?.stop();
    if (state && engineStarted) {
      const down = await run(
        'bash',
        [join(E2E_DIR, 'engine-down.sh'), '--purge', state],
        TEARDOWN_TIMEOUT_MS - 10_000,
      );
      if (down.code !== 0) problems.push(`engine-down.sh failed (exit ${down.code}):\n${down.stderr}`);
    }
    // Only delete the rest when the engine is really down (no overlay mounts left under root).
    if (root && problems.length === 0) rmSync(root, { recursive: true, force: true });
    console.log(`e2e file took ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
    if (problems.length) throw new Error(problems.join('\n'));
  }, TEARDOWN_TIMEOUT_MS);

  /** Steps that did not succeed, as "step: detail" (step names are the engine's; only failures matter here). */
  const failedSteps = (r: { steps: { step: string; ok: boolean; detail?: string }[] }) =>
    r.steps.filter((s) => !s.ok).map((s) => `${s.step}: ${s.detail}`);

  test('v1 on a fresh server (nothing running): deployed and healthy on v1', async () => {
    for (const t of tenants) expect(runningImages(t)).toEqual([]);
    const before = sshd!.handshakes();
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
    }
    // The real engine ran it, not the sandbox double.
    expect(existsSync(join(sshd!.dir, 'sandbox'))).toBe(false);
    expect(report.handshakes).toBe(1);
    expect(sshd!.handshakes() - before).toBe(1);
  }, 90_000);

  test('v1 → v2: deployed, .env switched with other lines untouched, ids and digests reported, history, no lock', async () => {
    const before = sshd!.handshakes();
    const report = await deploy(registry, key, 'v2');
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
    expect(sshd!.handshakes() - before).toBe(1);
  }, 90_000);

  test('v2 → bad: the health gate fails, rolled back automatically, healthy on v2 with .env on v2', async () => {
    const before = sshd!.handshakes();
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
    expect(sshd!.handshakes() - before).toBe(1);
  }, 90_000);

  test('v2 again: unchanged, nothing recreated, no history entry', async () => {
    const containers = (t: Tenant) =>
      docker(['ps', '-q', '--no-trunc', '--filter', `label=com.docker.compose.project=${t.project}`]);
    const ids = tenants.map(containers);
    const before = sshd!.handshakes();
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
    expect(sshd!.handshakes() - before).toBe(1);
  }, 90_000);

  describe('private images: a registry that requires a login (htpasswd)', () => {
    const privateRef = () => env.FLEET_E2E_IMAGE_PRIVATE!;
    const password = () => readFileSync(env.FLEET_E2E_AUTH_PASSWORD_FILE!, 'utf8').trim();
    const login = (extra: { password?: string; keep?: boolean } = {}) => ({
      registry: {
        username: env.FLEET_E2E_AUTH_USER!,
        password: extra.password ?? password(),
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
      marker = join(root!, `marker-${Date.now()}`);
      writeFileSync(marker, '');
    });

    test('without credentials: the pull is refused, the error says so and how to log in; nothing changes', async () => {
      const report = await deploy(privateRegistry, key, 'v2');
      for (const [i, t] of tenants.entries()) {
        const r = report.targets[i]!;
        expect(r.outcome).toBe('failed');
        expect(r.error).toMatch(
          new RegExp(
            `^pull ${privateRef().replace(/[.]/g, '\\.')} failed after 2 attempts: exit code \\d+: .*(unauthorized|authentication required)`,
            'i',
          ),
        );
        expect(r.error).toContain(
          'the registry wants credentials: set FLEET_REGISTRY_USERNAME and FLEET_REGISTRY_PASSWORD',
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
