/**
 * The tenant's lock: an atomic `mkdir .fleet/lock` with an owner file and a lease. Taking it (in
 * `prepare`), renewing its lease, reading it for `unlock` and `status`, breaking it, and the deploy's
 * last round trip that releases it.
 */
import type { Tenant } from '../registry/model';
import { LOCK_HELD, PREFLIGHT } from './exit-codes';
import { appendHistory } from './history';
import { pruneImages } from './images';
import { named, Script, sh } from './shell';
import { enter, LOCK_DIR } from './tenant-dir';

/** Seconds since the lock was last touched (its directory's mtime). */
const LOCK_AGE = sh`$(( $(date +%s) - $(stat -c %Y ${LOCK_DIR} 2>/dev/null || date +%s) ))`;
/** Where a deploy notes, while it holds the lock, the switch it is making (for `unlock` and `status`). */
export const SWITCH_NOTE = `${LOCK_DIR}/switch`;
/**
 * Beside it, written by `install files` before the first file changes (from a private directory of the
 * lock, src/remote/files.ts): the files the switch installs and those they replace, by hash (one line of
 * JSON, deploy/files.ts FilesNote), so a deploy cut off after it gets its previous files back too.
 */
export const FILES_NOTE = `${LOCK_DIR}/files`;
/** How much of the files note a take-over reads back (a larger one is cut, so it fails its checks). */
const FILES_NOTE_MAX = 262144;
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
/** Removes GUARD if the shell dies holding it. */
const GUARD_TRAP = sh`trap 'rmdir ${GUARD} 2>/dev/null' EXIT HUP INT PIPE TERM`;
/** Takes GUARD (one a minute old is an accident's) and removes it if the shell dies holding it. */
const takeGuard = sh`{ [ ${GUARD_AGE} -lt 60 ] || rmdir ${GUARD} 2>/dev/null; mkdir ${GUARD} 2>/dev/null; } && ${GUARD_TRAP}`;
const dropGuard = sh`rmdir ${GUARD}; trap - EXIT HUP INT PIPE TERM`;
/** Server text printed on one line, at most `n` bytes, printable ASCII only. */
const oneLine = (file: string, n: number) =>
  sh`$(head -c ${String(n)} ${file} 2>/dev/null | tr -cd '[:print:]')`;

/** True while the lock's owner file holds `token`: the lock is the caller's. */
const ownedBy = (token: string) => sh`grep -qF -- ${token} ${LOCK_DIR}/owner 2>/dev/null`;
/** Writes a lease running out `leaseS` seconds from the server's now. */
const writeLease = (leaseS: number) =>
  sh`printf '%s\n' "$(( $(date +%s) + ${String(leaseS)} ))" > ${LEASE_FILE}`;
/** The holder of the lock, for the one who found it held: `@@lock` OWNER, `@@age`, `@@lease`. */
const PRINT_HOLDER = sh`echo '@@lock'; cat ${LOCK_DIR}/owner 2>/dev/null; echo; echo "@@age ${LOCK_AGE}"; ${LEASE_MARKER}`;

/** How `prepare` takes the lock. */
export interface LockTerms {
  /** The owner file (one line of JSON). */
  owner: string;
  /** The lease, in seconds from the server's now: its holder's recovery window and a margin. */
  leaseS: number;
  /** With a value, a lock at least this many seconds old is broken whatever its lease says. */
  breakAfterS?: number;
}

/**
 * Makes the lock with its owner and lease. A lock without either would read as another deploy's: when
 * one cannot be written (a full disk takes the file's bytes, not the directory), the lock is removed
 * again and the script exits lockUnwritable.
 */
function takeLock({ owner, leaseS }: LockTerms): Script {
  const write = sh`{ printf '%s\n' ${owner} > ${LOCK_DIR}/owner && ${writeLease(leaseS)}; }`;
  return sh`mkdir ${LOCK_DIR} 2>/dev/null && { ${write} || { rm -rf -- ${LOCK_DIR}; exit ${PREFLIGHT.lockUnwritable}; }; }`;
}

/** True when the lock's lease has run out (`$exp`: its second); false when it has none. */
const LEASE_EXPIRED = sh`{ exp=${LEASE_EXPIRES}; [ -n "$exp" ] && [ "$(date +%s)" -ge "$exp" ]; }`;
/** True when the lock is at least `breakAfterS` old; never without a value. */
const staleAfter = (breakAfterS?: number) =>
  breakAfterS === undefined ? sh`false` : sh`[ ${LOCK_AGE} -ge ${String(breakAfterS)} ]`;
