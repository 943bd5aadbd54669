/** setup-server's remote scripts as data: template placeholders, sudo, step lines read back (pure). */
import { asRoot, parseSteps, secretsOf, setupServer } from '../src/remote/setup';

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
