/**
 * Checks an SSH private key's text before anything connects, for the CLI and the actions alike: a bad
 * key fails the command once, naming where it came from and the fix, instead of every target late.
 */
import { utils } from 'ssh2';
import { ConfigurationError } from '../errors';

const problem = (source: string, message: string, hint?: string) =>
  new ConfigurationError([{ path: [], source, message, ...(hint ? { hint } : {}) }]);

/**
 * Throws a ConfigurationError unless `text` is an SSH private key that `passphrase` (if any) decrypts.
 * `source` names where the key came from (`--key`, `input "ssh-key"`); `fix` says what to give instead, and
 * where the passphrase came from.
 */
export function checkPrivateKey(
  text: string,
  source: string,
  passphrase: string | undefined,
  fix: { notAKey: string; encrypted: string; passphrase: string },
): void {
  const parsed = utils.parseKey(text, passphrase);
  if (parsed instanceof Error) {
    if (/encrypted/i.test(parsed.message))
      throw problem(source, 'the private key is encrypted and no passphrase was given', fix.encrypted);
    if (/passphrase/i.test(parsed.message))
      throw problem(source, `the private key cannot be decrypted: wrong ${fix.passphrase}?`);
    throw problem(source, `not an SSH private key (${parsed.message})`, fix.notAKey);
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key?.isPrivateKey()) throw problem(source, 'this is a public key; pass the private one', fix.notAKey);
}
