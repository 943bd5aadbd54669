/**
 * Compose on the server: the engine behind a compose command, its argv, the project as Compose derives it,
 * the check that the compose files parse (run only when they changed) and the config hash read after `up`.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { ComposeCommand, Tenant } from '../registry/model';
import { imageLines } from './env-file';
import { SWITCH_FAILED } from './exit-codes';
import { inPrivateDir } from './private-dir';
import { named, Script, sh } from './shell';
import { STATE_DIR } from './tenant-dir';

/** The container engine CLI behind a compose command (for pull, inspect, image rm). */
export function engineOf(command: ComposeCommand): 'docker' | 'podman' {
  return command.startsWith('podman') ? 'podman' : 'docker';
}

/**
 * The Compose project name when the registry sets it; otherwise Compose decides on the server (see
 * `deriveProject`), and this is only the guess from the directory name, for checks across the registry.
 */
export function projectOf(t: Tenant): string {
  if (t.compose.project) return t.compose.project;
  return normalizeProject(t.path.replace(/\/+$/, '').split('/').at(-1) ?? '');
}

/** As Compose normalizes a project name: lowercase; letters, digits, "-" and "_"; no leading "-" or "_". */
export function normalizeProject(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '')
    .replace(/^[-_]+/, '');
}

/**
 * Sets `$project` to the Compose project as Compose itself derives it when no `-p` is given: the
 * session's COMPOSE_PROJECT_NAME, else COMPOSE_PROJECT_NAME in the tenant's .env, else the top-level
 * `name:` of the first compose file, else the name of that file's directory — normalized as Compose
 * does (`.env` read by the rules of the tenant's compose command: dotenvRules). The value comes from
 * files on the server: it is only ever expanded inside double quotes here, and `parsePrepared` checks it
 * against the project pattern before any later command uses it.
 */
export function deriveProject(t: Tenant): Script {
  if (t.compose.project) return sh`project=${t.compose.project}; echo "@@project $project"`;
  const first = t.compose.files[0]!;
  const steps = [
    PROJECT_FROM_SESSION,
    orElse(projectInEnvFile(dotenvRules(t.compose.command))),
    orElse(nameIn(first)),
    orElse(directoryOf(first)),
    NORMALIZE_PROJECT,
    sh`echo "@@project $project"`,
  ];
  return new Script(steps.map(String).join('; '));
}

/** The session's COMPOSE_PROJECT_NAME (empty when unset: safe under `set -u`). */
const PROJECT_FROM_SESSION = sh`project=${new Script('"${COMPOSE_PROJECT_NAME:-}"')}`;
/** `$project`, when still empty, set to what `value` prints. */
const orElse = (value: Script) => sh`[ -n "$project" ] || project="$(${value})"`;

/**
 * How a compose command reads a dotenv file. Compose v2 (compose-go) ends an unquoted value at " #" and
 * takes `KEY: value` too; Compose v1 and podman-compose (python-dotenv) end it at any blank before `#`.
 */
interface DotenvRules {
  separator: string;
  comment: string;
}
const COMPOSE_GO: DotenvRules = { separator: '[=:]', comment: ' #' };
const PYTHON_DOTENV: DotenvRules = { separator: '=', comment: '[[:space:]]#' };
const dotenvRules = (command: ComposeCommand): DotenvRules =>
  command === 'docker compose' ? COMPOSE_GO : PYTHON_DOTENV;

/**
 * A sed program printing the value of each line that starts with `key` (a basic regular expression up
 * to and including the separator), read as dotenv files and YAML read one: a UTF-8 byte order mark
 * dropped; spaces after the separator skipped; a quoted value is what stands between its quotes; an
 * unquoted one ends before `comment` (a blank and `#`), its trailing spaces dropped. Not read as Compose
 * reads them: an escaped quote inside double quotes (the value ends there), and `$VAR` or `${VAR}` in the
 * value, which Compose expands and this leaves as the variable's name — a tenant whose project name is
 * built from variables needs `compose.project` in the registry.
 */
