/**
 * The deploy action's bundle shipping a release's files (issue 25) from the caller's checkout
 * ($GITHUB_WORKSPACE), against real sshd (the tenant on the SANDBOX runtime, the docker double): the
 * policy file lands in the tenant directory, the history records its hash, a secret file variable's value
 * is masked and never logged; a job killed mid-gate after its files went in gets the previous files
 * back, byte for byte, from the post step.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { actionEnv, runBundledAction } from '../helpers/run';
import { haveSshd } from '../../src/testing';
import { historyOf, lockExists, startFleet, type TestFleet } from '../helpers/testfleet';

const describeSshd = haveSshd ? describe : describe.skip;

describeSshd('actions/deploy with files', () => {
  let fleet: TestFleet;
  let registryFile: string;
  let repo: string;
  beforeAll(async () => {
    fleet = await startFleet({ servers: 1, tenantsPerServer: 1, startWith: 'v1' });
    repo = join(fleet.root, 'repo');
    mkdirSync(join(repo, 'policy'), { recursive: true });
    writeFileSync(join(repo, 'policy', 'rules.conf'), 'tenant={tenant}\ntoken={POLICY_TOKEN}\n');
    const raw = JSON.parse(readFileSync(join(fleet.root, 'registry.json'), 'utf8'));
    raw.defaults = raw.defaults ?? {};
    raw.defaults.tenant = {
      ...raw.defaults.tenant,
      files: {
        ship: [{ from: 'policy/', to: 'config/policy/', template: true }],
        variables: { POLICY_TOKEN: { env: 'POLICY_TOKEN' } },
      },
    };
    registryFile = join(fleet.root, 'registry-files.json');
    writeFileSync(registryFile, JSON.stringify(raw));
  }, 60_000);
  afterAll(async () => fleet?.stop());

  test('the files ship from the checkout with the release; the secret masked, never logged', () => {
    const secret = 'pol-S3CRET-token-42';
    const r = runBundledAction(
      'dist/actions/deploy.js',
      { registry: registryFile, version: 'v2', 'ssh-key': fleet.key.privateKey },
      { GITHUB_WORKSPACE: repo, POLICY_TOKEN: secret },
      60_000,
    );
    expect(r.stderr).toBe('');
    expect([r.code, r.outputs.outcome]).toEqual([0, 'deployed']);
    const t = fleet.tenants[0]!;
    const text = `tenant=${t.id}\ntoken=${secret}\n`;
    expect(readFileSync(join(t.dir, 'config', 'policy', 'rules.conf'), 'utf8')).toBe(text);
    expect(historyOf(t).at(-1).files).toEqual({
      'config/policy/rules.conf': createHash('sha256').update(text).digest('hex'),
    });
    expect(r.stdout).toContain(`::add-mask::${secret}`);
    const logged = r.stdout
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n');
    expect(logged).not.toContain(secret);
  }, 60_000);
  test('a job killed mid-gate after its files went in: the post step puts the previous files back with the images', async () => {
    const t = fleet.tenants[0]!; // on v2, with the files of the test above
    const file = join(t.dir, 'config', 'policy', 'rules.conf');
    const [before, env] = [readFileSync(file, 'utf8'), fleet.env(t)];
    writeFileSync(join(repo, 'policy', 'rules.conf'), 'tenant={tenant}\nallow=all\n');
    const inputs = { registry: registryFile, 'ssh-key': fleet.key.privateKey };
    const a = actionEnv({ ...inputs, version: 'slow-9' }, { GITHUB_WORKSPACE: repo, POLICY_TOKEN: 'x' });
    const child = spawn(process.execPath, ['dist/actions/deploy.js'], {
      env: a.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no switch within 30 s:\n${out}`)), 30_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (!/ {2}update {2}ok/.test(out)) return;
        clearTimeout(timer);
        child.kill('SIGKILL'); // the runner force-stopping the job mid-gate
        resolve();
      });
    });
    await new Promise((r) => child.once('exit', r));
    expect(readFileSync(file, 'utf8')).toBe(`tenant=${t.id}\nallow=all\n`);
    const post = runBundledAction('dist/actions/deploy-post.js', inputs, {
      'STATE_fleet-deploy-locks': a.state()['fleet-deploy-locks']!,
    });
    expect(post.code).toBe(0);
    expect(post.stdout).toContain(`: cut off during the switch to slow-9: switched back to v2 and its files`);
    expect(readFileSync(file, 'utf8')).toBe(before); // byte for byte
    expect(fleet.env(t)).toBe(env);
    expect(lockExists(t)).toBe(false);
    const sha = (x: string) => createHash('sha256').update(x).digest('hex');
    expect(historyOf(t).at(-1)).toMatchObject({
      outcome: 'cancelled',
      from: 'slow-9',
      to: 'v2',
      rollback: true,
      files: { 'config/policy/rules.conf': sha(before) },
      fromFiles: { 'config/policy/rules.conf': sha(`tenant=${t.id}\nallow=all\n`) },
    });
  }, 90_000);
});
