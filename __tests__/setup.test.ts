/**
 * setup-server's remote scripts as data: template placeholders, sudo, step lines read back, what runs as the
 * deploy user; and root_only run by a real sh.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRegistry, targetsOf } from '../src/registry';
import { asRoot, parseSteps, ROOT_ONLY, secretsOf, setupServer, setupTenant } from '../src/remote/setup';
import { baseRegistry } from './helpers/registry';

test('secretsOf: distinct placeholders; a bad name or length is said', () => {
  expect(secretsOf('A={{secret:TOKEN:48}}\nB={{secret:TOKEN:48}}\nC={{secret:PW:16}}')).toEqual([
    { placeholder: '{{secret:TOKEN:48}}', name: 'TOKEN', length: 48 },
    { placeholder: '{{secret:PW:16}}', name: 'PW', length: 16 },
  ]);
  expect(secretsOf('no placeholders')).toEqual([]);
  expect(secretsOf('{{secret:a b:48}}')).toBe('{{secret:a b:48}}: "a b" is not a variable name');
  expect(secretsOf('{{secret:T:15}}')).toMatch(/the length must be a whole number from 16 to 4096/);
  expect(secretsOf('{{secret:T:1e3}}')).toMatch(/the length must be/);
});

test('a non-root admin runs the script through sudo -n, quoted whole', () => {
  const s = setupServer({ user: 'deploy', group: 'docker', publicKey: "ssh-ed25519 AAAA x'; reboot" });
  expect(asRoot('root', s)).toBe(s);
  const wrapped = asRoot('admin', s).text;
  expect(wrapped.startsWith("sudo -n sh -c '")).toBe(true);
  expect(s.text).toContain(`key='ssh-ed25519 AAAA x'\\''; reboot'`);
});

test('parseSteps keeps well-formed step lines only, details bounded', () => {
  const out = [
    'noise',
    '@@step user changed created deploy',
    '@@step key bogus x',
    `@@step env unchanged ${'k'.repeat(400)}`,
  ];
  expect(parseSteps(out.join('\n'))).toEqual([
    { step: 'user', result: 'changed', detail: 'created deploy' },
    { step: 'env', result: 'unchanged', detail: 'k'.repeat(300) },
  ]);
});

describe('root and the deploy user’s places', () => {
  const tenant = () => {
    const r = baseRegistry();
    Object.assign(r.servers[0].tenants[0], { path: 'apps/acme' });
    return targetsOf(parseRegistry(JSON.stringify(r), 'r.json'))[0]!.tenant;
  };

  test('the key, compose file and .env are written as the deploy user; root chowns only with -h', () => {
    const server = setupServer({ user: 'deploy', group: 'docker', publicKey: 'ssh-ed25519 AAAA k' }).text;
    expect(server).toContain(
      `as_user 'umask 077; key='\\''ssh-ed25519 AAAA k'\\''; f="$HOME/.ssh/authorized_keys"`,
    );
    expect(server).not.toMatch(/chown|chmod [0-7]+ "\$home/);
    const t = setupTenant({
      user: 'deploy',
      tenant: tenant(),
      compose: 'services: {}\n',
      envTemplate: 'A=1\n',
    }).text;
    expect(t).toContain(
      `as_user 'cd -- "$dir" || exit 1; if [ -f docker-compose.yml ] && [ "$(sha256sum < docker-compose.yml`,
    );
    expect(t).toContain(`as_user 'cd -- "$dir" || exit 1; if [ -e .env ] || [ -L .env ]; then exit 3; fi;`);
    expect(t.match(/chown (?!-h |it\b)/g)).toBeNull(); // (the messages say "does not … chown it")
    expect(t).toContain('chown -h "$user:$ug" "$canon"');
  });

  const asRootOnly = process.getuid?.() === 0 ? test : test.skip;
  asRootOnly(
    'root_only, in a real sh: root’s directories (sticky ones too) yes; shared or another’s no',
    () => {
      const root = mkdtempSync(join(tmpdir(), 'fd-rootonly-'));
      try {
        chmodSync(root, 0o755);
        mkdirSync(join(root, 'shared'), { mode: 0o777 });
        chmodSync(join(root, 'shared'), 0o777);
        mkdirSync(join(root, 'theirs'));
        execFileSync('chown', ['nobody', join(root, 'theirs')]);
        mkdirSync(join(root, 'ok'));
        const check = (p: string) =>
          spawnSync('sh', ['-c', `${ROOT_ONLY.text}; root_only "$1"`, 'sh', p]).status;
        expect(check(join(root, 'ok', 'missing', 'deeper'))).toBe(0);
        expect(check('/tmp/x')).toBe(0);
        expect(check(join(root, 'shared', 'x'))).toBe(1);
        expect(check(join(root, 'theirs', 'x'))).toBe(1);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  );
});