const valueAfter = (key: string, comment: string) =>
  [
    '1s/^\uFEFF//', // (applied to line 1 before the key's regular expression, so `s///` below is still the key's)
    `/${key}[[:space:]]*/{s///`, // (an empty regular expression is the last one used: the key's)
    String.raw`/^"/{s/^"\([^"]*\)".*/\1/;p;d;}`,
    String.raw`/^'/{s/^'\([^']*\)'.*/\1/;p;d;}`,
    `s/${comment}.*//;s/[[:space:]]*$//;p;}`,
  ].join(';');

/** The value the last line setting `key` in `file` gives it (valueAfter), CRs dropped; none without the file. */
const valueIn = (key: string, comment: string, file: string) =>
  sh`{ tr -d '\r' < ${file}; } 2>/dev/null | sed -n ${valueAfter(key, comment)} | tail -n 1`;
/** COMPOSE_PROJECT_NAME in the tenant's .env (with or without `export`, spaces around the separator). */
const projectInEnvFile = ({ separator, comment }: DotenvRules) =>
  valueIn(
    String.raw`^[[:space:]]*\(export[[:space:]][[:space:]]*\)\{0,1\}COMPOSE_PROJECT_NAME[[:space:]]*${separator}`,
    comment,
    '.env',
  );
/** The top-level `name:` of a compose file (YAML: a comment starts at a blank and `#`). */
const nameIn = (file: string) => valueIn('^name[[:space:]]*:', '[[:space:]]#', file);
/** The name of a compose file's directory. */
const directoryOf = (file: string) => sh`basename -- "$(cd -- "$(dirname -- ${file})" && pwd)"`;
/** `$project` normalized as Compose does (see normalizeProject). */
const NORMALIZE_PROJECT = sh`project="$(printf '%s' "$project" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9_-' | sed 's/^[-_]*//')"`;

/**
 * A cheap check that the compose command exists. Compose v1 and podman-compose are Python programs
 * costing ~0.4 s of CPU per run, so they are looked up, not run; `docker compose` is a fast plugin.
 */
export function composeAvailable(command: ComposeCommand): Script {
  if (command === 'docker compose') return sh`docker compose version >/dev/null 2>&1`;
  return sh`command -v ${command.split(' ')[0]!} >/dev/null 2>&1`;
}

/** Whether a compose command asks the engine its API version at every run (Compose v1, a Python program). */
export const asksApiVersion = (command: ComposeCommand): boolean => command === 'docker-compose';

/**
 * Whether a compose command takes `--project-directory` (Docker's Compose, v1 and v2; podman-compose does
 * not, and `podman compose` may hand over to it).
 */
export const takesProjectDirectory = (command: ComposeCommand): boolean =>
  command === 'docker compose' || command === 'docker-compose';

/** Compose's project directory for the tenant: its first compose file's ('.': the tenant directory). */
export const composeDirectory = (t: Tenant): string => posix.dirname(t.compose.files[0]!);

/**
 * `--env-file .env` when Compose's project directory is not the tenant's: Compose reads `.env` from the
 * project directory, and the tenant's `.env` is the one a deploy switches. Paths in the compose files
 * still resolve from their own directory. (Nothing otherwise: it is the same file, and Compose v1 refuses
 * a missing one.)
 */
export const tenantEnvFile = (t: Tenant): string[] =>
  composeDirectory(t) === '.' ? [] : ['--env-file', '.env'];

/** An engine API version as Compose v1 takes it in COMPOSE_API_VERSION. */
const API_VERSION = /^1\.\d{1,3}$/;

/**
 * The API version of the engine behind `t`'s compose command, for `pinApiVersion`: asked once per server
 * and run (deploy/engine-api.ts). Read from the `Api-Version` header of the engine's `GET /_ping` (with
 * curl) when the shell can name the Unix socket Compose v1 would talk to — the session's DOCKER_HOST, or
 * the default socket when neither DOCKER_HOST nor a current context is set (in the CLI's config file or
 * the one docker-py falls back to); else (no curl, no answer, a TCP or SSH host, a context) from the
 * engine's CLI, `version --format '{{.Server.APIVersion}}'`. Both say what Compose's own `GET /version`
 * would; the ping costs the engine nothing, while podman answers `GET /version` by querying its packages'
 * versions (about 0.3 s of CPU: docs/PERFORMANCE.md).
 */