/** Keeps the old lock's owner and switch note (`$old`, `$note`, one line each) and removes the lock. */
const OLD_FILES = sh`files=; [ -L ${FILES_NOTE} ] || files=${oneLine(FILES_NOTE, FILES_NOTE_MAX)}`;
const REMOVE_OLD = sh`old=${oneLine(`${LOCK_DIR}/owner`, 1000)}; note=${oneLine(SWITCH_NOTE, 4000)}; ${OLD_FILES}; rm -rf -- ${LOCK_DIR}`;
/** A takeover, printed: how long past its lease the lock was, its old owner, the switch and the files it noted. */
const TELL_OLD = sh`printf '@@oldowner %s\n' "$old"; printf '@@oldswitch %s\n' "$note"; printf '@@oldfiles %s\n' "$files"`;
const TELL_TAKEOVER = sh`echo "@@takeover $past"; ${TELL_OLD}`;
/** What was replaced, printed once GUARD is dropped: the takeover, or the stale lock's owner. */
const TELL_REPLACED = sh`if [ "$how" = takeover ]; then ${TELL_TAKEOVER}; elif [ -n "$how" ]; then echo "@@stale $old"; fi`;

/**
 * Under GUARD, an expired or stale lock replaced by ours; true when ours was taken. The lease or age is
 * checked again under GUARD, so of two deploys that both found the lock expired only one takes it — the
 * other then finds it held. A holder renews under GUARD too, so a renewal and a takeover never
 * interleave. Nothing is printed while GUARD is held (a closed channel would stop the shell there).
 */
function replaceLock(terms: LockTerms): Script {
  const stale = staleAfter(terms.breakAfterS);
  const how = sh`how=; if ${LEASE_EXPIRED}; then how=takeover; past=$(( $(date +%s) - exp )); elif ${stale}; then how=stale; fi`;
  const swap = sh`${how}; [ -z "$how" ] || { ${REMOVE_OLD}; }; ${takeLock(terms)}; took=$?; ${dropGuard}; [ $took -eq 0 ]`;
  return sh`{ ${LEASE_EXPIRED} || ${stale}; } && ${takeGuard} && { ${swap}; }`;
}

/** The lock's shell: take it, take over an expired lease, break a stale lock (when asked), or report it held. */
export function lockScript(terms: LockTerms): Script {
  const held = sh`${PRINT_HOLDER}; exit ${LOCK_HELD}`;
  return sh`if ${takeLock(terms)}; then :; elif ${replaceLock(terms)}; then ${TELL_REPLACED}; else ${held}; fi`;
}

/**
 * Renews the lease while the lock is ours (its owner holds our token) and the lease has not run out:
 * `@@lease ok`. A lease that ran out stays so (its lock may be another deploy's now): `@@lease lost`.
 * `@@lease busy`: another deploy was taking over or breaking it at that moment; try again.
 */
export function renewLease(t: Tenant, token: string, leaseS: number): Script {
  const ours = sh`${ownedBy(token)} && exp=${LEASE_EXPIRES} && [ -n "$exp" ] && [ "$(date +%s)" -lt "$exp" ]`;
  const renew = sh`if ${ours} && ${writeLease(leaseS)}; then r=ok; else r=lost; fi; ${dropGuard}; echo "@@lease $r"`;
  return named('renewLease', sh`${enter(t)} && if ${takeGuard}; then ${renew}; else echo '@@lease busy'; fi`);
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
  if (o.history) work.push(appendHistory(o.history));
  const remove = pruneImages(t, o.remove ?? []);
  if (remove) work.push(remove);
  work.push(RELEASE);
  const ours = new Script(work.map(String).join('; '));
  return named(
    'finish',
    sh`${enter(t)} && if ${ownedBy(o.token)}; then ${ours}; else echo '@@unlock not-ours'; fi`,
  );
}

/** Notes in the lock, while it is there, the switch about to be made (one line); a failure is ignored. */
export const noteSwitch = (note: string) =>
  sh`{ [ ! -d ${LOCK_DIR} ] || printf '%s\n' ${note} > ${SWITCH_NOTE} || :; }`;

/** Removes the lock, whoever holds it. */
const RELEASE = sh`rm -rf -- ${LOCK_DIR} && echo '@@unlock released'`;

/** Removes the lock whoever holds it: `fleet-deploy unlock --force` when its owner cannot be read. */
export function breakLock(t: Tenant): Script {
  return named('breakLock', sh`${enter(t)} && ${RELEASE}`);
}

/** A tenant's lock for `fleet-deploy unlock`: its owner, its age and the switch it was making, if any. */
export function inspectLock(t: Tenant): Script {
  const lock = sh`${PRINT_HOLDER}; echo '@@switch'; cat ${SWITCH_NOTE} 2>/dev/null`;
  return named(
    'inspectLock',
    sh`cd -- ${t.path} 2>/dev/null || exit ${PREFLIGHT.noDirectory}; if [ -d ${LOCK_DIR} ]; then ${lock}; fi; echo '@@end'`,
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
