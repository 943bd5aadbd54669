/**
 * The remote verbs of a deploy, one builder each, named after what it does on the server. Builders only
 * build Scripts (see shell.ts); deploy/ runs them and parse*() read their output. Every script starts by
 * entering the tenant's directory, so a wrong path fails the first step with its own exit code.
 */
import type { ComposeCommand, Image, Tenant } from '../registry/model';
import { COMPOSE_PROJECT, ENV_VAR, IMAGE_DIGEST, IMAGE_REF, IMAGE_TAG } from '../registry/patterns';
import { createHash } from 'node:crypto';
import { ConfigurationError } from '../errors';
import { inPrivateDir } from './private-dir';
import { envPrefix, named, Script, sh } from './shell';

/** The tool's own files in a tenant directory. */
export const STATE_DIR = '.fleet';
export const LOCK_DIR = `${STATE_DIR}/lock`;
export const HISTORY_FILE = `${STATE_DIR}/history.jsonl`;
export const BACKUP_DIR = `${STATE_DIR}/backups`;

/** Exit codes of preflight's checks, so each failure gets its own message. */
export const PREFLIGHT = {
  noDirectory: 10,
  noComposeFile: 11,
  noComposeCommand: 12,
  noEnvFile: 13,
  envIsLink: 14,
  /** The lock's owner file could not be written (a full disk): the half-made lock is removed. */
  lockUnwritable: 15,
} as const;

/** A version is an image tag or a digest; either way the same for every image of the tenant. */
export function checkVersion(version: string, source = '--version'): string {
  if (IMAGE_TAG.re.test(version) || IMAGE_DIGEST.re.test(version)) return version;
  throw new ConfigurationError([
    {
      path: [],
      source,
      message: `${JSON.stringify(version)} is neither an image tag nor a digest`,
      hint: `use ${IMAGE_TAG.valid} (e.g. "v1.4.2"), or ${IMAGE_DIGEST.valid}`,
    },
  ]);
}

export function imageRef(image: Image, version: string): string {
  return version.startsWith('sha256:') ? `${image.repository}@${version}` : `${image.repository}:${version}`;
}

/** The version part of an image reference: the digest, else the tag, else "latest". */
export function versionOf(ref: string): string {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(at + 1);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? ref.slice(colon + 1) : 'latest';
}

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
 * does. The value comes from files on the server: it is only ever expanded inside double quotes here,
 * and `parsePrepared` checks it against the project pattern before any later command uses it.
 */
export function deriveProject(t: Tenant): Script {
  if (t.compose.project) return sh`project=${t.compose.project}; echo "@@project $project"`;
  const first = t.compose.files[0]!;
  const value = new Script(`tr -d '\\r"'"'"' ' | tail -n 1`);
  const fromSession = new Script('"${COMPOSE_PROJECT_NAME:-}"'); // set -u safe
  return sh`project=${fromSession}; [ -n "$project" ] || project="$(sed -n 's/^[[:space:]]*\(export[[:space:]]*\)\{0,1\}COMPOSE_PROJECT_NAME=//p' .env 2>/dev/null | ${value})"; [ -n "$project" ] || project="$(sed -n 's/^name:[[:space:]]*//p' ${first} 2>/dev/null | ${value})"; [ -n "$project" ] || project="$(basename -- "$(cd -- "$(dirname -- ${first})" && pwd)")"; project="$(printf '%s' "$project" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9_-' | sed 's/^[-_]*//')"; echo "@@project $project"`;
}

/**
 * A cheap check that the compose command exists. Compose v1 and podman-compose are Python programs
 * costing ~0.4 s of CPU per run, so they are looked up, not run; `docker compose` is a fast plugin.
 */
function composeAvailable(command: ComposeCommand): Script {
  if (command === 'docker compose') return sh`docker compose version >/dev/null 2>&1`;
  return sh`command -v ${command.split(' ')[0]!} >/dev/null 2>&1`;
}

/** IDs of the project's running containers (`-a`: all of them), by label through the engine (no Compose process). */
export function containersOf(t: Tenant, project: string | Script, all = false): Script {
  const label =
    project instanceof Script
      ? sh`"label=com.docker.compose.project=${project}"`
      : sh`${`label=com.docker.compose.project=${project}`}`;
  return sh`${engineOf(t.compose.command)} ps ${all ? '-aq' : '-q'} --filter ${label}`;
}

