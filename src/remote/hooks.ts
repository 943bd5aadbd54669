/**
 * The user's own commands on the server: hooks, and the commands strategy's deploy and rollback.
 */
import type { Tenant } from '../registry/model';
import { envPrefix, named, type Script, sh } from './shell';
import { enter, touchLock } from './tenant-dir';

export function runUserCommand(t: Tenant, command: string, env: Readonly<Record<string, string>>): Script {
  return named('runUserCommand', sh`${enter(t)} && ${touchLock} && ${envPrefix(env)} sh -c ${command}`);
}
