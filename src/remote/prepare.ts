/**
 * The first round trip of a deploy (`prepare`) and the reading of what it prints.
 */
import type { Tenant } from '../registry/model';
import { COMPOSE_PROJECT } from '../registry/patterns';
import { composeAvailable, deriveProject, engineOf, PROJECT_VAR } from './compose';
import { containersOf, containerState, type ContainerState } from './containers';
import { imageLines } from './env-file';
import { PREFLIGHT } from './exit-codes';
import { normalizeId } from './images';
import { lockScript, parseLeaseMarker, type LockTerms } from './lock';
import { Script, sh } from './shell';
import { HISTORY_FILE, STATE_DIR } from './tenant-dir';

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
  const lines: Script[] = [
    sh`cd -- ${t.path} 2>/dev/null || exit ${PREFLIGHT.noDirectory}`,
    ...reads.checks,
    sh`df -Pk . | awk 'NR==2 {print "free_kb=" $4}'`,
    sh`mkdir -p ${STATE_DIR} || exit 1`,
    lockScript(terms),
    ...reads.state,
    sh`echo '@@history'; tail -n 200 ${HISTORY_FILE} 2>/dev/null; echo '@@end'`,
  ];
  return new Script(lines.map(String).join('\n'), 'prepare');
}

/**
 * A strategy's part of `prepare` (its `prepareReads()`): preflight checks (before the lock), and what it
 * reads of the running release. Compose's is `composeReads`.
 */
export interface PrepareReads {
  checks: Script[];
  state: Script[];
}

/** `prepare`'s part for a Compose stack: its files, .env and compose command; .env's image variables and every container. */
export function composeReads(t: Tenant): PrepareReads {
  const checks = [
    ...t.compose.files.map(
      (f) => sh`test -f ${f} || { printf '%s\n' ${f}; exit ${PREFLIGHT.noComposeFile}; }`,
    ),
    sh`test -f .env || exit ${PREFLIGHT.noEnvFile}`,
    sh`test ! -L .env || exit ${PREFLIGHT.envIsLink}`,
    sh`${composeAvailable(t.compose.command)} || exit ${PREFLIGHT.noComposeCommand}`,
  ];
  const state = [deriveProject(t), sh`echo '@@env'; grep -E ${imageLines(t)} .env`, readContainers(t)];
  return { checks, state };
}

/** `@@running`: every container of the project, stopped ones too, so a paused or stopped (hibernated) tenant is told apart. */
function readContainers(t: Tenant): Script {
  const inspect = sh`${engineOf(t.compose.command)} inspect --format '{{.Image}} {{.State.Status}} {{.Id}}' $ids || exit 1`;
  return sh`echo '@@running'; ids=$(${containersOf(t, PROJECT_VAR, true)}) || exit 1; if [ -n "$ids" ]; then ${inspect}; fi`;
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
  tookOver?: { owner: string; switchNote: string; pastS: number; filesNote?: string };
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
  else if (section === 'oldfiles' && out.tookOver && value) out.tookOver.filesNote = value;
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