/** The project derived on the server by `deriveProject`, as shell text for double quotes. */
export const PROJECT_VAR = new Script('$project');

export function composeArgv(t: Tenant): string[] {
  const argv = t.compose.command.split(' ');
  for (const f of t.compose.files) argv.push('-f', f);
  if (t.compose.project) argv.push('-p', t.compose.project);
  return argv;
}

export const enter = (t: Tenant) => sh`cd -- ${t.path}`;

/**
 * Keeps the lock's age (its directory's mtime) fresh: every round trip of a deploy after `prepare`
 * starts with it, so only a lock no deploy is working under grows old (src/deploy/locks.ts). `-c`: a
 * lock that is gone stays gone.
 */
export const touchLock = sh`{ touch -c -- ${LOCK_DIR} 2>/dev/null || :; }`;
/** The same from the login directory, for a script that does not enter the tenant's (the path may be relative to it). */
const touchLockFromHome = (t: Tenant) => sh`{ touch -c -- ${`${t.path}/${LOCK_DIR}`} 2>/dev/null || :; }`;

/** Seconds since the lock was last touched (its directory's mtime). */
const LOCK_AGE = sh`$(( $(date +%s) - $(stat -c %Y ${LOCK_DIR} 2>/dev/null || date +%s) ))`;
/** Where a deploy notes, while it holds the lock, the switch it is making (for `unlock` and `status`). */
export const SWITCH_NOTE = `${LOCK_DIR}/switch`;
/**
 * The lock's lease: one line, the second (the server's clock, `date +%s`) at which its holder gives up
 * — it renews it while it works (renewLease) and stops trying once its last renewal would have run out.
 * A lease at or past that second is the holder's leftover: the next deploy takes the lock over.
 */
export const LEASE_FILE = `${LOCK_DIR}/lease`;
/** The lease's second if the file holds one (digits only: server text), else empty. */
const LEASE_EXPIRES = sh`$(head -c 32 ${LEASE_FILE} 2>/dev/null | tr -cd 0-9 | head -c 12)`;
/** `@@lease EXPIRES NOW`: the lease's second and the server's now (either empty when there is none). */
export const LEASE_MARKER = sh`echo "@@lease ${LEASE_EXPIRES} $(date +%s)"`;

/**
 * A `@@lease` marker's value, read back (server text: two numbers of digits only, else no lease): the
 * second the lease runs out and how many seconds it runs more, both on the server's clock (≤ 0: run out).
 */
export function parseLeaseMarker(value: string | undefined): { expiresS: number; leftS: number } | undefined {
  const m = /^(\d{1,12}) (\d{1,12})$/.exec(value ?? '');
  return m ? { expiresS: Number(m[1]), leftS: Number(m[1]) - Number(m[2]) } : undefined;
}

/** A second lock for a few shell lines: breaking, taking over and renewing are done under it. */
const GUARD = `${LOCK_DIR}.break`;
const GUARD_AGE = sh`$(( $(date +%s) - $(stat -c %Y ${GUARD} 2>/dev/null || date +%s) ))`;
/** Takes GUARD (one a minute old is an accident's) and removes it if the shell dies holding it. */
const takeGuard = sh`{ [ ${GUARD_AGE} -lt 60 ] || rmdir ${GUARD} 2>/dev/null; mkdir ${GUARD} 2>/dev/null; } && trap 'rmdir ${GUARD} 2>/dev/null' EXIT HUP INT PIPE TERM`;
const dropGuard = sh`rmdir ${GUARD}; trap - EXIT HUP INT PIPE TERM`;
/** Server text printed on one line, at most `n` bytes, printable ASCII only. */
const oneLine = (file: string, n: number) =>
  sh`$(head -c ${String(n)} ${file} 2>/dev/null | tr -cd '[:print:]')`;

/** Exit code of `prepare` when another deploy holds the lock. */
export const LOCK_HELD = 20;
/** Exit code of `update` when .env could not be switched (so nothing changed). */
export const SWITCH_FAILED = 30;

