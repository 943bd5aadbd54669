/**
 * The deploy action's bundle (dist/actions/deploy.js and its post step) run as the runner runs it,
 * against real sshd (tenants on the SANDBOX runtime, the docker double).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { actionEnv, runBundledAction } from '../helpers/run';
import { handOver, haveSshd } from '../../src/testing';
import { historyOf, lockExists, startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;
if (!haveSshd)
  console.warn('skipped: integration tests need /usr/sbin/sshd (npm run setup as root installs it)');

describeSshd('actions/deploy', () => {
  let fleet: TestFleet;
  let registryFile: string;
  beforeAll(async () => {
    fleet = await startFleet({ servers: 2, tenantsPerServer: 1, startWith: 'v1' });
    registryFile = join(fleet.root, 'registry.json');
  }, 60_000);
  afterAll(async () => fleet?.stop());

  test('deploys the targets of a matrix entry; outputs, report file, masked key', () => {
    const r = runBundledAction(
      'dist/actions/deploy.js',
      {
        registry: registryFile,
        version: 'v2',
        targets: 'srv-1/t1-1 srv-2/t2-1',
        'ssh-key': fleet.key.privateKey,
      },
      {},
      60_000,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.outputs).toMatchObject({ outcome: 'deployed', deployed: '2', failed: '0', 'rolled-back': '0' });
    expect(JSON.parse(r.outputs.report!).targets.map((t: any) => t.outcome)).toEqual([
      'deployed',
      'deployed',
    ]);
    expect(r.stdout).toContain('::group::srv-1/t1-1: deployed');
    // The key reaches the runner only in mask commands (which the runner consumes), never in the log.
    const logged = r.stdout
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n');
    expect(r.stdout).toContain('::add-mask::');
    for (const line of fleet.key.privateKey.split('\n').filter((l) => l.length > 20))
      expect(logged).not.toContain(line);
    expect(JSON.parse(r.state['fleet-deploy-locks']!)).toEqual([]);
  }, 60_000);

  test('a registry login: the password masked, shown in a dry run only as <password on stdin>', () => {
    const password = 'hunter2-s3cret-token';
    const r = runBundledAction('dist/actions/deploy.js', {
      registry: registryFile,
      versions: 'APP_IMAGE=v3',
      targets: 'srv-1/t1-1',
      'registry-host': 'registry.test',
      'registry-username': 'bot',
      'registry-password': password,
      'dry-run': 'true',
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`::add-mask::${password}`);
    expect(r.stdout).toContain('docker login --username bot --password-stdin registry.test');
    expect(r.stdout).toContain('# stdin: <password on stdin>');
    expect(r.stdout).toContain('docker pull -q registry.test/acme/app:v3');
    const logged = r.stdout
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n');
    expect(logged + r.stderr).not.toContain(password);
  });

  test('bad inputs fail before any server is touched, naming the input', () => {
    const before = [...fleet.sshds.values()].map((s) => s.handshakes());
    const unknown = runBundledAction('dist/actions/deploy.js', {
      registry: registryFile,
      version: 'v2',
      targets: 'srv-1/nope',
      'ssh-key': 'x',
    });
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toContain(
      'input \\"targets\\": \\"srv-1/nope\\" is not a target'.replaceAll('\\"', '"'),
    );
    const version = runBundledAction('dist/actions/deploy.js', {
      registry: registryFile,
      version: 'v2;reboot',
      'ssh-key': 'x',
    });
    expect(version.stdout).toContain('input "version": "v2;reboot" is neither an image tag nor a digest');
    const key = runBundledAction('dist/actions/deploy.js', { registry: registryFile, version: 'v2' });
    expect(key.stdout).toContain('input "ssh-key": is required');
    expect([...fleet.sshds.values()].map((s) => s.handshakes())).toEqual(before);
  });

  test("pre-pull-wave (deploy.yml's prepull-N): only wave N's server pulls; nothing switched or locked; a failed pull is a warning", () => {
    const envs = () => fleet.tenants.map((t) => fleet.env(t));
    const before = envs();
    const prePull = (version: string) =>
      runBundledAction(
        'dist/actions/deploy.js',
        {
          registry: registryFile,
          version,
          waves: '1,100%',
          'pre-pull-wave': '2',
          'ssh-key': fleet.key.privateKey,
        },
        {},
        60_000,
      );
    const r = prePull('v5');
    expect(r.code).toBe(0);
    const pulled = r.stdout.split('\n').filter((l) => / on srv-\d: pulled in /.test(l));
    expect(pulled).toEqual([expect.stringMatching(/^pre-pull of wave 2's \S+:v5 on srv-\d: pulled in /)]);
    expect(r.stdout).not.toContain('::warning::');
    expect(r.stdout).not.toContain('::error::');
    expect(envs()).toEqual(before); // no .env switched, on either server
    for (const t of fleet.tenants) expect(lockExists(t)).toBe(false);
    expect(r.outputs).toMatchObject({ outcome: 'skipped' });

    const failed = prePull('missing-9'); // the runtime has no such image: the pull fails
    expect(failed.code).toBe(0);
    expect(failed.stdout).toMatch(/::warning::pre-pull of wave 2's \S+:missing-9 on srv-\d: failed: /);
    expect(failed.stdout).not.toContain('::error::');
    expect(envs()).toEqual(before);

    const off = runBundledAction('dist/actions/deploy.js', {
      registry: registryFile,
      version: 'v5',
      waves: '1,100%',
      'pre-pull-wave': '2',
      'pre-pull': 'false',
      'ssh-key': fleet.key.privateKey,
    });
    expect(off.code).toBe(0);
    expect(off.stdout).toContain('No pre-pull of wave 2: pre-pull is false');
  }, 60_000);

  test('a rolled-back target fails the step with an annotation', () => {
    const t = fleet.tenants[0]!;
    writeFileSync(join(t.dir, 'SANDBOX_BREAK'), 'v3\n');
    handOver(join(t.dir, 'SANDBOX_BREAK'));
    const r = runBundledAction(
      'dist/actions/deploy.js',
      { registry: registryFile, version: 'v3', select: 'server=srv-1', 'ssh-key': fleet.key.privateKey },
      {},
      60_000,
    );
    expect(r.code).toBe(1);
    expect(r.outputs.outcome).toBe('rolled-back');
    expect(r.stdout).toMatch(
      /::error title=fleet-deploy%3A srv-1\/t1-1 rolled-back::srv-1\/t1-1: rolled-back: health gate failed/,
    );
    expect(r.stdout).toContain('::error::1 of 1 target(s) not deployed: 0 failed, 1 rolled back, 0 skipped');
  }, 60_000);

  /** Starts the deploy action on a slow release and signals it once its switch has run (mid-gate). */
  async function cancelMidGate(signal: NodeJS.Signals, version: string, inputs: Record<string, string> = {}) {
    const a = actionEnv({
      registry: registryFile,
      version,
      targets: 'srv-2/t2-1',
      'ssh-key': fleet.key.privateKey,
      ...inputs,
    });
    const child = spawn(process.execPath, ['dist/actions/deploy.js'], {
      env: a.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no health step within 30 s:\n${out}`)), 30_000);
      const look = () => {
        if (/srv-2\/t2-1 {2}update {2}ok/.test(out)) {
          clearTimeout(timer);
          child.stdout!.off('data', look);
          child.kill(signal); // the runner cancelling the job
          resolve();
        }
      };
      child.stdout!.on('data', look);
    });
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    return { a, code, out: () => out };
  }

  test('a cancelled job (SIGINT mid-gate): the action rolls the target back itself and unlocks', async () => {
    const t = fleet.tenants[1]!; // srv-2/t2-1, on v2
    const before = fleet.env(t);
    const { a, out } = await cancelMidGate('SIGINT', 'slow-8');
    expect(out()).toContain('SIGINT: cancelling');
    expect(out()).toMatch(/srv-2\/t2-1 {2}rollback {2}ok/);
    expect(fleet.env(t)).toBe(before);
    expect(lockExists(t)).toBe(false);
    expect(historyOf(t).at(-1)).toMatchObject({ outcome: 'cancelled', to: 'slow-8' }); // rolled back, cancelled
    expect(JSON.parse(a.state()['fleet-deploy-locks']!)).toEqual([]);
  }, 60_000);

  test('a job killed mid-gate: the post step switches the target back, notes it and releases the lock', async () => {
    const t = fleet.tenants[1]!;
    const before = fleet.env(t);
    const { a } = await cancelMidGate('SIGKILL', 'slow-9');
    expect(lockExists(t)).toBe(true);
    expect(fleet.env(t)).toContain('slow-9');
    const saved = a.state()['fleet-deploy-locks']!;
    expect(JSON.parse(saved)).toEqual([
      expect.objectContaining({ target: 'srv-2/t2-1', held: true, switching: expect.any(Object) }),
    ]);
    const post = runBundledAction(
      'dist/actions/deploy-post.js',
      { registry: registryFile, 'ssh-key': fleet.key.privateKey },
      { 'STATE_fleet-deploy-locks': saved },
      30_000,
    );
    expect(post.code).toBe(0);
    expect(post.stdout).toContain('srv-2/t2-1: cut off during the switch to slow-9: switched back to');
    expect(post.stdout).toContain('srv-2/t2-1: lock released');
    expect(lockExists(t)).toBe(false);
    expect(fleet.env(t)).toBe(before);
    expect(historyOf(t).at(-1)).toMatchObject({ outcome: 'cancelled', from: 'slow-9', rollback: true });
  }, 60_000);

  test('force-stopped, and the server away during the post step: the post step gives up within its window; the lease runs out by itself and the next deploy takes over', async () => {
    const t = fleet.tenants[1]!;
    const before = fleet.env(t);
    const window = { 'recovery-window': '3s' };
    const { a } = await cancelMidGate('SIGKILL', 'slow-10', window);
    expect(lockExists(t)).toBe(true);
    const sshd = fleet.sshds.get('srv-2')!;
    sshd.kill();
    let post;
    try {
      post = runBundledAction(
        'dist/actions/deploy-post.js',
        { registry: registryFile, 'ssh-key': fleet.key.privateKey, ...window },
        { 'STATE_fleet-deploy-locks': a.state()['fleet-deploy-locks']! },
        30_000,
      );
    } finally {
      await sshd.restart();
    }
    expect(post.code).toBe(0);
    expect(post.stdout).toMatch(
      /srv-2\/t2-1: left as it is: the server did not answer \(.*\): its lease runs out by itself and the next deploy takes it over and mends it/,
    );
    expect(lockExists(t)).toBe(true);
    // no person: once the lease (the window, a renewal interval and timeout, and 2 s) has run out on the server's clock, a deploy takes it over
    const lease = () => Number(readFileSync(join(t.dir, '.fleet', 'lock', 'lease'), 'utf8'));
    for (let i = 0; i < 250 && Date.now() / 1000 < lease() + 1; i++)
      await new Promise((w) => setTimeout(w, 100));
    const next = runBundledAction(
      'dist/actions/deploy.js',
      { registry: registryFile, version: 'v7', targets: 'srv-2/t2-1', 'ssh-key': fleet.key.privateKey },
      {},
      60_000,
    );
    expect(next.code).toBe(0);
    const steps = JSON.parse(next.outputs.report!).targets[0].steps;
    expect(steps.find((s: { step: string }) => s.step === 'take over').detail).toMatch(
      /its lease ran out \d+ s ago; it was cut off switching \S+ → slow-10: switched back to \S+ \(reverted\), history noted$/,
    );
    expect(historyOf(t).slice(-2)).toMatchObject([
      { outcome: 'failed', to: 'slow-10' },
      { outcome: 'deployed', to: 'v7' },
    ]);
    expect(lockExists(t)).toBe(false);
    expect(fleet.env(t)).toBe(before.replace(/:[^:\n]+\n/, ':v7\n'));
  }, 90_000);

  test('the post step with nothing held does nothing', () => {
    const post = runBundledAction('dist/actions/deploy-post.js', {}, {});
    expect(post.code).toBe(0);
    expect(post.stdout).toContain('No fleet-deploy lock left to release.');
  });

  test('one server without a registry: the target from inputs (as from repository secrets)', () => {
    const t = fleet.tenants[0]!;
    const sshd = fleet.sshds.get('srv-1')!;
    const single = {
      host: '127.0.0.1',
      'ssh-port': String(sshd.port),
      'ssh-user': sshd.user,
      'host-key': sshd.hostKey,
      path: t.dir,
      'image-repository': 'registry.test/acme/app',
      'health-port': String(t.port),
      'ssh-key': fleet.key.privateKey,
    };
    const r = runBundledAction('dist/actions/deploy.js', { ...single, version: 'v5' }, {}, 60_000);
    expect(r.code).toBe(0);
    expect(r.outputs).toMatchObject({ outcome: 'deployed', deployed: '1' });
    expect(JSON.parse(r.outputs.report!).targets[0]).toMatchObject({
      id: 'server/app',
      next: { version: 'v5' },
    });
    const plan = runBundledAction('dist/actions/plan.js', {
      host: '127.0.0.1',
      path: t.dir,
      'image-repository': 'registry.test/acme/app',
      'health-port': '8080',
    });
    expect(JSON.parse(plan.outputs.matrices!)).toEqual([
      { include: [{ name: 'server/app', targets: 'server/app', count: 1, wave: 1 }] },
    ]);
    const bad = runBundledAction('dist/actions/deploy.js', { ...single, path: '~/app', version: 'v5' });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('input "path": "~/app" is not a valid path');
    const none = runBundledAction('dist/actions/deploy.js', {
      host: '127.0.0.1',
      'image-repository': 'r/app',
      version: 'v5',
      'ssh-key': 'k',
    });
    expect(none.stdout).toContain('input "health-port" or "health-url": tenant "app" has no health check');
  }, 60_000);

  test('actions/health: the gate alone, through SSH, with {version}', () => {
    const base = { registry: registryFile, targets: 'srv-1/t1-1', 'ssh-key': fleet.key.privateKey };
    const ok = runBundledAction('dist/actions/health.js', { ...base, version: 'v5' }, {}, 30_000);
    expect(ok.code).toBe(0);
    expect(ok.outputs.healthy).toBe('true');
    expect(ok.stdout).toMatch(/srv-1\/t1-1: healthy \(2\/2 probes\)/);
    const stale = runBundledAction('dist/actions/health.js', { ...base, version: 'v6' }, {}, 30_000);
    expect(stale.code).toBe(1);
    expect(JSON.parse(stale.outputs.results!)).toEqual([
      {
        id: 'srv-1/t1-1',
        ok: false,
        reason: 'not healthy within 4 s (last: version is "v5", expected "v6")',
      },
    ]);
  }, 60_000);
});
