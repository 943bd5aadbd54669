/**
 * Keys as people have them (src/cli/keys.ts): a path or the text in $FLEET_SSH_KEY, a public key or an
 * encrypted one caught before anything connects (exit 2 with the fix), the ssh-agent when no key is
 * given, ~/.ssh/known_hosts on a laptop but not in CI. Real keys from ssh-keygen.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CliIO } from '../src/cli/io';
import { knownHostsText, sshCredentials } from '../src/cli/keys';
import { cli } from './helpers/cli';

let dir: string;
let plain: string;
let encrypted: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fd-keys-'));
  plain = join(dir, 'id_ed25519');
  encrypted = join(dir, 'id_encrypted');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', plain]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'correct horse', '-f', encrypted]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const io = (env: Record<string, string>): CliIO => ({
  stdout: () => undefined,
  stderr: () => undefined,
  readText: (p) => readFile(p, 'utf8'),
  env,
});

test('$FLEET_SSH_KEY holding a path is read as a file, and says so', async () => {
  const c = await sshCredentials(undefined, io({ FLEET_SSH_KEY: plain }));
  expect(c.privateKey).toBe(readFileSync(plain, 'utf8'));
  expect(c.from).toBe(`key ${plain} (the path in $FLEET_SSH_KEY)`);
});

test('$FLEET_SSH_KEY holding the key text is taken as it is', async () => {
  const text = readFileSync(plain, 'utf8');
  const c = await sshCredentials(undefined, io({ FLEET_SSH_KEY: text }));
  expect(c).toEqual({ privateKey: text, from: 'key text in $FLEET_SSH_KEY' });
});

test.each([
  ['a public key', () => ['--key', `${plain}.pub`], {}, '--key: this is a public key; pass the private one'],
  [
    'an encrypted key without passphrase',
    () => ['--key', encrypted],
    {},
    '--key: the private key is encrypted and no passphrase was given (set $FLEET_SSH_PASSPHRASE, or load the key into your ssh-agent',
  ],
  [
    'a wrong passphrase',
    () => ['--key', encrypted],
    { FLEET_SSH_PASSPHRASE: 'wrong' },
    'cannot be decrypted: wrong $FLEET_SSH_PASSPHRASE?',
  ],
  [
    'a path in $FLEET_SSH_KEY to a public key',
    () => [],
    { pub: true },
    '$FLEET_SSH_KEY: this is a public key',
  ],
  ['a path in $FLEET_SSH_KEY that does not exist', () => [], { missing: true }, 'no such file'],
])('%s: exit 2 before anything connects', async (_, args, opts: Record<string, unknown>, words) => {
  const env: Record<string, string> = { FLEET_REGISTRY: 'servers/example.json' };
  if (opts.FLEET_SSH_PASSPHRASE) env.FLEET_SSH_PASSPHRASE = String(opts.FLEET_SSH_PASSPHRASE);
  if (opts.pub) env.FLEET_SSH_KEY = `${plain}.pub`;
  if (opts.missing) env.FLEET_SSH_KEY = join(dir, 'nope');
  const r = await cli(['deploy', '-v', 'v2', ...args()], {}, env);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(words);
  expect(r.stderr.split('\n')).toHaveLength(2); // one line
});

test('the passphrase decrypts an encrypted key', async () => {
  const c = await sshCredentials(encrypted, io({ FLEET_SSH_PASSPHRASE: 'correct horse' }));
  expect(c.passphrase).toBe('correct horse');
});

test('no key given: the ssh-agent at $SSH_AUTH_SOCK', async () => {
  const sock = join(dir, 'agent.sock');
  writeFileSync(sock, ''); // only its existence is checked here; the sshd tests log in through a real agent
  expect(await sshCredentials(undefined, io({ SSH_AUTH_SOCK: sock }))).toEqual({
    agent: sock,
    from: `the ssh-agent at $SSH_AUTH_SOCK (${sock})`,
  });
  await expect(sshCredentials(undefined, io({}))).rejects.toThrow('no SSH private key');
});

test('~/.ssh/known_hosts is trusted on a laptop, not in CI unless given', async () => {
  const home = join(dir, 'home');
  mkdirSync(join(home, '.ssh'), { recursive: true });
  writeFileSync(join(home, '.ssh', 'known_hosts'), 'example.com ssh-ed25519 AAAA\n');
  expect(await knownHostsText(undefined, io({ HOME: home }))).toEqual({
    text: 'example.com ssh-ed25519 AAAA\n',
    from: join(home, '.ssh', 'known_hosts'),
  });
  expect(await knownHostsText(undefined, io({ HOME: home, CI: 'true' }))).toEqual({ text: '' });
  expect(
    (await knownHostsText(join(home, '.ssh', 'known_hosts'), io({ HOME: home, CI: 'true' }))).text,
  ).toContain('example.com');
  expect(await knownHostsText(undefined, io({ HOME: home, FLEET_KNOWN_HOSTS: '' }))).toEqual({
    text: '',
    from: '$FLEET_KNOWN_HOSTS',
  });
});
