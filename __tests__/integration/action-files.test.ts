/**
 * The deploy action's bundle shipping a release's files (issue 25) from the caller's checkout
 * ($GITHUB_WORKSPACE), against real sshd (the tenant on the SANDBOX runtime, the docker double): the
 * policy file lands in the tenant directory, the history records its hash, a secret file variable's value
 * is masked and never logged.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBundledAction } from '../helpers/run';
import { haveSshd } from '../../src/testing';
import { historyOf, startFleet, type TestFleet } from '../helpers/testfleet';

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
});
