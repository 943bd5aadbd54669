/**
 * Files shipped with a release (issue 25), without a server: the registry's `files` field (defaults,
 * tenantDefaults, refusals naming field, value and fix) and the local side that reads, checks, templates
 * and hashes them (src/files/local.ts) on a real temporary repository.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigurationError } from '../src/errors';
import { shipFiles } from '../src/files/local';
import { fill, placeholdersIn } from '../src/files/template';
import { parseRegistry, targetsOf } from '../src/registry';
import { History, historyLine, parseHistory } from '../src/deploy/history';
import { baseRegistry, problemsOf, tenant } from './helpers/registry';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const COMPOSE =
  'services:\n  app:\n    image: ${APP_IMAGE}\n    labels:\n      tenant: "{tenant}"\n      policy: "{POLICY}"\n';

let repo: string;
let outside: string;
beforeAll(() => {
  repo = mkdtempSync(join(tmpdir(), 'fd-files-repo-'));
  outside = mkdtempSync(join(tmpdir(), 'fd-files-out-'));
  mkdirSync(join(repo, 'deploy'));
  mkdirSync(join(repo, 'policy', 'rules'), { recursive: true });
  writeFileSync(join(repo, 'deploy', 'docker-compose.yml'), COMPOSE);
  writeFileSync(join(repo, 'policy', 'base.rego'), 'package base\n');
  writeFileSync(join(repo, 'policy', 'rules', 'a.rego'), 'package a\n');
  writeFileSync(join(outside, 'secret.txt'), 'not the repository\n');
  symlinkSync(join(outside, 'secret.txt'), join(repo, 'deploy', 'leak.yml'));
});
afterAll(() => {
  rmSync(repo, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

function registryWith(files: Record<string, unknown>, extra: (r: any) => void = () => {}) {
  const r = baseRegistry();
  r.defaults = { tenant: { files } };
  r.servers[0].tenants.push(tenant('beta', 8081));
  extra(r);
  return r;
}
const parse = (r: unknown) => parseRegistry(JSON.stringify(r), 'reg.json');
const messages = (r: unknown) =>
  problemsOf(JSON.stringify(r)).map((p) => `${JSON.stringify(p.path)} ${p.message} | ${p.hint ?? ''}`);

describe('registry: files', () => {
  test('defaults, tenantDefaults and the tenant merge like other fields: lists replace, variables merge by key', () => {
    const r = registryWith(
      {
        ship: [{ from: 'deploy/docker-compose.yml', to: 'docker-compose.yml', template: true }],
        variables: { POLICY: '1.0' },
      },
      (x) => {
        x.servers[0].tenantDefaults = { files: { variables: { REGION_NOTE: 'eu' } } };
        x.servers[0].tenants[1].files = { ship: [{ from: 'policy/', to: 'config/policy/' }] };
      },
    );
    const [acme, beta] = parse(r).servers[0]!.tenants;
    expect(acme!.files).toEqual({
      ship: [
        {
          from: 'deploy/docker-compose.yml',
          to: 'docker-compose.yml',
          template: true,
          at: ['defaults', 'tenant', 'files', 'ship', 0],
        },
      ],
      variables: { POLICY: { value: '1.0' }, REGION_NOTE: { value: 'eu' } },
    });
    expect(beta!.files!.ship.map((f) => [f.from, f.to])).toEqual([['policy/', 'config/policy/']]);
    expect(parse(baseRegistry()).servers[0]!.tenants[0]!.files).toBeUndefined();
  });

  test.each([
    [{ from: 'a.yml', to: '.env' }, 'to', '.env is the tool'],
    [{ from: 'a.yml', to: '.fleet/x' }, 'to', '.fleet is the tool'],
    [{ from: 'a.yml', to: '../x.yml' }, 'to', '".." segments are not allowed'],
    [{ from: '../a.yml', to: 'x.yml' }, 'from', '".." segments are not allowed'],
    [{ from: '/etc/passwd', to: 'x' }, 'from', 'is not a valid repository path'],
    [{ from: 'a.yml', to: 'x', sha256: 'abc' }, 'sha256', 'must be a sha256'],
  ])('refuses %j (field %s)', (entry, field, says) => {
    const out = messages(registryWith({ ship: [entry] }));
    expect(out.join('\n')).toContain(`"files","ship",0,"${field}"]`);
    expect(out.join('\n')).toContain(says);
  });

  test('two entries to one place, a directory to a file, a pin on a directory: named with the fix', () => {
    const out = messages(
      registryWith({
        ship: [
          { from: 'a.yml', to: 'docker-compose.yml' },
          { from: 'b.yml', to: 'docker-compose.yml' },
          { from: 'policy/', to: 'config/policy' },
          { from: 'rules/', to: 'rules/', sha256: 'a'.repeat(64) },
        ],
      }),
    ).join('\n');
    expect(out).toContain(
      '"docker-compose.yml" is also the "to" of "a.yml" | ship each file to a place of its own',
    );
    expect(out).toContain('"policy/" is a directory but "to" "config/policy" is not one');
    expect(out).toContain('a sha256 pin is for one file, not a directory');
  });
});

describe('local files: read, checked, templated, hashed once', () => {
  const ship = (files: Record<string, unknown>, env: Record<string, string> = {}, checkOnly = false) =>
    shipFiles(targetsOf(parse(registryWith(files))), { root: repo, env, checkOnly });
  const problems = (files: Record<string, unknown>, env: Record<string, string> = {}) => {
    try {
      ship(files, env);
    } catch (e) {
      if (e instanceof ConfigurationError)
        return e.problems.map((p) => `${JSON.stringify(p.path)} ${p.message} | ${p.hint}`).join('\n');
      throw e;
    }
    return '';
  };

  test('a templated compose file and a directory: each target its list, {tenant} and {NAME} filled, ${…} kept', () => {
    const { releases, secrets } = ship(
      {
        ship: [
          { from: 'deploy/docker-compose.yml', to: 'docker-compose.yml', template: true },
          { from: 'policy/', to: 'config/policy/', sha256: undefined },
        ],
        variables: { POLICY: { env: 'POLICY_TOKEN' } },
      },
      { POLICY_TOKEN: 's3cret' },
    );
    expect(secrets).toEqual(['s3cret']);
    const acme = releases.get('eu-1/acme')!;
    const compose = COMPOSE.replace('{tenant}', 'acme').replace('{POLICY}', 's3cret');
    expect(acme.entries).toEqual([
      { to: 'docker-compose.yml', sha256: sha(compose), mode: 0o644, size: compose.length },
      { to: 'config/policy/base.rego', sha256: sha('package base\n'), mode: 0o644, size: 13 },
      { to: 'config/policy/rules/a.rego', sha256: sha('package a\n'), mode: 0o644, size: 10 },
    ]);
    expect(Buffer.from(acme.contents.get(sha(compose))!).toString()).toBe(compose);
    // the other tenant's compose file differs by its id; the policy is the same bytes (one hash)
    const beta = releases.get('eu-1/beta')!;
    expect(beta.entries[0]!.sha256).toBe(sha(compose.replace('acme', 'beta')));
    expect(beta.entries[1]).toEqual(acme.entries[1]);
  });

  test('a pin that matches passes; one that does not is refused with both hashes', () => {
    const good = sha('package base\n');
    expect(problems({ ship: [{ from: 'policy/base.rego', to: 'p.rego', sha256: good }] })).toBe('');
    expect(
      problems({ ship: [{ from: 'policy/base.rego', to: 'p.rego', sha256: 'b'.repeat(64) }] }),
    ).toContain(
      `"sha256"] policy/base.rego has sha256 ${good}, not the pinned ${'b'.repeat(64)} | ship the pinned file`,
    );
  });

  test('a link out of the repository, a missing path, a file given as a directory: refused before any server', () => {
    expect(problems({ ship: [{ from: 'deploy/leak.yml', to: 'x.yml' }] })).toContain(
      'deploy/leak.yml leads out of the repository',
    );
    expect(problems({ ship: [{ from: 'nope.yml', to: 'x.yml' }] })).toContain(
      'nope.yml does not exist in the repository',
    );
    expect(problems({ ship: [{ from: 'policy', to: 'x' }] })).toContain(
      'policy is a directory in the repository',
    );
    expect(problems({ ship: [{ from: 'deploy/', to: 'd/' }] })).toContain(
      'deploy/leak.yml leads out of the repository',
    );
  });

  test('an undeclared {NAME} in a templated file, an unset runner variable: refused (validate passes the latter)', () => {
    expect(
      problems({ ship: [{ from: 'deploy/docker-compose.yml', to: 'c.yml', template: true }] }),
    ).toContain('uses {POLICY}, which is not a declared file variable');
    const unset = {
      ship: [{ from: 'deploy/docker-compose.yml', to: 'c.yml', template: true }],
      variables: { POLICY: { env: 'NOPE_UNSET' } },
    };
    expect(problems(unset)).toContain('$NOPE_UNSET is not set in this environment (file variable POLICY)');
    expect(() => ship(unset, {}, true)).not.toThrow();
  });

  test('templating touches only known names, never ${…}', () => {
    expect(placeholdersIn('${A} {tenant} {X_1} {word} {}')).toEqual(['tenant', 'X_1', 'word']);
    expect(fill('${tenant} {tenant} {X}', { tenant: 'a' })).toBe('${tenant} a {X}');
  });
});

test('history: the files of a release and those before it are recorded and read back; a bad path is dropped', () => {
  const line = historyLine({
    time: new Date(0),
    actor: 'a',
    run: 'r',
    target: 's/t',
    outcome: 'deployed',
    previous: { refs: {}, imageIds: [], digests: [], files: { 'docker-compose.yml': 'a'.repeat(64) } },
    next: {
      refs: {},
      version: 'v1',
      imageIds: [],
      digests: [],
      files: { 'docker-compose.yml': 'b'.repeat(64) },
    },
    rollback: false,
  });
  expect(parseHistory([line])[0]).toMatchObject({
    files: { 'docker-compose.yml': 'b'.repeat(64) },
    fromFiles: { 'docker-compose.yml': 'a'.repeat(64) },
  });
  expect(parseHistory([line.replace('"docker-compose.yml":"b', '"../x":"b')])).toEqual([]);
  // a rollback finds the files a version ran with: of the deploy that brought it in, else that replaced it
  const h = History.parse([line.replace('"from":null', '"from":"v0"')]);
  expect(h.filesOf('v1')).toEqual({ files: { 'docker-compose.yml': 'b'.repeat(64) }, modes: {} });
  expect(h.filesOf('v0')).toEqual({ files: { 'docker-compose.yml': 'a'.repeat(64) }, modes: {} });
  expect(h.filesOf('v9')).toBeUndefined();
});

describe('CLI: validate and --dry-run with files', () => {
  const registryFile = () => {
    const r = registryWith({
      ship: [
        { from: 'deploy/docker-compose.yml', to: 'docker-compose.yml', template: true },
        { from: 'policy/', to: 'config/policy/' },
      ],
      variables: { POLICY: { env: 'POLICY_TOKEN' } },
    });
    // a third tenant whose compose file templates to the same bytes as acme's would not exist ({tenant}
    // differs), so the policy-only set is what tenants share: beta ships the policy alone
    r.servers[0].tenants[1].files = { ship: [{ from: 'policy/', to: 'config/policy/' }] };
    r.servers[0].tenants.push(
      tenant('gamma', 8082, { files: { ship: [{ from: 'policy/', to: 'config/policy/' }] } }),
    );
    const file = join(repo, 'fleet.json');
    writeFileSync(file, JSON.stringify(r));
    return file;
  };

  test('--dry-run lists each distinct file once (hashes, never content); a set seen before names its first target', async () => {
    const { cli } = await import('./helpers/cli');
    const out = await cli(
      ['deploy', '--dry-run', '--version', 'v2', '--registry', registryFile()],
      {},
      {
        GITHUB_WORKSPACE: repo,
        POLICY_TOKEN: 'tok-SECRET-123',
      },
    );
    expect(out.code).toBe(0);
    const files = out.stdout.split('\n').filter((l) => l.startsWith('[files]'));
    expect(files.filter((l) => l.includes('docker-compose.yml'))).toHaveLength(1);
    expect(files.filter((l) => l.includes('config/policy/base.rego'))).toHaveLength(1); // listed once, for acme
    expect(files.filter((l) => l.includes('2 more as listed for eu-1/acme'))).toHaveLength(1); // beta's policy
    expect(files.filter((l) => l.includes(': the same as eu-1/beta'))).toHaveLength(1); // gamma
    expect(out.stdout).not.toContain('tok-SECRET-123');
    expect(out.stdout).not.toContain('package base');
  });

  test('validate refuses a pin that does not match and a link out of the repository, exit 2', async () => {
    const { cli } = await import('./helpers/cli');
    const r = registryWith({
      ship: [
        { from: 'policy/base.rego', to: 'p.rego', sha256: 'c'.repeat(64) },
        { from: 'deploy/leak.yml', to: 'leak.yml' },
      ],
    });
    const file = join(repo, 'bad.json');
    writeFileSync(file, JSON.stringify(r));
    const out = await cli(['validate', '--registry', file], {}, { GITHUB_WORKSPACE: repo });
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(
      `defaults.tenant.files.ship[0].sha256: policy/base.rego has sha256 ${sha('package base\n')}, not the pinned ${'c'.repeat(64)}`,
    );
    expect(out.stderr).toContain(
      'defaults.tenant.files.ship[1].from: deploy/leak.yml leads out of the repository',
    );
  });
});

test('files on a tenant not switched in place (commands, blue-green) are refused before any server', () => {
  const r = registryWith({ ship: [{ from: 'policy/', to: 'config/policy/' }] }, (x) => {
    x.servers[0].tenants[1].commands = { deploy: 'true', current: 'echo v1' };
  });
  expect(() => shipFiles(targetsOf(parse(r)), { root: repo, env: {} })).toThrow(
    'tenant beta ships files, which only the in-place Compose strategy installs',
  );
});
