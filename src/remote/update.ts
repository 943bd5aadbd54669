/**
 * `update`: the switch of a release in one round trip — .env rewritten, then `compose up -d`.
 */
import type { Tenant } from '../registry/model';
import {
  checkComposeFiles,
  composeArgv,
  CONFIG_HASH_LABEL,
  configHashOf,
  engineOf,
  pinApiVersion,
} from './compose';
import { containersOf, removeContainers } from './containers';
import { switchEnv } from './env-file';
import { noteSwitch } from './lock';
import { named, Script, sh } from './shell';
import { enter, touchLock } from './tenant-dir';

export interface UpdateOptions {
  /** Noted in the lock before the switch (one line of JSON): what an interrupted deploy was switching. */
  note?: string;
  /**
   * Remove the project's containers first (force, retried): a crash-looping container restarted by its
   * policy can otherwise make `up -d` fail with "container state improper". Needs the project.
   */
  replace?: { project: string };
  /** After `up -d`, print the project's containers' config-hash labels (see parseConfigHash). */
  configHash?: { project: string };
  /** Containers to unpause before `up -d` (a paused tenant: Compose recreates only what changed). */
  unpause?: readonly string[];
  /**
   * Start only these services, without touching their dependencies (`up -d --no-deps SERVICE…`): the
   * ones whose image changed, so the others keep serving. Absent: the tenant's services, or all.
   */
  only?: readonly string[];
  /** The engine's API version, for Compose v1 (`pinApiVersion`): asked once per server, not at every `up`. */
  apiVersion?: string;
}

/**
 * Sets image variables in .env atomically, then runs `compose up -d`: one round trip. The new .env is
 * made in a private directory the script made and checked (so no planted file or link is written
 * through), given the old one's mode and owner, and renamed over it: .env is always either the old or
 * the new file. A .env that is a symbolic link is refused. Compose files that do not parse (`compose
 * config`, run only when they or what they read changed: `checkComposeFiles`), or a switch that fails,
 * exit SWITCH_FAILED before .env changes or compose starts anything.
 *
 * Another writer may change .env while it is rewritten (`swapEnv` says how nothing it wrote is lost).
 */
export function update(
  t: Tenant,
  assignments: Readonly<Record<string, string>>,
  options: UpdateOptions = {},
): Script {
  const switched = switchEnv(t, assignments); // throws on a bad assignment, before anything else
  const engine = engineOf(t.compose.command);
  const { note, replace, unpause, only, configHash, apiVersion } = options;
  const upArgs = only ? sh`--no-deps ${only}` : sh`${t.compose.services ?? []}`;
  // run in this order, each only when the one before it succeeded
  const steps: Array<Script | undefined> = [
    enter(t),
    touchLock,
    checkComposeFiles(t),
    note ? noteSwitch(note) : undefined,
    switched,
    replace ? removeContainers(t, replace.project) : undefined,
    unpause?.length ? sh`${engine} unpause ${[...unpause]} >/dev/null` : undefined,
    pinApiVersion(t, apiVersion),
    sh`${composeArgv(t)} up -d ${upArgs}`,
    configHash ? printConfigHash(t, configHash.project) : undefined,
  ];
  return named('update', new Script(steps.filter((s) => s !== undefined).join(' && ')));
}

/** The project's running containers' config-hash labels after `@@confighash` (none printed: no error). */
function printConfigHash(t: Tenant, project: string): Script {
  const label = `{{index .Config.Labels "${CONFIG_HASH_LABEL}"}}`;
  const inspect = sh`ids=$(${containersOf(t, project)}) && [ -n "$ids" ] && ${engineOf(t.compose.command)} inspect --format ${label} $ids`;
  return sh`{ echo '@@confighash'; ${inspect} || :; }`;
}

/** The config hash `update` read after `compose up` (the lines after its @@confighash marker). */
export function parseConfigHash(stdout: string): string | undefined {
  const at = stdout.lastIndexOf('@@confighash\n');
  return at < 0 ? undefined : configHashOf(stdout.slice(at + '@@confighash\n'.length).split('\n'));
}