export function engineApiVersion(t: Tenant): Script {
  const cli = sh`${engineOf(t.compose.command)} version --format '{{.Server.APIVersion}}' 2>/dev/null`;
  const ping = sh`if [ -n "$sock" ] && command -v curl >/dev/null 2>&1; then api="$(${PING} | ${API_HEADER})" || api=; fi`;
  const answer = sh`case "$api" in 1.[0-9]*) echo "$api" ;; *) ${cli} ;; esac`;
  return named('engineApiVersion', sh`${ENGINE_SOCKET}; api=; ${ping}; ${answer}`);
}

/** The engine CLI's config file, and the one docker-py falls back to when DOCKER_CONFIG has none. */
const DOCKER_CONFIGS = new Script(
  '"${DOCKER_CONFIG:-${HOME:-}/.docker}/config.json" "${HOME:-}/.docker/config.json"',
);
const DOCKER_HOST = new Script('"${DOCKER_HOST:-}"');
const HOST_SOCKET = new Script('"${DOCKER_HOST#unix://}"');
/** True unless a config file names a current context (which Compose v1 and the engine's CLI follow). */
const NO_CONTEXT = sh`! grep -qs '"currentContext"' ${DOCKER_CONFIGS}`;
/** `$sock`: the socket of a `unix://` DOCKER_HOST; with none, the default one unless a context is current. */
const ENGINE_SOCKET = sh`sock=; case ${DOCKER_HOST} in unix://*) sock=${HOST_SOCKET} ;; '') ${NO_CONTEXT} && sock=/var/run/docker.sock ;; esac`;
/** The engine's answer to `GET /_ping` on `$sock`: its headers. */
const PING = sh`curl -fsS --max-time 10 -o /dev/null -D - --unix-socket "$sock" http://engine/_ping 2>/dev/null`;
/** The value of an `Api-Version` header (in any case), without its CR. */
const API_HEADER = sh`tr -d '\r' | sed -n 's/^[Aa][Pp][Ii]-[Vv][Ee][Rr][Ss][Ii][Oo][Nn]:[[:space:]]*//p'`;

/** What `engineApiVersion` printed, when it is an API version (server text: anything else is ignored). */
export function parseApiVersion(stdout: string): string | undefined {
  const v = stdout.trim();
  return API_VERSION.test(v) ? v : undefined;
}

/**
 * An env file line that gives Compose v1 an API version or an engine of its own (it reads both from the
 * env file it loads), matched loosely — anywhere in a line, spaces before `=` — so that a line Compose
 * would read is never missed; a false match only leaves Compose to ask the engine, as before.
 */
const OWN_ENGINE = '(^|[^A-Za-z0-9_])(COMPOSE_API_VERSION|DOCKER_HOST)[[:space:]]*=';

/**
 * Compose v1 (`docker-compose`, a Python program) asks the engine for its API version (GET /version) at
 * every run unless COMPOSE_API_VERSION names it; on podman that one request costs about 0.3 s of the
 * server's CPU, as much as a quarter of a switch (docs/PERFORMANCE.md). Given `api`, the version the
 * engine reported to this run, this exports COMPOSE_API_VERSION for the compose command after it — what
 * Compose would have asked for — unless the session sets it already or sets DOCKER_CONTEXT (which the
 * engine's CLI follows and Compose v1 does not: the answer may be another engine's), or `envFile` (the
 * env file Compose loads) names an API version or an engine of its own. Nothing for any other compose
 * command, or without `api`. A rollback runs without it, as before this existed: should the version ever
 * be wrong, the switch fails and the way back does not.
 */
export function pinApiVersion(t: Tenant, api: string | undefined, envFile = '.env'): Script | undefined {
  if (api === undefined || !asksApiVersion(t.compose.command)) return undefined;
  if (!API_VERSION.test(api)) throw new Error(`not an engine API version: ${JSON.stringify(api)}`);
  const own = sh`grep -qsE ${OWN_ENGINE} ${envFile}`;
  const unset = new Script('[ -z "${COMPOSE_API_VERSION:-}" ] && [ -z "${DOCKER_CONTEXT:-}" ]');
  return sh`{ if ${unset} && ! ${own}; then export COMPOSE_API_VERSION=${api}; fi; }`;
}