/** How `prepare` takes the lock. */
export interface LockTerms {
  /** The owner file (one line of JSON). */
  owner: string;
  /** The lease, in seconds from the server's now: its holder's recovery window and a margin. */
  leaseS: number;
  /** With a value, a lock at least this many seconds old is broken whatever its lease says. */
  breakAfterS?: number;
}

/** The lock's shell: take it, take over an expired lease, break a stale lock (when asked), or report it held. */
function lockScript(terms: LockTerms): Script {
  const { owner, leaseS, breakAfterS } = terms;
  // A lock without its owner or lease would read as another deploy's: when either cannot be written (a
  // full disk takes the file's bytes, not the directory), the lock is removed again and the deploy stops.
  const write = sh`{ printf '%s\n' ${owner} > ${LOCK_DIR}/owner && printf '%s\n' "$(( $(date +%s) + ${String(leaseS)} ))" > ${LEASE_FILE}; }`;
  const take = sh`mkdir ${LOCK_DIR} 2>/dev/null && { ${write} || { rm -rf -- ${LOCK_DIR}; exit ${PREFLIGHT.lockUnwritable}; }; }`;
  // Taking over and breaking are done under GUARD, and the lease or age checked again under it, so of
  // two deploys that both found the lock expired only one takes it — the other then finds it held. A
  // holder renews under GUARD too, so a renewal and a takeover never interleave. Nothing is printed
  // while GUARD is held (a closed channel would stop the shell there).
  const expired = sh`{ exp=${LEASE_EXPIRES}; [ -n "$exp" ] && [ "$(date +%s)" -ge "$exp" ]; }`;
  const stale = breakAfterS === undefined ? sh`false` : sh`[ ${LOCK_AGE} -ge ${String(breakAfterS)} ]`;
  const replace = sh`old=${oneLine(`${LOCK_DIR}/owner`, 1000)}; note=${oneLine(SWITCH_NOTE, 4000)}; rm -rf -- ${LOCK_DIR}`;
  const over = sh`elif { ${expired} || ${stale}; } && ${takeGuard} && { how=; if ${expired}; then how=takeover; past=$(( $(date +%s) - exp )); elif ${stale}; then how=stale; fi; [ -z "$how" ] || { ${replace}; }; ${take}; took=$?; ${dropGuard}; [ $took -eq 0 ]; }; then if [ "$how" = takeover ]; then echo "@@takeover $past"; printf '@@oldowner %s\n' "$old"; printf '@@oldswitch %s\n' "$note"; elif [ -n "$how" ]; then echo "@@stale $old"; fi; `;
  return sh`if ${take}; then :; ${over}else echo '@@lock'; cat ${LOCK_DIR}/owner 2>/dev/null; echo; echo "@@age ${LOCK_AGE}"; ${LEASE_MARKER}; exit ${LOCK_HELD}; fi`;
}

/**
 * The first round trip of a deploy: preflight checks, then the lock, then everything the deploy needs
 * to know about the tenant — the image variables in .env, the image IDs of the running containers and
 * the history's tail (its releases, for rollback and pruning) — in one script, so the whole
 * preparation costs one SSH round trip. Sections of the output start with `@@name`.
 *
 * The lock is an atomic `mkdir .fleet/lock` with an owner file and a lease (LEASE_FILE). A lock whose
 * lease has run out is taken over (`@@takeover`, with the old owner and the switch it was making); a
 * held one exits LOCK_HELD after printing its owner, age and lease; with `breakAfterS`, a lock at least
 * that old is removed and taken whatever its lease says.
 */
export function prepare(t: Tenant, terms: LockTerms, reads: PrepareReads = composeReads(t)): Script {
  const lines: Script[] = [sh`cd -- ${t.path} 2>/dev/null || exit ${PREFLIGHT.noDirectory}`, ...reads.checks];
  lines.push(sh`df -Pk . | awk 'NR==2 {print "free_kb=" $4}'`);
  lines.push(sh`mkdir -p ${STATE_DIR} || exit 1`);
  lines.push(lockScript(terms));
  lines.push(...reads.state);
  lines.push(sh`echo '@@history'; tail -n 200 ${HISTORY_FILE} 2>/dev/null; echo '@@end'`);
  return new Script(lines.map(String).join('\n'), 'prepare');
}

