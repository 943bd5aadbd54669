/**
 * The SSH credentials of a command that connects, as people have them, checked before anything connects
 * (a bad key fails the command once, with the fix, instead of every target late):
 *  - `--key FILE`, or `$FLEET_SSH_KEY_FILE` naming one;
 *  - `$FLEET_SSH_KEY` holding the key's text, or a path to it (the message says which it took);
 *  - none of them: the ssh-agent at `$SSH_AUTH_SOCK`, as OpenSSH users expect.
 * A public key, an encrypted key without `$FLEET_SSH_PASSPHRASE`, or text that is no key: exit 2.
 *
 * And where host keys are trusted from besides the registry's pins: `--known-hosts FILE`, else
 * `$FLEET_KNOWN_HOSTS` (text), else on a laptop `~/.ssh/known_hosts` — never in CI (`CI=true`) unless
 * given with --known-hosts, so a runner's file cannot widen trust silently.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigurationError } from '../errors';
import { checkPrivateKey } from '../ssh/private-key';
import { readUserFile, type CliIO } from './io';

export interface SshCredentials {
  privateKey?: string;
  passphrase?: string;
  /** The ssh-agent's socket, when no key was given. */
  agent?: string;
  /** Where the credentials came from, as a line for the person. */
  from: string;
}

const KEY_TEXT = /-----BEGIN |^\s*(ssh-|ecdsa-|sk-)|PuTTY-User-Key-File/;
const NO_KEY_HINT =
  'pass --key FILE, put the key (or its path) in $FLEET_SSH_KEY, or load it into an ssh-agent (ssh-add) so $SSH_AUTH_SOCK finds it';

const problem = (source: string, message: string, hint?: string) =>
  new ConfigurationError([{ path: [], source, message, ...(hint ? { hint } : {}) }]);

/** The key's text and where it came from, or undefined when no key was given. */
async function keyText(
  keyFlag: string | undefined,
  io: CliIO,
): Promise<{ text: string; source: string; from: string } | undefined> {
  if (keyFlag)
    return { text: await readUserFile(io, keyFlag, '--key'), source: '--key', from: `key ${keyFlag}` };
  const file = io.env.FLEET_SSH_KEY_FILE;
  if (file)
    return {
      text: await readUserFile(io, file, '$FLEET_SSH_KEY_FILE'),
      source: '$FLEET_SSH_KEY_FILE',
      from: `key ${file} (from $FLEET_SSH_KEY_FILE)`,
    };
  const value = io.env.FLEET_SSH_KEY;
  if (!value?.trim()) return undefined;
  if (KEY_TEXT.test(value) || value.includes('\n'))
    return { text: value, source: '$FLEET_SSH_KEY', from: 'key text in $FLEET_SSH_KEY' };
  const path = value.trim().replace(/^~(?=\/)/, homedir());
  return {
    text: await readUserFile(io, path, '$FLEET_SSH_KEY (taken as a path: it holds no key text)'),
    source: '$FLEET_SSH_KEY',
    from: `key ${path} (the path in $FLEET_SSH_KEY)`,
  };
}

export async function sshCredentials(keyFlag: string | undefined, io: CliIO): Promise<SshCredentials> {
  const passphrase = io.env.FLEET_SSH_PASSPHRASE || undefined;
  const key = await keyText(keyFlag, io);
  if (key) {
    checkPrivateKey(key.text, key.source, passphrase, {
      notAKey: 'pass the private key file (the one without ".pub"), e.g. ~/.ssh/id_ed25519',
      encrypted: 'set $FLEET_SSH_PASSPHRASE, or load the key into your ssh-agent (ssh-add) and pass no key',
      passphrase: '$FLEET_SSH_PASSPHRASE',
    });
    return { privateKey: key.text, ...(passphrase ? { passphrase } : {}), from: key.from };
  }
  const agent = io.env.SSH_AUTH_SOCK;
  if (agent && existsSync(agent)) return { agent, from: `the ssh-agent at $SSH_AUTH_SOCK (${agent})` };
  throw problem('--key', 'no SSH private key', NO_KEY_HINT);
}

/** The known_hosts text trusted besides the registry's pins, and where it came from. */
export async function knownHostsText(
  flag: string | undefined,
  io: CliIO,
): Promise<{ text: string; from?: string }> {
  if (flag) return { text: await readUserFile(io, flag, '--known-hosts'), from: flag };
  if (io.env.FLEET_KNOWN_HOSTS !== undefined)
    return { text: io.env.FLEET_KNOWN_HOSTS, from: '$FLEET_KNOWN_HOSTS' };
  if (io.env.CI === 'true' || !io.env.HOME) return { text: '' };
  const file = join(io.env.HOME, '.ssh', 'known_hosts');
  if (!existsSync(file)) return { text: '' };
  return { text: await readUserFile(io, file, '~/.ssh/known_hosts'), from: file };
}