/** The project derived on the server by `deriveProject`, as shell text for double quotes. */
export const PROJECT_VAR = new Script('$project');

/** The tenant's compose command, run in its directory, reading the tenant's `.env` (`tenantEnvFile`). */
export function composeArgv(t: Tenant): string[] {
  const argv = t.compose.command.split(' ');
  for (const f of t.compose.files) argv.push('-f', f);
  argv.push(...tenantEnvFile(t));
  if (t.compose.project) argv.push('-p', t.compose.project);
  return argv;
}

/** The label Compose puts on each container: a hash of its service's configuration. */
export const CONFIG_HASH_LABEL = 'com.docker.compose.config-hash';
const CONFIG_HASH = /^[a-f0-9]{64}$/;

/**
 * One hash for a release's Compose configuration: the config-hash label of its one service, or for
 * several services a sha256 over their distinct labels, sorted (so a change to any service shows).
 * Labels that are not hashes (server text) are ignored; undefined when none is left.
 */
export function configHashOf(labels: readonly string[]): string | undefined {
  const hashes = [...new Set(labels.map((l) => l.trim()).filter((l) => CONFIG_HASH.test(l)))].sort();
  if (hashes.length <= 1) return hashes[0];
  return createHash('sha256').update(hashes.join('\n')).digest('hex');
}

/** Where `update` keeps the fingerprint of the compose files it last found to parse. */
export const COMPOSE_CHECKED = `${STATE_DIR}/compose-checked`;
/** Printed by `update` when it ran `compose config` (the files or what they read changed). */
export const COMPOSE_CHECKED_MARK = '@@compose-checked';

/**
 * Compose files that do not parse fail here, before .env changes and before a rollback removes the
 * running containers it could not start again. Compose is a process (~0.4 s of CPU for compose v1), so
 * it runs only when something it reads changed since it last passed: a sha256 over the compose command
 * and files, the files' text and .env without the image variables the deploy itself switches, kept in
 * .fleet/compose-checked (made in a private directory and renamed into place, never written through a
 * link). Files the compose files name (`env_file`, `extends`) are not in it: a change there alone is
 * found by `compose up`, which rolls back.
 */
export function checkComposeFiles(t: Tenant): Script {
  const changed = sh`[ -z "$sum" ] || [ "$sum" != "$(cat ${COMPOSE_CHECKED} 2>/dev/null)" ]`;
  return sh`{ ${composeFingerprint(t)}; if ${changed}; then ${composeConfig(t)}; fi; }`;
}

/** `$sum`: the sha256 of what `compose config` reads, but the image variables; empty when it cannot be taken. */
function composeFingerprint(t: Tenant): Script {
  const inputs = sh`printf '%s\n' ${composeArgv(t)}; cat -- ${t.compose.files}; grep -vE ${imageLines(t)} .env`;
  return sh`sum=$({ ${inputs}; } 2>/dev/null | sha256sum) || sum=`;
}

/** Runs `compose config`: files that do not parse exit SWITCH_FAILED; files that do are remembered as `$sum`. */
function composeConfig(t: Tenant): Script {
  const unparsable = `the compose files of ${t.path} do not parse (${t.compose.command} config failed): nothing was changed`;
  const failed = sh`{ printf '%s\n' ${unparsable} >&2; exit ${SWITCH_FAILED}; }`;
  return sh`{ ${composeArgv(t)} config >/dev/null || ${failed}; echo ${COMPOSE_CHECKED_MARK}; ${REMEMBER_CHECKED}; }`;
}

/** Writes `$sum` into COMPOSE_CHECKED, from the private directory in STATE_DIR; a failure is ignored. */
const CHECKED_FROM_PRIVATE = `../${COMPOSE_CHECKED.slice(STATE_DIR.length + 1)}`;
const WRITE_CHECKED = sh`{ printf '%s\n' "$sum" > new && mv -fT -- new ${CHECKED_FROM_PRIVATE}; } 2>/dev/null || :`;
/** `$sum` remembered as the fingerprint that passed (never written through a link: private-dir.ts). */
const REMEMBER_CHECKED = sh`{ [ -z "$sum" ] || [ ! -d ${STATE_DIR} ] || ${inPrivateDir(STATE_DIR, WRITE_CHECKED)}; }`;