/** A strategy's part of `prepare`: preflight checks (before the lock), and what it reads of the running release. */
export interface PrepareReads {
  checks: Script[];
  state: Script[];
}

/** `prepare`'s part for a Compose stack: its files, .env and compose command; .env's image variables and every container. */
export function composeReads(t: Tenant): PrepareReads {
  const checks: Script[] = [];
  for (const f of t.compose.files)
    checks.push(sh`test -f ${f} || { printf '%s\n' ${f}; exit ${PREFLIGHT.noComposeFile}; }`);
  checks.push(sh`test -f .env || exit ${PREFLIGHT.noEnvFile}`);
  checks.push(sh`test ! -L .env || exit ${PREFLIGHT.envIsLink}`);
  checks.push(sh`${composeAvailable(t.compose.command)} || exit ${PREFLIGHT.noComposeCommand}`);
  const names = t.images.map((i) => i.variable).join('|');
  const engine = engineOf(t.compose.command);
  const state = [deriveProject(t), sh`echo '@@env'; grep -E ${`^(export[[:space:]]+)?(${names})=`} .env`];
  // every container, stopped ones too: a paused or stopped (hibernated) tenant is told apart
  state.push(
    sh`echo '@@running'; ids=$(${containersOf(t, PROJECT_VAR, true)}) || exit 1; if [ -n "$ids" ]; then ${engine} inspect --format '{{.Image}} {{.State.Status}} {{.Id}}' $ids || exit 1; fi`,
  );
  return { checks, state };
}

/**
 * Renews the lease while the lock is ours (its owner holds our token) and the lease has not run out:
 * `@@lease ok`. A lease that ran out stays so (its lock may be another deploy's now): `@@lease lost`.
 * `@@lease busy`: another deploy was taking over or breaking it at that moment; try again.
 */
export function renewLease(t: Tenant, token: string, leaseS: number): Script {
  const ours = sh`grep -qF -- ${token} ${LOCK_DIR}/owner 2>/dev/null && exp=${LEASE_EXPIRES} && [ -n "$exp" ] && [ "$(date +%s)" -lt "$exp" ]`;
  const write = sh`printf '%s\n' "$(( $(date +%s) + ${String(leaseS)} ))" > ${LEASE_FILE}`;
  return named(
    'renewLease',
    sh`${enter(t)} && if ${takeGuard}; then if ${ours} && ${write}; then r=ok; else r=lost; fi; ${dropGuard}; echo "@@lease $r"; else echo '@@lease busy'; fi`,
  );
}

/** A container's state in the five words status and the deploy use. */
export const CONTAINER_STATES = ['running', 'paused', 'stopped', 'restarting', 'missing'] as const;
export type ContainerState = (typeof CONTAINER_STATES)[number];

/** The engine's state (`.State.Status`) in those words. */
export function containerState(engineState: string): ContainerState {
  if (engineState === 'running' || engineState === 'paused' || engineState === 'restarting')
    return engineState;
  return 'stopped'; // created, exited, dead, removing, configured, stopping
}

/** How a tenant sleeps: every container paused, or none running and some stopped. */
export type Hibernation = 'paused' | 'stopped';

export function hibernationOf(containers: readonly { state: ContainerState }[]): Hibernation | undefined {
  if (!containers.length || containers.some((c) => c.state === 'running' || c.state === 'restarting'))
    return undefined;
  return containers.every((c) => c.state === 'paused') ? 'paused' : 'stopped';
}

const CONTAINER_ID = /^[a-f0-9]{12,64}$/;
const ENGINE_STATE = /^[a-z]{1,20}$/;

export interface Prepared {
  freeMb?: number;
  /** The owner of the stale lock that was broken, when one was. */
  brokeStale?: string;
  /**
   * A lock whose lease had run out, taken over: its owner and the switch it noted (server text, one
   * line each, to be checked before use), and how many seconds past its lease it was.
   */
  tookOver?: { owner: string; switchNote: string; pastS: number };
  lock?: { owner: string; ageS: number; leaseLeftS?: number };
  /** variable → reference in .env (compose) */
  env: Record<string, string>;
  /** image IDs of the running (and paused) containers, normalized to sha256:… */
  running: string[];
  /** Every container of the project (stopped ones too), by ID, with its state. */
  containers: Array<{ id: string; state: ContainerState }>;
  /** The Compose project, as derived on the server (compose); checked against the project pattern. */
  project?: string;
  /** the version the `current` command printed (commands strategy) */
  current?: string;
  history: string[];
}

