/**
 * Reads action inputs once into typed settings. `required: true` in action.yml is not enforced by the
 * runner, so every rule lives here, and every error names the input and its value.
 */
import { core } from './log';
import { ConfigurationError } from '../errors';
import { checkPrivateKey } from '../ssh/private-key';
import { fromInputs, setting, SETTINGS } from '../settings';

/** Every action's inputs, rows of the settings table (src/settings.ts), read the same way as the CLI's flags. */
export const actionInputs = fromInputs((name) => core.getInput(name));

/**
 * The `ssh-key` input, masked in the log (the whole key and each line of it), checked to be a private key
 * that needs no passphrase, ending in a newline; empty: undefined. The one reading of the key for every action.
 */
export function optionalSshKey(): string | undefined {
  const key = setting(actionInputs, 'sshKey');
  if (key === undefined) return undefined;
  core.setSecret(key);
  for (const line of key.split('\n'))
    if (line.trim().length > 8 && !line.startsWith('-----')) core.setSecret(line.trim());
  checkPrivateKey(key, actionInputs.name(SETTINGS.sshKey), undefined, {
    notAKey: 'put the whole private key file (-----BEGIN … PRIVATE KEY----- and all) in the secret',
    encrypted: 'use a deploy key without a passphrase for the workflow, kept in a secret',
    passphrase: 'passphrase',
  });
  return key.endsWith('\n') ? key : `${key}\n`;
}

/** The `ssh-key` input, required: `why` says what needs it. */
export function sshKey(why: string): string {
  const key = optionalSshKey();
  if (key !== undefined) return key;
  throw new ConfigurationError([
    {
      path: [],
      source: actionInputs.name(SETTINGS.sshKey),
      message: `is required: ${why}`,
      hint: 'ssh-key: ${{ secrets.SSH_PRIVATE_KEY }}',
    },
  ]);
}
