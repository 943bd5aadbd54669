/** Quoting, checked against a real POSIX shell: whatever a value holds, the shell sees exactly it. */
import { execFileSync } from 'node:child_process';
import { envPrefix, quote, Script, sh } from '../src/remote/shell';

const echoBack = (script: string) => execFileSync('sh', ['-c', script], { encoding: 'utf8' });

const HOSTILE = [
  'plain',
  'with space',
  "it's",
  "'",
  "''",
  '$(reboot)',
  '`reboot`',
  '${HOME}',
  '; rm -rf / #',
  'a\nb',
  'tab\there',
  '\\',
  '"double"',
  '*',
  '~',
  '-n',
  '',
  'üñíçødé',
  '\'$(x)\'"`y`"',
];

test.each(HOSTILE.map((v) => [JSON.stringify(v), v]))('quote(%s) reaches the shell unchanged', (_, value) => {
  expect(echoBack(`printf '%s' ${quote(value)}`)).toBe(value);
});

test('safe words stay bare; everything else is single-quoted', () => {
  expect(quote('docker-compose.yml')).toBe('docker-compose.yml');
  expect(quote('/srv/acme/app')).toBe('/srv/acme/app');
  expect(quote('ghcr.io/acme/app:v1.2')).toBe('ghcr.io/acme/app:v1.2');
  expect(quote('a b')).toBe("'a b'");
  expect(quote("it's")).toBe("'it'\\''s'");
  expect(quote('')).toBe("''");
});

test('a NUL byte is refused', () => {
  expect(() => quote('a\0b')).toThrow('NUL');
});

test('sh`` quotes every value, spreads arrays as words and keeps Scripts as shell', () => {
  const inner = sh`echo ${'x y'}`;
  const s = sh`cd -- ${'/srv/my app'} && ${inner} && ls ${['a b', 'c']} ${3}`;
  expect(s.text).toBe("cd -- '/srv/my app' && echo 'x y' && ls 'a b' c 3");
  expect(s).toBeInstanceOf(Script);
  expect(echoBack(sh`printf '%s|' ${HOSTILE}`.text)).toBe(HOSTILE.map((v) => `${v}|`).join(''));
});

test('sh`` keeps the literal text raw, as the shell reads it', () => {
  expect(sh`printf '%s\n' ${'a'}`.text).toBe("printf '%s\\n' a");
});

test('envPrefix checks names and quotes values', () => {
  expect(envPrefix({ FLEET_VERSION: 'v1', NOTE: "it's $(x)" }).text).toBe(
    "FLEET_VERSION=v1 NOTE='it'\\''s $(x)'",
  );
  expect(echoBack(`${envPrefix({ V: '$(date)' }).text} sh -c 'printf %s "$V"'`)).toBe('$(date)');
  expect(() => envPrefix({ 'BAD NAME': 'x' })).toThrow('not a variable name');
});