export function parsePrepared(stdout: string): Prepared {
  const out: Prepared = { env: {}, running: [], containers: [], history: [] };
  let section = '';
  const lockLines: string[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.trimEnd();
    const marker = /^@@(\w+)(?: (.*))?$/.exec(line);
    if (marker) {
      section = marker[1]!;
      if (section === 'age') out.lock = { owner: lockLines.join('\n').trim(), ageS: Number(marker[2]) || 0 };
      if (section === 'stale') out.brokeStale = marker[2] ?? '';
      readLockMarker(out, section, marker[2] ?? '');
      if (section === 'project' && COMPOSE_PROJECT.re.test(marker[2] ?? '')) out.project = marker[2];
      continue;
    }
    if (!line.trim()) continue;
    if (section === '') {
      const free = /^free_kb=(\d+)$/.exec(line);
      if (free) out.freeMb = Math.floor(Number(free[1]) / 1024);
    } else if (section === 'lock') lockLines.push(line);
    else if (section === 'env') {
      const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
      if (m) out.env[m[1]!] = m[2]!.trim().replace(/^(["'])(.*)\1$/, '$2');
    } else if (section === 'running') readContainer(out, line);
    else if (section === 'current') out.current = line.trim();
    else if (section === 'history') out.history.push(line);
  }
  out.running = [...new Set(out.running)];
  return out;
}

/** The markers of a taken-over lease, and of a held lock's lease (numbers: digits only, else left out). */
function readLockMarker(out: Prepared, section: string, value: string): void {
  const digits = (v: string | undefined) => (v !== undefined && /^\d{1,12}$/.test(v) ? Number(v) : undefined);
  if (section === 'takeover') out.tookOver = { owner: '', switchNote: '', pastS: digits(value) ?? 0 };
  else if (section === 'oldowner' && out.tookOver) out.tookOver.owner = value;
  else if (section === 'oldswitch' && out.tookOver) out.tookOver.switchNote = value;
  else if (section === 'lease' && out.lock) {
    const lease = parseLeaseMarker(value);
    if (lease) out.lock.leaseLeftS = lease.leftS;
  }
}

/**
 * One `IMAGE STATE ID` line of the @@running section (a bare image ID: a running container). The ID
 * and state are server text: a line whose ID or state is not one is left out of `containers`.
 */
function readContainer(out: Prepared, line: string): void {
  const [image = '', engineState = 'running', id] = line.trim().split(/\s+/);
  const state = ENGINE_STATE.test(engineState) ? containerState(engineState) : 'stopped';
  if (state !== 'stopped') out.running.push(normalizeId(image));
  if (id !== undefined && CONTAINER_ID.test(id)) out.containers.push({ id, state });
}

export function normalizeId(id: string): string {
  const s = id.trim();
  return s.startsWith('sha256:') ? s : `sha256:${s}`;
}

/**
 * The registry host of an image repository, as the engines read it: the first path component when it
 * looks like a host (has a "." or ":", or is "localhost"), else Docker Hub.
 */
export function registryHost(repository: string): string {
  const first = repository.split('/')[0]!;
  return repository.includes('/') && (/[.:]/.test(first) || first === 'localhost') ? first : 'docker.io';
}

/** Exit code of `pull` when a registry refused the login (so the pull is not tried again). */
export const LOGIN_FAILED = 40;

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
  const throwaway = login.keep
    ? sh``
    : sh`tmp=$(umask 077; mktemp -d) || exit 1; trap 'rm -rf -- "$tmp"' EXIT; trap 'exit 129' HUP INT PIPE TERM; export DOCKER_CONFIG="$tmp" REGISTRY_AUTH_FILE="$tmp/auth.json"; `;
  const logins = login.logins.map(
    ({ host, username }) =>
      sh`{ IFS= read -r pw && printf '%s\n' "$pw" | ${engine} login --username ${username} --password-stdin ${host} >/dev/null || { printf '%s\n' ${`registry login to ${host} as ${username} failed`} >&2; exit ${LOGIN_FAILED}; }; }`
        .text,
  );
  return new Script(`${throwaway.text}${logins.join(' && ')}`);
}

/**
 * Pulls every image of the release and prints `ID|["repo@digest", …]` for each, in order; with `login`,
 * logs in to the registries first, in the same round trip (the password on stdin: `PullLogin`).
 */
export function pullImages(t: Tenant, refs: readonly string[], login?: PullLogin): Script {
  const engine = engineOf(t.compose.command);
  const pulls = refs.map((ref) => sh`${engine} pull -q ${ref} >/dev/null`.text).join(' && ');
  const before = login ? sh`${registryLogin(engine, login)} && ` : sh``;
  return named(
    'pull',
    sh`${touchLockFromHome(t)} && ${before}${new Script(pulls)} && ${engine} image inspect --format '{{.Id}}|{{json .RepoDigests}}' ${[...refs]}`,
  );
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
 * The program that rewrites .env: each `NAME=value` of $FLEET_SET replaces that variable's line (an
 * `export NAME=` line keeps its `export`) or is appended; every other line, comment and the order stay.
 * Values come through the environment (ENVIRON), never `awk -v`, which would interpret backslashes. A
 * file with CRLF line ends keeps them.
 */
export const ENV_PROGRAM = `BEGIN { n = split(ENVIRON["FLEET_SET"], a, "\\n"); for (i = 1; i <= n; i++) { eq = index(a[i], "="); val[substr(a[i], 1, eq - 1)] = substr(a[i], eq + 1) } }
{ cr = sub(/\\r$/, "") ? "\\r" : ""; if (NR == 1) eol = cr
  for (k in val) if ($0 ~ ("^(export[ \\t]+)?" k "=")) { print (($0 ~ /^export[ \\t]/) ? "export " : "") k "=" val[k] cr; seen[k] = 1; next }
  print $0 cr }
END { for (k in val) if (!(k in seen)) print k "=" val[k] eol }`;

/**
 * The .env rewrite as a compare-and-swap against other writers, done in a private directory (see
 * private-dir.ts: nothing is opened, chmodded or chowned by a name anyone else could turn into a link).
 * The current file is hard-linked into it (`old`, refused unless a regular file: a link planted as .env
 * after the check is not read through) and its checksum and size taken in one read; the new file is
 * written from it and renamed over .env only if .env is still that file (`-ef`: not replaced by someone
 * else's rename). After the rename, a writer that had opened the old file may have appended to it: those
 * bytes are carried over to the new .env (through `cur`, the new file's second name in the private
 * directory, never through the name .env). If the old file was changed in any other way (its first `size`
 * bytes differ), it is put back and the switch tried again; five tries, then the switch refuses and says
 * why. What is left: an append whose writer opened .env before the rename and writes after the carry-over,
 * a window of microseconds that only a lock the other writer honours could close.
 */
function swapEnv(spec: string): Script {
  const changing =
    '.env kept changing while it was being switched (another writer, five tries): nothing was changed';
  const link =
    '.env was replaced by a link or a special file while it was being switched: fleet-deploy does not read or write through links; nothing was changed';
  const fail = sh`{ rm -f -- new old cur; exit ${SWITCH_FAILED}; }`;
  const refuse = sh`{ printf '%s\n' ${link} >&2; ${fail}; }`;
  const build = sh`rm -f -- new old cur && ln -P -- ../.env old && { [ -f old ] && [ ! -L old ] || ${refuse}; } && set -- $(cksum < old) && sum="$1 $2" && size=$2 && FLEET_SET=${spec} awk ${ENV_PROGRAM} old > new && chmod "$(stat -c %a old)" new && { chown "$(stat -c %u:%g old)" new 2>/dev/null || :; } && ln -- new cur`;
  const carry = sh`if [ "$(head -c "$size" old | cksum)" = "$sum" ]; then tail -c +"$((size + 1))" old >> cur && swapped=yes; else mv -fT -- old ../.env; fi`;
  return inPrivateDir(
    '.',
    sh`swapped=; for try in 1 2 3 4 5; do ${build} || ${fail}; if [ ../.env -ef old ]; then mv -fT -- new ../.env || ${fail}; ${carry}; fi; rm -f -- new old cur; [ -z "$swapped" ] || break; done; [ -n "$swapped" ] || { printf '%s\n' ${changing} >&2; exit ${SWITCH_FAILED}; }`,
  );
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

/** The config hash `update` read after `compose up` (the lines after its @@confighash marker). */
export function parseConfigHash(stdout: string): string | undefined {
  const at = stdout.lastIndexOf('@@confighash\n');
  return at < 0 ? undefined : configHashOf(stdout.slice(at + '@@confighash\n'.length).split('\n'));
}

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

/** Where `update` keeps the fingerprint of the compose files it last found to parse. */
export const COMPOSE_CHECKED = `${STATE_DIR}/compose-checked`;
/** Printed by `update` when it ran `compose config` (the files or what they read changed). */
export const COMPOSE_CHECKED_MARK = '@@compose-checked';

/**
 * Compose files that do not parse fail here, before .env changes and before a rollback removes the
 * running containers it could not start again. Compose is a process (~0.4 s of CPU for compose v1), so
 * it runs only when something it reads changed since it last passed: a sha256 over the compose command
 * and files, the files' text and .env without the image variables the deploy itself switches, kept in
 * .fleet/compose-checked (made in a private directory and renamed into place, never written through a link). Files the compose files name
 * (`env_file`, `extends`) are not in it: a change there alone is found by `compose up`, which rolls back.
 */
function checkComposeFiles(t: Tenant): Script {
  const unparsable = `the compose files of ${t.path} do not parse (${t.compose.command} config failed): nothing was changed`;
  const names = t.images.map((i) => i.variable).join('|');
  const fingerprint = sh`sum=$({ printf '%s\n' ${composeArgv(t)}; cat -- ${t.compose.files}; grep -vE ${`^(export[[:space:]]+)?(${names})=`} .env; } 2>/dev/null | sha256sum) || sum=`;
  const write = sh`{ printf '%s\n' "$sum" > new && mv -fT -- new ${`../${COMPOSE_CHECKED.slice(STATE_DIR.length + 1)}`}; } 2>/dev/null || :`;
  const remember = sh`{ [ -z "$sum" ] || [ ! -d ${STATE_DIR} ] || ${inPrivateDir(STATE_DIR, write)}; }`;
  const config = sh`{ ${composeArgv(t)} config >/dev/null || { printf '%s\n' ${unparsable} >&2; exit ${SWITCH_FAILED}; }; echo ${COMPOSE_CHECKED_MARK}; ${remember}; }`;
  return sh`{ ${fingerprint}; if [ -z "$sum" ] || [ "$sum" != "$(cat ${COMPOSE_CHECKED} 2>/dev/null)" ]; then ${config}; fi; }`;
}

/** Puts a hibernated tenant back to sleep after a deploy: its project's running containers paused or stopped. */
export function hibernate(t: Tenant, project: string, how: Hibernation): Script {
  const engine = engineOf(t.compose.command);
  return named(
    'hibernate',
    sh`${enter(t)} && ${touchLock} && ids=$(${containersOf(t, project)}) && { [ -z "$ids" ] || ${engine} ${how === 'paused' ? 'pause' : 'stop'} $ids >/dev/null; }`,
  );
}

/** Removes every container of the project, with force, until none is left (five tries a second apart). */
function removeContainers(t: Tenant, project: string): Script {
  const engine = engineOf(t.compose.command);
  return sh`for try in 1 2 3 4 5; do ids=$(${containersOf(t, project, true)}) || exit 1; [ -n "$ids" ] || break; ${engine} rm -f $ids >/dev/null 2>&1 || sleep 1; done; [ -z "$(${containersOf(t, project, true)})" ]`;
}

/** The containers' own HEALTHCHECK states: healthy, unhealthy, starting, or none. */
export function containerHealth(t: Tenant, project: string = projectOf(t)): Script {
  return named(
    'containerHealth',
    sh`${enter(t)} && ${touchLock} && ids=$(${containersOf(t, project)}) && [ -n "$ids" ] && ${engineOf(t.compose.command)} inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids`,
  );
}

/**
 * The last round trip, only while the lock is still ours (its owner holds our token): append the
 * history entry, remove pruned images (the engine refuses those a container still uses; that is fine),
 * release the lock. Prints `@@unlock released`, or `@@unlock not-ours` and changes nothing.
 */
export function finish(
  t: Tenant,
  o: { token: string; history?: string; remove?: readonly string[] },
): Script {
  const work: Script[] = [];
  if (o.history) work.push(sh`{ printf '%s\n' ${o.history} >> ${HISTORY_FILE} || echo '@@history-failed'; }`);
  const remove = (o.remove ?? []).filter((r) => IMAGE_REF.test(r));
  if (remove.length)
    work.push(sh`{ ${engineOf(t.compose.command)} image rm -- ${remove} >/dev/null 2>&1 || true; }`);
  work.push(sh`rm -rf -- ${LOCK_DIR} && echo '@@unlock released'`);
  return named(
    'finish',
    sh`${enter(t)} && if grep -qF -- ${o.token} ${LOCK_DIR}/owner 2>/dev/null; then ${new Script(work.map(String).join('; '))}; else echo '@@unlock not-ours'; fi`,
  );
}

const releaseLockPart = (token: string) =>
  sh`if grep -qF -- ${token} ${LOCK_DIR}/owner 2>/dev/null; then rm -rf -- ${LOCK_DIR} && echo '@@unlock released'; else echo '@@unlock not-ours'; fi`;

/** Removes the lock only when it is still ours (its owner holds our token): the cancel clean-up. */
export function releaseLock(t: Tenant, token: string): Script {
  return named('releaseLock', sh`${enter(t)} && ${releaseLockPart(token)}`);
}

/** Removes the lock whoever holds it: `fleet-deploy unlock --force` when its owner cannot be read. */
export function breakLock(t: Tenant): Script {
  return named('breakLock', sh`${enter(t)} && rm -rf -- ${LOCK_DIR} && echo '@@unlock released'`);
}

/** A tenant's lock for `fleet-deploy unlock`: its owner, its age and the switch it was making, if any. */
export function inspectLock(t: Tenant): Script {
  return named(
    'inspectLock',
    sh`cd -- ${t.path} 2>/dev/null || exit ${PREFLIGHT.noDirectory}; if [ -d ${LOCK_DIR} ]; then echo '@@lock'; cat ${LOCK_DIR}/owner 2>/dev/null; echo; echo "@@age ${LOCK_AGE}"; ${LEASE_MARKER}; echo '@@switch'; cat ${SWITCH_NOTE} 2>/dev/null; fi; echo '@@end'`,
  );
}

export interface LockState {
  owner: string;
  ageS: number;
  /** Seconds its lease runs more (≤ 0: run out); undefined: it has none (an older fleet-deploy's lock). */
  leaseLeftS?: number;
  /** The note of a switch the holder was making (server text: parse and check before use). */
  switchNote?: string;
}

export function parseLock(stdout: string): LockState | undefined {
  const sections = new Map<string, string[]>();
  let section = '';
  let ageS = 0;
  let leaseLeftS: number | undefined;
  for (const line of stdout.split('\n')) {
    const marker = /^@@(\w+)(?: (.*))?$/.exec(line.trimEnd());
    if (marker) {
      section = marker[1]!;
      if (section === 'age') ageS = Number(marker[2]) || 0;
      const lease = section === 'lease' ? parseLeaseMarker(marker[2]) : undefined;
      if (lease) leaseLeftS = lease.leftS;
      sections.set(section, sections.get(section) ?? []);
    } else if (section) sections.get(section)!.push(line);
  }
  if (!sections.has('lock')) return undefined;
  const note = (sections.get('switch') ?? []).join('\n').trim();
  return {
    owner: sections.get('lock')!.join('\n').trim(),
    ageS,
    ...(leaseLeftS !== undefined ? { leaseLeftS } : {}),
    ...(note ? { switchNote: note } : {}),
  };
}

/** The last lines of the release history, for `fleet-deploy history`. */
export function readHistory(t: Tenant, lines: number): Script {
  return named(
    'readHistory',
    sh`${enter(t)} 2>/dev/null && { tail -n ${lines} ${HISTORY_FILE} 2>/dev/null || true; }`,
  );
}

export function runUserCommand(t: Tenant, command: string, env: Readonly<Record<string, string>>): Script {
  return named('runUserCommand', sh`${enter(t)} && ${touchLock} && ${envPrefix(env)} sh -c ${command}`);
}
