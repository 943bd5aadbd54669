/**
 * Images on the server: registry logins, the pull and what it printed (image IDs and digests).
 */
import type { Tenant } from '../registry/model';
import { IMAGE_REF } from '../registry/patterns';
import { engineOf } from './compose';
import { LOGIN_FAILED } from './exit-codes';
import { named, Script, sh } from './shell';
import { touchLockFromHome } from './tenant-dir';

export function normalizeId(id: string): string {
  const s = id.trim();
  return s.startsWith('sha256:') ? s : `sha256:${s}`;
}

/** Registry logins before the pull. The passwords are not here: they go on the command's stdin. */
export interface PullLogin {
  /** Each registry host to log in to (`registryHost` of an image) with its user; stdin has a line each. */
  logins: ReadonlyArray<{ host: string; username: string }>;
  /** Log in to the engine's own config (it stays); else to a throwaway one removed after the pull. */
  keep: boolean;
}

/**
 * Logs in with the passwords read from stdin (never an argument, so no process listing shows them): one
 * line per login, in order, each read into `$pw` just before its host's `login --password-stdin`, to which
 * the shell's builtin printf pipes it. A host gets its own password only.
 * Without `keep`, the login goes to a config directory made for this command only (DOCKER_CONFIG for
 * docker, REGISTRY_AUTH_FILE for podman) and a trap removes it when the command ends, however it ends.
 */
export function registryLogin(engine: string, login: PullLogin): Script {
  const throwaway = login.keep ? sh`` : sh`${THROWAWAY_CONFIG}; `;
  const logins = login.logins.map(({ host, username }) => loginTo(engine, host, username).text);
  return new Script(`${throwaway.text}${logins.join(' && ')}`);
}

/** A directory for this command only (`$tmp`, mode 0700), removed when the command ends, however it ends. */
const TEMP_DIR = sh`tmp=$(umask 077; mktemp -d) || exit 1; trap 'rm -rf -- "$tmp"' EXIT; trap 'exit 129' HUP INT PIPE TERM`;
/** The engines' login config in that directory, so no login outlives the command. */
const THROWAWAY_CONFIG = sh`${TEMP_DIR}; export DOCKER_CONFIG="$tmp" REGISTRY_AUTH_FILE="$tmp/auth.json"`;

/** One registry login, its password the next line of stdin; a refusal exits LOGIN_FAILED, naming host and user. */
function loginTo(engine: string, host: string, username: string): Script {
  const login = sh`printf '%s\n' "$pw" | ${engine} login --username ${username} --password-stdin ${host} >/dev/null`;
  const failed = sh`{ printf '%s\n' ${`registry login to ${host} as ${username} failed`} >&2; exit ${LOGIN_FAILED}; }`;
  return sh`{ IFS= read -r pw && ${login} || ${failed}; }`;
}

/** The registry logins when asked, then each image pulled (quietly), stopping at the first that fails. */
export function pullAll(engine: string, refs: readonly string[], login?: PullLogin): Script {
  const pulls = refs.map((ref) => sh`${engine} pull -q ${ref} >/dev/null`.text).join(' && ');
  const before = login ? sh`${registryLogin(engine, login)} && ` : sh``;
  return sh`${before}${new Script(pulls)}`;
}

/**
 * Pulls every image of the release and prints `ID|["repo@digest", …]` for each, in order; with `login`,
 * logs in to the registries first, in the same round trip (the password on stdin: `PullLogin`).
 */
export function pullImages(t: Tenant, refs: readonly string[], login?: PullLogin): Script {
  const engine = engineOf(t.compose.command);
  const inspect = sh`${engine} image inspect --format '{{.Id}}|{{json .RepoDigests}}' ${[...refs]}`;
  return named('pull', sh`${touchLockFromHome(t)} && ${pullAll(engine, refs, login)} && ${inspect}`);
}

export function parseImages(stdout: string): Array<{ id: string; digests: string[] }> {
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l.includes('|'))
    .map((line) => {
      const [id = '', json = '[]'] = line.split('|');
      let digests: string[];
      try {
        digests = (JSON.parse(json) as string[] | null) ?? [];
      } catch {
        digests = [];
      }
      return { id: normalizeId(id), digests };
    });
}

/**
 * Removes the pruned releases' images (only what reads as an image reference), ignoring the engine's
 * refusal for those a container still uses; undefined when there is none to remove.
 */
export function pruneImages(t: Tenant, refs: readonly string[]): Script | undefined {
  const remove = refs.filter((r) => IMAGE_REF.test(r));
  if (!remove.length) return undefined;
  return sh`{ ${engineOf(t.compose.command)} image rm -- ${remove} >/dev/null 2>&1 || true; }`;
}
