/**
 * `update`: the switch of a release in one round trip — .env rewritten, then `compose up -d`.
 */
import type { Tenant } from '../registry/model';
import { ENV_VAR, IMAGE_REF } from '../registry/patterns';
import { checkComposeFiles, composeArgv, CONFIG_HASH_LABEL, engineOf } from './compose';
import { containersOf, removeContainers } from './containers';
import { swapEnv } from './env-file';
import { SWITCH_FAILED } from './exit-codes';
import { SWITCH_NOTE } from './lock';
import { named, Script, sh } from './shell';
import { enter, LOCK_DIR, touchLock } from './tenant-dir';

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
}

/**
 * Sets image variables in .env atomically, then runs `compose up -d`: one round trip. The new .env is
 * made in a private directory the script made and checked (so no planted file or link is written
 * through), given the old one's mode and owner, and renamed over it: .env is always either the old or the new file. A .env that is a
 * symbolic link is refused. Compose files that do not parse (`compose config`, run only when they or
 * what they read changed: `checkComposeFiles`), or a switch that fails, exit SWITCH_FAILED before .env
 * changes or compose starts anything.
 *
 * Another writer may change .env while it is rewritten (SWITCH_ENV says how nothing it wrote is lost).
 */
export function update(
  t: Tenant,
  assignments: Readonly<Record<string, string>>,
  options: UpdateOptions = {},
): Script {
  for (const [k, v] of Object.entries(assignments))
    if (!ENV_VAR.re.test(k) || !IMAGE_REF.test(v))
      throw new Error(
        `refusing to write ${JSON.stringify(`${k}=${v}`)} into .env: not an image variable and reference`,
      );
  const spec = Object.entries(assignments)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  const link = `.env in ${t.path} is a symbolic link: fleet-deploy replaces .env atomically and does not write through links; make it a regular file`;
  const switchEnv = sh`{ [ ! -L .env ] || { printf '%s\n' ${link} >&2; exit ${SWITCH_FAILED}; }; ${swapEnv(spec)}; }`;
  const checkFiles = checkComposeFiles(t);
  const replace = options.replace ? sh`${removeContainers(t, options.replace.project)} && ` : sh``;
  const note = options.note
    ? sh`{ [ ! -d ${LOCK_DIR} ] || printf '%s\n' ${options.note} > ${SWITCH_NOTE} || :; } && `
    : sh``;
  const engine = engineOf(t.compose.command);
  const unpause = options.unpause?.length
    ? sh`${engine} unpause ${[...options.unpause]} >/dev/null && `
    : sh``;
  const hash = options.configHash
    ? sh` && { echo '@@confighash'; ids=$(${containersOf(t, options.configHash.project)}) && [ -n "$ids" ] && ${engine} inspect --format ${`{{index .Config.Labels "${CONFIG_HASH_LABEL}"}}`} $ids || :; }`
    : sh``;
  const upArgs = options.only ? sh`--no-deps ${options.only}` : sh`${t.compose.services ?? []}`;
  return named(
    'update',
    sh`${enter(t)} && ${touchLock} && ${checkFiles} && ${note}${switchEnv} && ${replace}${unpause}${composeArgv(t)} up -d ${upArgs}${hash}`,
  );
}
