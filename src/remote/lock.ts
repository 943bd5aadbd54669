/**
 * The tenant's lock: an atomic `mkdir .fleet/lock` with an owner file and a lease. Taking it (in
 * `prepare`), renewing its lease, reading it for `unlock` and `status`, breaking it, and the deploy's
 * last round trip that releases it.
 */
import type { Tenant } from '../registry/model';
import { IMAGE_REF } from '../registry/patterns';
import { engineOf } from './compose';
import { LOCK_HELD, PREFLIGHT } from './exit-codes';
import { named, Script, sh } from './shell';
import { enter, HISTORY_FILE, LOCK_DIR } from './tenant-dir';

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
export function lockScript(terms: LockTerms): Script {
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
